// vnet_drops_total / vnet_dropped_bytes_total from bpf/drops.bpf.c.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "kernel/drop_reasons.h"
#include "kernel/kallsyms.h"
#include "ebpf/probe.h"
#include "ebpf/table.h"
#include "collectors/collector.h"
#include "collectors/device_table.h"
#include "config/config.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "bpf/drops.h"
}

namespace vnet::collectors {

class DropsCollector : public Collector {
 public:
  // What the collector reads from its maps; views of the kernel's (Attach) or fixed contents in tests.
  struct Tables {
    std::unique_ptr<ebpf::CounterTable<drop_key, drop_value>> drops;        // the exporter's namespace
    std::unique_ptr<ebpf::CounterTable<drop_key, drop_value>> drops_other;  // every other namespace
    std::function<uint64_t(drop_stat)> stat;
    std::unique_ptr<ebpf::KeySet<device_id>> excluded;  // devices the program skips; null in tests that need none
  };
  using Probe = ebpf::Probe<Tables>;

  struct Settings : config::Section {
    static constexpr const char* kName = "drops";
    // (reason, location, device, protocol) series kept in the kernel for the exporter's own
    // network namespace, and for all others together (which anyone can create, and fill).
    uint32_t max_entries = 16384;
    uint32_t other_netns_max_entries = 4096;
    void Parse(const config::Reader& r);
  };

  // `probe` is null when the program did not attach, for the reason `error`.
  DropsCollector(std::unique_ptr<Probe> probe, std::string error, std::unique_ptr<kernel::DropReasons> reasons,
                 std::unique_ptr<kernel::Kallsyms> syms, net::LinkSource& links, const config::Config& cfg);

  // Loads and attaches the probe: tp_btf, else raw_tp. When neither attaches (or there is no
  // kernel BTF) the collector still exists and reports the probe as not attached.
  static std::unique_ptr<DropsCollector> Attach(const config::Config& cfg, const Settings& settings,
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
  std::unique_ptr<kernel::DropReasons> reasons_;
  std::unique_ptr<kernel::Kallsyms> syms_;
  mutable std::mutex mu_;
  using Table = DeviceTable<drop_key, drop_value>;
  mutable Table table_;        // of drops
  mutable Table other_table_;  // of drops_other
};

}  // namespace vnet::collectors
