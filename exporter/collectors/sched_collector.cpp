#include "collectors/sched_collector.h"

#include <set>
#include <utility>

#include "collectors/interface_collector.h"
#include "config/reader.h"
#include "ebpf/inflight.h"
#include "ebpf/loader.h"
#include "metrics/histogram.h"

extern "C" {
#include "sched.skel.h"
}

namespace vnet::collectors {
namespace {

static_assert(sizeof(sched_thread) == 24, "sched_thread layout is shared with bpf/sched.h");
static_assert(sizeof(sched_key) == 8, "sched_key layout is shared with bpf/sched.h");
static_assert(sizeof(sched_stats) == sizeof(hist) + 8, "sched_stats layout is shared with bpf/sched.h");

const std::string kName = "sched";
const std::vector<std::string> kProbes = {"sched:sched_switch", "sched:sched_wakeup"};

std::string KindName(uint32_t kind) {
  switch (kind) {
    case SCHED_VCPU: return "vcpu";
    case SCHED_VHOST: return "vhost";
    case SCHED_MAIN: return "main";
    case SCHED_IOTHREAD: return "iothread";
    case SCHED_HANDLER: return "handler";
    case SCHED_REVALIDATOR: return "revalidator";
    default: return std::to_string(kind);
  }
}

// Exposed buckets: 1us .. 4.19s, as the tap histograms' default.
constexpr int kLastBucket = 22;

}  // namespace

void SchedCollector::Settings::Parse(const config::Reader& r) {
  r.ExpectMap({"enabled", "max_threads", "max_series"});
  if (auto v = r.Child("enabled")) enabled = v->Bool();
  if (auto v = r.Child("max_threads")) max_threads = v->Uint(64, 1u << 22);
  if (auto v = r.Child("max_series")) max_series = v->Uint(16, 1u << 20);
}

SchedCollector::SchedCollector(std::unique_ptr<Probe> probe, std::string error, Scan scan, const config::Config& cfg)
    : probe_(std::move(probe)), error_(std::move(error)), scan_(std::move(scan)), grace_(cfg.devices.grace_period) {}

std::unique_ptr<SchedCollector> SchedCollector::Attach(const config::Config& cfg, const Settings& settings) {
  std::string error;
  auto loaded = ebpf::LoadFirst<sched_bpf>(
      {sched_bpf__open_opts, sched_bpf__load, sched_bpf__destroy}, cfg.btf_path, cfg.disabled_attach_types,
      {{"tp_btf", [](sched_bpf* s) { return std::vector{s->progs.sched_switch_btf, s->progs.sched_wakeup_btf}; }},
       {"raw_tp", [](sched_bpf* s) { return std::vector{s->progs.sched_switch_raw, s->progs.sched_wakeup_raw}; }}},
      [&](sched_bpf* s) {
        bpf_map__set_max_entries(s->maps.sched_threads, settings.max_threads);
        bpf_map__set_max_entries(s->maps.sched_stats, settings.max_series);
      },
      error);
  auto probe = ebpf::MakeProbe<Tables>(
      std::move(loaded),
      [](sched_bpf* s) {
        return Tables{std::make_unique<ebpf::HashTable<__u32, sched_thread>>(s->maps.sched_threads),
                      [s](uint32_t word, uint64_t bits) {
                        return bpf_map_update_elem(bpf_map__fd(s->maps.sched_tracked), &word, &bits, BPF_ANY) == 0;
                      },
                      std::make_unique<ebpf::HashTable<sched_key, sched_stats>>(s->maps.sched_stats),
                      [s](uint32_t i) { return ebpf::ReadPerCpuCounter(s->maps.sched_stat, i); }, ebpf::MonotonicNs};
      },
      error);
  auto threads = std::make_shared<identity::VmThreads>("/proc", cfg.Get<InterfaceCollector::Settings>().libvirt_dir);
  return std::make_unique<SchedCollector>(std::move(probe), error, [threads] { return threads->Scan(); }, cfg);
}

const std::string& SchedCollector::Name() const { return kName; }

std::vector<ProbeStatus> SchedCollector::Probes() const {
  std::vector<ProbeStatus> out;
  for (const auto& p : kProbes) {
    out.push_back(probe_ ? ProbeStatus{p, probe_->attach_type, true, ""} : ProbeStatus{p, "", false, error_});
  }
  return out;
}

std::vector<ebpf::Program> SchedCollector::Programs() const {
  return probe_ ? probe_->programs : std::vector<ebpf::Program>{};
}

std::vector<MapStatus> SchedCollector::Maps() const {
  if (!probe_) return {};
  std::lock_guard lock(mu_);
  const auto& t = probe_->tables;
  return {{"sched_threads", tracked_.size(), t.threads->Capacity(), threads_full_, 0},
          {"sched_stats", stats_entries_, t.stats->Capacity(), t.stat(SCHED_STAT_STATS_FULL), 0}};
}

void SchedCollector::Forget(uint32_t pid) const {
  std::vector<sched_key> keys;
  for (uint32_t kind = 0; kind < SCHED_THREAD_KIND__MAX; kind++) keys.push_back({pid, kind});
  probe_->tables.stats->Erase(keys);
}

void SchedCollector::Mark(uint32_t tid, bool on) const {
  const uint32_t word = tid / 64;
  uint64_t& bits = tracked_bits_[word];
  bits = on ? bits | 1ull << (tid % 64) : bits & ~(1ull << (tid % 64));
  probe_->tables.set_tracked(word, bits);
  if (!bits) tracked_bits_.erase(word);
}

void SchedCollector::Track(const identity::ThreadScan& scan, Clock::time_point now) const {
  // A known pid with another start time is another process: what the old one counted goes now.
  std::set<std::string> live;  // VM names, "" for ovs-vswitchd
  for (const auto& [pid, p] : scan.processes) {
    auto it = processes_.find(pid);
    if (it != processes_.end() && it->second.identity.start != p.start) Forget(pid);
    processes_[pid] = {p, std::nullopt};
    live.insert(p.vm_name);
  }
  // An exited process's series stay for the grace period, unless its VM (or ovs-vswitchd) runs
  // again under another pid: a series must not join a process that did not count it.
  for (auto it = processes_.begin(); it != processes_.end();) {
    auto& e = *it;
    if (scan.processes.count(e.first)) {
      ++it;
      continue;
    }
    if (!e.second.gone_since) e.second.gone_since = now;
    if (now - *e.second.gone_since < grace_ && !live.count(e.second.identity.vm_name)) {
      ++it;
      continue;
    }
    Forget(e.first);
    it = processes_.erase(it);
  }

  auto& threads = *probe_->tables.threads;
  std::vector<__u32> gone;
  for (const auto& [tid, t] : tracked_) {
    if (!scan.threads.count(tid)) gone.push_back(tid);
  }
  // The filter first: the probe looks a thread up only while its bit is set.
  for (__u32 tid : gone) Mark(tid, false);
  threads.Erase(gone);
  for (__u32 tid : gone) tracked_.erase(tid);
  for (const auto& [tid, t] : scan.threads) {
    auto it = tracked_.find(tid);
    if (it != tracked_.end() && it->second.pid == t.pid && it->second.kind == t.kind) continue;
    sched_thread v{};
    v.pid = t.pid;
    v.kind = t.kind;
    if (tid < SCHED_TID_LIMIT && threads.Put(tid, v)) {
      tracked_[tid] = t;
      Mark(tid, true);
    } else {
      threads_full_++;
      if (tracked_.erase(tid)) Mark(tid, false);
    }
  }
}

metrics::Emit SchedCollector::Scrape() const {
  using prometheus::MetricType;
  metrics::HistogramFamily delay{"vnet_sched_delay_seconds",
                                 "How long a VM's (vm_name) or ovs-vswitchd's threads of a kind waited for a CPU: from "
                                 "being woken, or preempted while runnable, until running (run-queue delay).",
                                 0, kLastBucket, {}};
  auto running = metrics::Family("vnet_sched_running_seconds_total",
                                 "Time a VM's or ovs-vswitchd's threads of a kind ran on a CPU.", MetricType::Counter);
  auto threads = metrics::Family("vnet_sched_threads",
                                 "Threads of a kind the sched collector times, per VM and for ovs-vswitchd.",
                                 MetricType::Gauge);
  auto emit = [&] {
    return [delay = std::move(delay), families = metrics::Families(std::move(running), std::move(threads))](
               metrics::Writer& w) {
      delay.WriteTo(w);
      for (const auto& f : families) w.Write(f);
    };
  };
  if (!probe_) return emit();
  std::lock_guard lock(mu_);  // also over the scan, which keeps what it classified for the next
  Track(scan_(), Clock::now());
  auto& t = probe_->tables;
  // The stats first, then the clock, then the threads: a thread's running time so far is added
  // once, and never more than what it will have credited when it leaves the CPU, so the
  // counter never goes back.
  auto stats = t.stats->Read();
  stats_entries_ = stats.size();
  const uint64_t now = t.now_ns();
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> running_now;
  for (const auto& [tid, th] : t.threads->Read()) {
    if (th.running_at && th.running_at < now) running_now[{th.pid, th.kind}] += now - th.running_at;
  }

  struct Series {
    hist delay{};
    uint64_t run_ns = 0;
  };
  std::map<std::pair<std::string, uint32_t>, Series> series;  // by VM name ("": ovs-vswitchd) and kind
  for (const auto& [k, v] : stats) {
    auto p = processes_.find(k.pid);
    if (p == processes_.end()) continue;
    Series& s = series[{p->second.identity.vm_name, k.kind}];
    ebpf::Accumulate(s.delay, v.delay);
    s.run_ns += v.run_ns;
    if (auto r = running_now.find({k.pid, k.kind}); r != running_now.end()) s.run_ns += r->second;
  }
  std::map<std::pair<std::string, uint32_t>, uint64_t> counts;
  for (const auto& [tid, th] : tracked_) {
    if (auto p = processes_.find(th.pid); p != processes_.end()) counts[{p->second.identity.vm_name, th.kind}]++;
  }

  auto labels = [](const std::pair<std::string, uint32_t>& k) {
    metrics::Labels l;
    if (!k.first.empty()) l.emplace_back("vm_name", k.first);
    l.emplace_back("thread", KindName(k.second));
    return l;
  };
  for (const auto& [k, s] : series) {
    delay.series.emplace_back(labels(k), s.delay);
    metrics::AddCounter(running, labels(k), static_cast<double>(s.run_ns) / 1e9);
  }
  for (const auto& [k, n] : counts) metrics::AddGauge(threads, labels(k), static_cast<double>(n));
  return emit();
}

}  // namespace vnet::collectors
