// The exporter's own /metrics: runs every enabled collector and adds the vnet_exporter_*
// self-metrics (build, probes, scrape duration and success, BPF program and map state).
#pragma once

#include <prometheus/metric_family.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "collectors/collector.h"

namespace vnet::collectors {

class ExporterCollector : public prometheus::Collectable {
 public:
  // What a scrape may take when the scraper does not say (Prometheus' default scrape timeout).
  static constexpr std::chrono::milliseconds kDefaultBudget{10000};

  explicit ExporterCollector(std::vector<std::unique_ptr<Collector>> collectors,
                             std::string bpf_stats_sysctl = "/proc/sys/kernel/bpf_stats_enabled");
  ~ExporterCollector() override;  // waits for collectors still running after their scrape's budget

  // Runs the collectors side by side; one that has not finished within `budget` is left out of
  // this scrape (its success 0, logged once) and finishes in the background.
  // What it returns writes their metrics and the self-metrics.
  metrics::Emit Scrape(std::chrono::milliseconds budget) const;
  std::vector<prometheus::MetricFamily> Collect(std::chrono::milliseconds budget) const {
    return metrics::Collected(Scrape(budget));
  }
  std::vector<prometheus::MetricFamily> Collect() const override { return Collect(kDefaultBudget); }

  const std::vector<std::unique_ptr<Collector>>& collectors() const { return collectors_; }

 private:
  void Record(const std::string& collector, const std::string& error) const;  // "" = success

  std::vector<std::unique_ptr<Collector>> collectors_;
  std::string bpf_stats_sysctl_;
  mutable std::mutex mu_;                              // guards errors_ and running_
  mutable std::map<std::string, std::string> errors_;  // collector -> its last scrape's error
  mutable int running_ = 0;                            // collector threads not finished
  mutable std::condition_variable finished_;
};

}  // namespace vnet::collectors
