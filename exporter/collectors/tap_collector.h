// vnet_tap_{rx_backlog,tx_transit,rx_transit}_seconds histograms from bpf/tap.bpf.c, and
// vnet_tap_samples_discarded_total.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>

#include "collectors/collector.h"
#include "collectors/device_table.h"
#include "config/config.h"
#include "ebpf/probe.h"
#include "ebpf/table.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "bpf/tap.h"
}

namespace vnet::collectors {

class TapCollector : public Collector {
 public:
  // What the collector reads from its maps; views of the kernel's (Attach) or fixed contents in tests.
  struct Tables {
    std::unique_ptr<ebpf::CounterTable<tap_hist_key, tap_hists>> hists;        // the exporter's namespace
    std::unique_ptr<ebpf::CounterTable<tap_hist_key, tap_hists>> hists_other;  // every other namespace
    std::function<uint64_t(uint32_t)> stat;  // enum tap_stat
    std::function<void()> forget;            // run at each scrape: stale learned state goes (Forget)
    std::unique_ptr<ebpf::KeySet<device_id>> excluded;  // taps the programs skip; null in tests that need none
  };
  using Probe = ebpf::Probe<Tables>;

  struct Settings : config::Section {
    static constexpr const char* kName = "tap";
    uint32_t backlog_slots = 65536;  // packets waiting in tap rings timed at once (a power of two)
    // (tap, direction) histograms, (tap, queue, direction) with per_queue, of the exporter's
    // network namespace, and of all other namespaces together (which anyone can create, and fill).
    // A map entry holds a tap's (or queue's) three directions: the maps have a third as many.
    uint32_t max_series = 4096;
    uint32_t other_netns_max_series = 1024;
    uint32_t sample_every = 1;  // packets per sample, per direction and CPU
    bool per_queue = false;     // a histogram per tap queue (a `queue` label), else per tap
    std::chrono::nanoseconds bucket_min{std::chrono::microseconds(1)};
    std::chrono::nanoseconds bucket_max{std::chrono::seconds(4)};
    void Parse(const config::Reader& r);
  };

  // `probe` is null when the programs did not attach, for the reason `error`.
  TapCollector(std::unique_ptr<Probe> probe, std::string error, net::LinkSource& links, const config::Config& cfg,
               const Settings& settings);

  // Loads and attaches the probe's programs (tp_btf). When they cannot attach the collector still
  // exists and reports its probes as not attached.
  static std::unique_ptr<TapCollector> Attach(const config::Config& cfg, const Settings& settings,
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
  void OnLink(uint32_t ifindex, const std::string& name, bool deleted) override;

 private:
  const std::unique_ptr<Probe> probe_;
  const std::string error_;
  Settings cfg_;
  mutable std::mutex mu_;
  using Table = DeviceTable<tap_hist_key, tap_hists>;
  mutable Table table_;
  mutable Table other_table_;  // of hists_other
};

}  // namespace vnet::collectors
