// vnet_ovs_upcalls_total, vnet_ovs_upcall_failures_total, vnet_ovs_upcall_latency_seconds and
// vnet_ovs_upcalls_unanswered_total from bpf/upcall.bpf.c: the Open vSwitch kernel datapath's
// upcalls. openvswitch is a module that may come after the exporter, go (an OVS upgrade reloads
// it) and come back: the probes are loaded for each instance of the module (its types may have
// changed) and unloaded while it is gone, so its counters restart as the datapath's own do.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "collectors/collector.h"
#include "collectors/device_table.h"
#include "config/config.h"
#include "ebpf/inflight.h"
#include "ebpf/probe.h"
#include "ebpf/table.h"
#include "metrics/family.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "bpf/upcall.h"
}

namespace vnet::collectors {

class UpcallCollector : public Collector {
 public:
  // What the collector reads from its maps; views of the kernel's (Attach) or fixed contents in tests.
  struct Tables {
    struct Maps {
      std::unique_ptr<ebpf::CounterTable<upcall_key, upcall_count>> counts;
      std::unique_ptr<ebpf::CounterTable<upcall_hist_key, hist>> hists;
      std::unique_ptr<ebpf::CounterTable<upcall_packet, upcall_inflight>> inflight;
    };
    Maps host;                               // datapaths of the exporter's namespace
    Maps other;                              // of every other namespace (upcall_*_other)
    std::function<uint64_t(uint32_t)> stat;  // enum upcall_stat
    std::function<uint64_t()> now_ns;        // the clock of bpf_ktime_get_ns()
  };
  using Probe = ebpf::Probe<Tables>;
  // Loads and attaches the probe set: null, with the reason in `error`, when it did not attach.
  using Loader = std::function<std::unique_ptr<Probe>(std::string& error)>;
  // Which instance of the openvswitch module is loaded: 0 when none, another value each time
  // it is loaded again.
  using ModuleInstance = std::function<uint64_t()>;

  struct Settings : config::Section {
    static constexpr const char* kName = "upcall";
    uint32_t max_inflight = 16384;          // upcalls awaiting their execute at once (each of the two maps)
    uint32_t max_series = 4096;             // (device, datapath, cmd, error) counters
    uint32_t other_netns_max_series = 1024;  // the same, of datapaths in other namespaces
    std::chrono::seconds inflight_timeout{10};
    void Parse(const config::Reader& r);
  };

  UpcallCollector(Loader load, ModuleInstance module, net::LinkSource& links, const config::Config& cfg,
                  const Settings& settings);

  // The real loader (bpf/upcall.bpf.c) and /sys/module/openvswitch.
  static std::unique_ptr<UpcallCollector> Attach(const config::Config& cfg, const Settings& settings,
                                                 net::LinkSource& links);
  static std::unique_ptr<Collector> Make(const config::Config& cfg, net::LinkSource& links) {
    return Attach(cfg, cfg.Get<Settings>(), links);
  }

  const std::string& Name() const override;
  std::vector<ProbeStatus> Probes() const override;
  std::vector<MapStatus> Maps() const override;
  std::vector<ebpf::Program> Programs() const override;
  metrics::Emit Scrape() const override;
  std::vector<prometheus::MetricFamily> Collect() const override { return metrics::Collected(Scrape()); }
  // The datapath's device (ovs-system) appearing is the moment the module is surely there.
  void OnLink(uint32_t ifindex, const std::string& name, bool deleted) override;

 private:
  // Follows the module: loads the probes for a new instance, drops them when it is gone. mu_
  // held; at start-up the exporter logs the probes itself.
  void FollowModule(bool log = true) const;

  // What is kept between scrapes of one set of maps (Tables::Maps).
  struct State {
    State(net::LinkSource& links, const config::Config& cfg, const Settings& settings)
        : table(links, cfg.devices), inflight(settings.inflight_timeout) {}
    DeviceTable<upcall_key, upcall_count> table;
    ebpf::Inflight<upcall_packet, upcall_inflight> inflight;
    uint64_t hists_entries = 0;
  };
  // Reads one set of maps into the families' accumulators.
  void Read(Tables::Maps& maps, State& state, std::map<metrics::Labels, double>& total,
            std::map<metrics::Labels, double>& failed, metrics::HistogramFamily& latency) const;

  Loader load_;
  ModuleInstance module_;
  net::LinkSource& links_;
  mutable std::mutex mu_;
  mutable std::unique_ptr<Probe> probe_;  // null: not loaded
  mutable uint64_t instance_ = 0;         // the module instance the probes were loaded for
  mutable std::string error_;             // why probe_ is null
  mutable State host_, other_;
  // By datapath and its namespace inode.
  mutable std::map<std::pair<std::string, uint32_t>, uint64_t> unanswered_;
};

}  // namespace vnet::collectors
