// vnet_sched_delay_seconds, vnet_sched_running_seconds_total and vnet_sched_threads from
// bpf/sched.bpf.c: how long each VM's vCPU, main-loop, I/O and vhost threads, and
// ovs-vswitchd's handlers and revalidators, waited for a CPU, and how long they ran. The
// threads are found at each scrape (identity/vm_threads.h) and handed to the probe, which
// times only them.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "collectors/collector.h"
#include "config/config.h"
#include "ebpf/probe.h"
#include "ebpf/table.h"
#include "identity/vm_threads.h"
#include "metrics/family.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "bpf/sched.h"
}

namespace vnet::collectors {

class SchedCollector : public Collector {
 public:
  // What the collector reads from its maps; views of the kernel's (Attach) or fixed contents in tests.
  struct Tables {
    std::unique_ptr<ebpf::CounterTable<__u32, sched_thread>> threads;  // written by the collector
    std::function<bool(uint32_t word, uint64_t bits)> set_tracked;      // a word of sched_tracked
    std::unique_ptr<ebpf::CounterTable<sched_key, sched_stats>> stats;
    std::function<uint64_t(uint32_t)> stat;  // enum sched_stat
    std::function<uint64_t()> now_ns;        // the clock of bpf_ktime_get_ns()
  };
  using Probe = ebpf::Probe<Tables>;
  using Scan = std::function<identity::ThreadScan()>;
  using Clock = std::chrono::steady_clock;

  struct Settings : config::Section {
    static constexpr const char* kName = "sched";
    uint32_t max_threads = 16384;  // threads timed at once
    uint32_t max_series = 8192;    // (process, thread kind) pairs, those of exited VMs in their grace period included
    void Parse(const config::Reader& r);
  };

  // `probe` is null when the programs did not attach, for the reason `error`.
  SchedCollector(std::unique_ptr<Probe> probe, std::string error, Scan scan, const config::Config& cfg);

  // Loads and attaches bpf/sched.bpf.c (tp_btf, else raw_tp); threads from /proc and the
  // libvirt run directory of the interface collector's configuration.
  static std::unique_ptr<SchedCollector> Attach(const config::Config& cfg, const Settings& settings);
  static std::unique_ptr<Collector> Make(const config::Config& cfg, net::LinkSource&) {
    return Attach(cfg, cfg.Get<Settings>());
  }

  const std::string& Name() const override;
  std::vector<ProbeStatus> Probes() const override;
  std::vector<MapStatus> Maps() const override;
  std::vector<ebpf::Program> Programs() const override;
  metrics::Emit Scrape() const override;
  std::vector<prometheus::MetricFamily> Collect() const override { return metrics::Collected(Scrape()); }

 private:
  // Hands the scan's threads to the probe and retires processes that are gone. mu_ held.
  void Track(const identity::ThreadScan& scan, Clock::time_point now) const;
  void Forget(uint32_t pid) const;
  // Sets thread `tid`'s bit in sched_tracked (the probe's filter) to `on`.
  void Mark(uint32_t tid, bool on) const;

  struct Process {
    identity::TrackedProcess identity;
    std::optional<Clock::time_point> gone_since;
  };

  std::unique_ptr<Probe> probe_;
  std::string error_;
  Scan scan_;
  Clock::duration grace_;
  mutable std::mutex mu_;
  mutable std::map<uint32_t, identity::TrackedThread> tracked_;  // what the threads map holds
  mutable std::map<uint32_t, uint64_t> tracked_bits_;             // sched_tracked's words that are not 0
  mutable std::map<uint32_t, Process> processes_;                // by pid, exited ones in their grace period
  mutable uint64_t threads_full_ = 0;  // threads not tracked: the map was full
  mutable uint64_t stats_entries_ = 0;
};

}  // namespace vnet::collectors
