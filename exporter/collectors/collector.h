// What every collector offers besides its metrics: the state of its probes and maps, read by
// the exporter's self-metrics (collectors/exporter_collector.cpp) and the landing page.
#pragma once

#include <prometheus/collectable.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ebpf/probe.h"
#include "metrics/writer.h"

namespace vnet::collectors {

struct ProbeStatus {
  std::string probe;        // the hook, e.g. "skb:kfree_skb"
  std::string attach_type;  // the alternative attached (tp_btf, raw_tp, ...) or tried last
  bool attached = false;
  std::string error;  // why it is not attached
  bool waiting = false;  // its kernel module is not loaded: it attaches when the module is
};

struct MapStatus {
  std::string map;
  uint64_t entries = 0;
  uint64_t capacity = 0;
  uint64_t update_failures = 0;  // inserts refused because the map was full
  uint64_t evictions = 0;        // entries removed before they were complete (timed out, replaced)
};

class Collector : public prometheus::Collectable {
 public:
  virtual const std::string& Name() const = 0;
  // Reads the collector's sources; what it returns writes the metrics, later, in the thread
  // that answers the scrape. Collectors of big maps write their series from what they read,
  // with no MetricFamily of each (they implement Collect() as metrics::Collected(Scrape())).
  virtual metrics::Emit Scrape() const { return metrics::EmitFamilies(Collect()); }
  virtual std::vector<ProbeStatus> Probes() const = 0;
  // As of the last Collect(): entries are counted while reading, not with another pass.
  virtual std::vector<MapStatus> Maps() const { return {}; }
  virtual std::vector<ebpf::Program> Programs() const { return {}; }
  // A device of the exporter's own network namespace was deleted, or announced under `name`
  // (from net::LinkWatcher's thread).
  virtual void OnLink(uint32_t /*ifindex*/, const std::string& /*name*/, bool /*deleted*/) {}
};

}  // namespace vnet::collectors
