// vnet_drops_total / vnet_dropped_bytes_total from bpf/drops.bpf.c.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "bpf/drop_reasons.h"
#include "bpf/kallsyms.h"
#include "bpf/table.h"
#include "collectors/collector.h"
#include "collectors/device_table.h"
#include "config/config.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "drops.h"
}

namespace vnet::collectors {

class DropsCollector : public Collector {
 public:
  using Table = bpf::CounterTable<drop_key, drop_value>;

  // What the collector reads; from the loaded probe (Attach) or fixed contents in tests.
  struct Sources {
    std::unique_ptr<Table> table;          // empty when the probe is not attached
    std::function<uint64_t()> map_full;    // DROP_STAT_MAP_FULL
    std::vector<ProbeStatus> probes;
    std::vector<ProgramRef> programs;
    std::shared_ptr<void> owner;           // keeps the BPF objects alive
  };

  DropsCollector(Sources sources, std::unique_ptr<bpf::DropReasons> reasons, std::unique_ptr<bpf::Kallsyms> syms,
                 net::LinkSource& links, const config::Config& cfg);

  // Loads and attaches the probe: tp_btf, else raw_tp. When neither attaches (or there is no
  // kernel BTF) the collector still exists and reports the probe as not attached.
  static std::unique_ptr<DropsCollector> Attach(const config::Config& cfg, net::LinkSource& links);

  const std::string& Name() const override;
  std::vector<ProbeStatus> Probes() const override { return sources_.probes; }
  std::vector<MapStatus> Maps() const override;
  std::vector<ProgramRef> Programs() const override { return sources_.programs; }
  std::vector<prometheus::MetricFamily> Collect() const override;

  void OnLink(uint32_t ifindex, const std::string& name, bool deleted) override;

 private:
  Sources sources_;
  std::unique_ptr<bpf::DropReasons> reasons_;
  std::unique_ptr<bpf::Kallsyms> syms_;
  mutable std::mutex mu_;
  mutable std::unique_ptr<DeviceTable<drop_key, drop_value>> table_;  // null when not attached
};

}  // namespace vnet::collectors
