// vnet_tap_{rx_backlog,tx_transit,rx_transit}_seconds histograms from bpf/tap.bpf.c.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "bpf/table.h"
#include "collectors/collector.h"
#include "collectors/device_table.h"
#include "config/config.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "tap.h"
}

namespace vnet::collectors {

class TapCollector : public Collector {
 public:
  using Hists = bpf::CounterTable<tap_hist_key, hist>;
  using Inflight = bpf::CounterTable<uint64_t, tap_inflight>;

  // What the collector reads; from the loaded probe (Attach) or fixed contents in tests.
  struct Sources {
    std::unique_ptr<Hists> hists;          // empty when the probe is not attached
    std::unique_ptr<Inflight> inflight;
    std::function<uint64_t(uint32_t)> stat;  // enum tap_stat
    std::function<uint64_t()> now_ns;        // the clock of bpf_ktime_get_ns()
    std::vector<ProbeStatus> probes;
    std::vector<ProgramRef> programs;
    std::shared_ptr<void> owner;  // keeps the BPF objects alive
  };

  TapCollector(Sources sources, net::LinkSource& links, const config::Config& cfg);

  // Loads and attaches the probe's programs (tp_btf). When they cannot attach the collector still
  // exists and reports its probes as not attached.
  static std::unique_ptr<TapCollector> Attach(const config::Config& cfg, net::LinkSource& links);

  const std::string& Name() const override;
  std::vector<ProbeStatus> Probes() const override { return sources_.probes; }
  std::vector<MapStatus> Maps() const override;
  std::vector<ProgramRef> Programs() const override { return sources_.programs; }
  std::vector<prometheus::MetricFamily> Collect() const override;
  void OnLink(uint32_t ifindex, const std::string& name, bool deleted) override;

 private:
  // Forgets packets in flight for longer than the timeout: freed where no tracepoint saw it.
  void ExpireInflight() const;

  Sources sources_;
  config::TapCollector cfg_;
  mutable std::mutex mu_;
  mutable std::unique_ptr<DeviceTable<tap_hist_key, hist>> table_;  // null when not attached
  mutable uint64_t inflight_entries_ = 0;
  mutable uint64_t expired_ = 0;
};

}  // namespace vnet::collectors
