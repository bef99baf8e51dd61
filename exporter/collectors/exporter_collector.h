// The exporter's own /metrics: runs every enabled collector and adds the vnet_exporter_*
// self-metrics (build, probes, scrape duration and success, BPF program and map state).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "collectors/collector.h"

namespace vnet::collectors {

class ExporterCollector : public prometheus::Collectable {
 public:
  explicit ExporterCollector(std::vector<std::unique_ptr<Collector>> collectors,
                             std::string bpf_stats_sysctl = "/proc/sys/kernel/bpf_stats_enabled");

  std::vector<prometheus::MetricFamily> Collect() const override;

  const std::vector<std::unique_ptr<Collector>>& collectors() const { return collectors_; }

 private:
  std::vector<std::unique_ptr<Collector>> collectors_;
  std::string bpf_stats_sysctl_;
  mutable std::mutex mu_;                              // guards errors_ (scrapes run concurrently)
  mutable std::map<std::string, std::string> errors_;  // collector -> its last scrape's error
};

}  // namespace vnet::collectors
