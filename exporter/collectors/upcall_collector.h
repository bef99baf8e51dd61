// vnet_ovs_upcalls_total, vnet_ovs_upcall_failures_total, vnet_ovs_upcall_latency_seconds and
// vnet_ovs_upcalls_unanswered_total from bpf/upcall.bpf.c: the Open vSwitch kernel datapath's
// upcalls. openvswitch is a module that may come after the exporter: the programs are loaded
// when it is there, and again when it appears.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "bpf/table.h"
#include "collectors/collector.h"
#include "collectors/device_table.h"
#include "config/config.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "upcall.h"
}

namespace vnet::collectors {

class UpcallCollector : public Collector {
 public:
  using Counts = bpf::CounterTable<upcall_key, upcall_count>;
  using Hists = bpf::CounterTable<upcall_hist_key, hist>;
  using Inflight = bpf::CounterTable<upcall_packet, upcall_inflight>;

  // What the collector reads once loaded; from the kernel (Attach) or fixed contents in tests.
  struct Sources {
    std::unique_ptr<Counts> counts;  // empty when the probes are not attached
    std::unique_ptr<Hists> hists;
    std::unique_ptr<Inflight> inflight;
    std::function<uint64_t(uint32_t)> stat;  // enum upcall_stat
    std::function<uint64_t()> now_ns;        // the clock of bpf_ktime_get_ns()
    std::vector<ProbeStatus> probes;
    std::vector<ProgramRef> programs;
    std::shared_ptr<void> owner;  // keeps the BPF objects alive
  };
  using Loader = std::function<Sources()>;

  // `load` is called now, and again whenever `module_loaded` turns true after being false while
  // the probes are not attached.
  UpcallCollector(Loader load, std::function<bool()> module_loaded, net::LinkSource& links, const config::Config& cfg);

  // The real loader (see bpf/upcall.bpf.c for the alternatives) and /sys/module/openvswitch.
  static std::unique_ptr<UpcallCollector> Attach(const config::Config& cfg, net::LinkSource& links);

  const std::string& Name() const override;
  std::vector<ProbeStatus> Probes() const override;
  std::vector<MapStatus> Maps() const override;
  std::vector<ProgramRef> Programs() const override;
  std::vector<prometheus::MetricFamily> Collect() const override;
  // The datapath's device (ovs-system) appearing is the moment the module is surely there.
  void OnLink(uint32_t ifindex, const std::string& name, bool deleted) override;

 private:
  void LoadIfNeeded(bool log = true) const;  // mu_ held; at start-up the exporter logs the probes itself
  void ExpireInflight() const;

  Loader load_;
  std::function<bool()> module_loaded_;
  net::LinkSource& links_;
  config::Config cfg_;
  mutable std::mutex mu_;
  mutable Sources sources_;
  mutable bool tried_while_loaded_ = false;  // a failed load is retried only after the module comes back
  mutable std::unique_ptr<DeviceTable<upcall_key, upcall_count>> table_;  // null until attached
  mutable std::map<std::string, uint64_t> unanswered_;                    // by datapath
  mutable uint64_t inflight_entries_ = 0;
  mutable uint64_t expired_ = 0;
};

}  // namespace vnet::collectors
