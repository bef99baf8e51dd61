#include "collectors/upcall_collector.h"

#include <string.h>
#include <sys/stat.h>

#include "config/reader.h"
#include "ebpf/loader.h"
#include "log/log.h"
#include "metrics/histogram.h"

extern "C" {
#include "upcall.skel.h"
}

namespace vnet::collectors {
namespace {

static_assert(sizeof(upcall_key) == 32, "upcall_key layout is shared with bpf/upcall.h");
static_assert(sizeof(upcall_packet) == 8 + UPCALL_HEAD, "upcall_packet layout is shared with bpf/upcall.h");
static_assert(sizeof(upcall_inflight) == 24, "upcall_inflight layout is shared with bpf/upcall.h");

const std::string kName = "upcall";
const std::string kUpcallProbe = "ovs_dp_upcall";
const std::string kExecuteProbe = "ovs_packet_cmd_execute";
const std::string kNoModule = "openvswitch module not loaded";

// enum ovs_packet_cmd (include/uapi/linux/openvswitch.h).
std::string CmdName(uint32_t cmd) {
  switch (cmd) {
    case 1: return "miss";
    case 2: return "action";
    default: return std::to_string(cmd);
  }
}

std::string ErrnoName(uint32_t err) {
  const char* name = strerrorname_np(static_cast<int>(err));
  return name ? name : std::to_string(err);
}

std::string DatapathName(const char (&s)[UPCALL_NAME_LEN]) { return std::string(s, strnlen(s, UPCALL_NAME_LEN)); }

// sysfs gives a module's directory a new inode number each time the module is loaded.
uint64_t ModuleInode() {
  struct stat st;
  return stat("/sys/module/openvswitch", &st) == 0 ? st.st_ino : 0;
}

// Exposed buckets: 1us .. 4.19s, as the tap histograms' default.
constexpr int kLastBucket = 22;

}  // namespace

void UpcallCollector::Settings::Parse(const config::Reader& r) {
  r.ExpectMap({"enabled", "max_inflight", "max_series", "other_netns_max_series", "inflight_timeout"});
  if (auto v = r.Child("enabled")) enabled = v->Bool();
  if (auto v = r.Child("max_inflight")) max_inflight = v->Uint(64, 1u << 22);
  if (auto v = r.Child("max_series")) max_series = v->Uint(16, 1u << 20);
  if (auto v = r.Child("other_netns_max_series")) other_netns_max_series = v->Uint(16, 1u << 20);
  if (auto v = r.Child("inflight_timeout")) {
    inflight_timeout = v->Seconds();
    if (inflight_timeout.count() < 1) v->Fail("must be at least 1s");
  }
}

UpcallCollector::UpcallCollector(Loader load, ModuleInstance module, net::LinkSource& links,
                                 const config::Config& cfg, const Settings& settings)
    : load_(std::move(load)),
      module_(std::move(module)),
      links_(links),
      error_(kNoModule),
      host_(links, cfg, settings),
      other_(links, cfg, settings) {
  std::lock_guard lock(mu_);
  FollowModule(false);
}

std::unique_ptr<UpcallCollector> UpcallCollector::Attach(const config::Config& cfg, const Settings& settings,
                                                         net::LinkSource& links) {
  auto load = [cfg, settings, own = links.OwnNetns()](std::string& error) -> std::unique_ptr<Probe> {
    auto loaded = ebpf::LoadFirst<upcall_bpf>(
        {upcall_bpf__open_opts, upcall_bpf__load, upcall_bpf__destroy}, cfg.btf_path, cfg.disabled_attach_types,
        {{"kprobe",
          [](upcall_bpf* s) {
            return std::vector{s->progs.upcall_kprobe, s->progs.upcall_kretprobe, s->progs.execute_kprobe};
          }}},
        [&](upcall_bpf* s) {
          s->rodata->host_netns = own;
          bpf_map__set_max_entries(s->maps.upcall_inflight, settings.max_inflight);
          bpf_map__set_max_entries(s->maps.upcall_inflight_other, settings.max_inflight);
          bpf_map__set_max_entries(s->maps.upcall_counts, settings.max_series);
          bpf_map__set_max_entries(s->maps.upcall_counts_other, settings.other_netns_max_series);
        },
        error);
    return ebpf::MakeProbe<Tables>(
        std::move(loaded),
        [](upcall_bpf* s) {
          auto maps = [](bpf_map* counts, bpf_map* hists, bpf_map* inflight) {
            return Tables::Maps{std::make_unique<ebpf::HashTable<upcall_key, upcall_count>>(counts),
                                std::make_unique<ebpf::HashTable<upcall_hist_key, hist>>(hists),
                                std::make_unique<ebpf::HashTable<upcall_packet, upcall_inflight>>(inflight)};
          };
          return Tables{maps(s->maps.upcall_counts, s->maps.upcall_hists, s->maps.upcall_inflight),
                        maps(s->maps.upcall_counts_other, s->maps.upcall_hists_other, s->maps.upcall_inflight_other),
                        [s](uint32_t i) { return ebpf::ReadPerCpuCounter(s->maps.upcall_stats, i); },
                        ebpf::MonotonicNs};
        },
        error);
  };
  return std::make_unique<UpcallCollector>(load, ModuleInode, links, cfg, settings);
}

void UpcallCollector::FollowModule(bool log) const {
  const uint64_t instance = module_();
  if (instance == instance_) return;
  instance_ = instance;
  // What the probes counted belongs to the module instance they were loaded for.
  probe_.reset();
  error_ = kNoModule;
  if (instance == 0) {
    if (log) log::Log(log::Level::kInfo, "collector upcall: openvswitch module unloaded, probes detached");
    return;
  }
  probe_ = load_(error_);
  if (!log) return;
  if (probe_) {
    log::Log(log::Level::kInfo, "collector upcall: openvswitch module loaded, probes attached (" +
                                    probe_->attach_type + ")");
  } else {
    log::Log(log::Level::kWarn, "collector upcall: probes not attached: " + error_);
  }
}

const std::string& UpcallCollector::Name() const { return kName; }

std::vector<ProbeStatus> UpcallCollector::Probes() const {
  std::lock_guard lock(mu_);
  std::vector<ProbeStatus> out;
  for (const auto& p : {kUpcallProbe, kExecuteProbe}) {
    if (probe_) {
      out.push_back({p, probe_->attach_type, true, ""});
    } else {
      out.push_back({p, "", false, error_, instance_ == 0});
    }
  }
  return out;
}

std::vector<ebpf::Program> UpcallCollector::Programs() const {
  std::lock_guard lock(mu_);
  return probe_ ? probe_->programs : std::vector<ebpf::Program>{};
}

std::vector<MapStatus> UpcallCollector::Maps() const {
  std::lock_guard lock(mu_);
  if (!probe_) return {};
  const auto& t = probe_->tables;
  std::vector<MapStatus> out;
  auto add = [&](const std::string& suffix, const Tables::Maps& m, const State& state, uint32_t stats) {
    out.push_back({"upcall_counts" + suffix, state.table.entries(), m.counts->Capacity(),
                   t.stat(stats + UPCALL_STAT_COUNTS_FULL), 0});
    out.push_back({"upcall_inflight" + suffix, state.inflight.entries(), m.inflight->Capacity(),
                   t.stat(stats + UPCALL_STAT_INFLIGHT_FULL),
                   state.inflight.expired() + t.stat(stats + UPCALL_STAT_REPLACED)});
    out.push_back({"upcall_hists" + suffix, state.hists_entries, m.hists->Capacity(),
                   t.stat(stats + UPCALL_STAT_HIST_FULL), 0});
  };
  add("", t.host, host_, 0);
  add("_other", t.other, other_, UPCALL_STAT_OTHER);
  return out;
}

void UpcallCollector::OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
  std::lock_guard lock(mu_);
  if (!deleted && name == "ovs-system") FollowModule();
  if (!probe_) return;
  host_.table.OnLink(*probe_->tables.host.counts, ifindex, name, deleted);
  other_.table.OnLink(*probe_->tables.other.counts, ifindex, name, deleted);
}

metrics::Emit UpcallCollector::Scrape() const {
  using prometheus::MetricType;
  auto upcalls = metrics::Family("vnet_ovs_upcalls_total",
                                 "Packets the Open vSwitch kernel datapath sent to ovs-vswitchd (cmd miss: no flow; "
                                 "action: a userspace action), by the device they came in on; failed ones included.",
                                 MetricType::Counter);
  auto failures = metrics::Family("vnet_ovs_upcall_failures_total",
                                  "Upcalls that did not reach ovs-vswitchd, by the kernel's error (EAGAIN: the handler's "
                                  "socket was full; ENOTCONN: no handler). The datapath counts them as lost.",
                                  MetricType::Counter);
  metrics::HistogramFamily latency{
      "vnet_ovs_upcall_latency_seconds",
      "From a packet's upcall until ovs-vswitchd sent it back to the datapath for execution.", 0, kLastBucket, {}};
  auto unanswered = metrics::Family("vnet_ovs_upcalls_unanswered_total",
                                    "Upcalls queued to ovs-vswitchd whose packet it did not send back for execution "
                                    "within collectors.upcall.inflight_timeout (dropped by its rules, or not matched).",
                                    MetricType::Counter);
  auto emit = [&] {
    return [counters = metrics::Families(std::move(upcalls), std::move(failures)), latency = std::move(latency),
            unanswered = std::move(unanswered)](metrics::Writer& w) {
      for (const auto& f : counters) w.Write(f);
      latency.WriteTo(w);
      w.Write(unanswered);
    };
  };
  std::lock_guard lock(mu_);
  FollowModule();
  if (!probe_) return emit();
  std::map<metrics::Labels, double> total, failed;
  Read(probe_->tables.host, host_, total, failed, latency);
  Read(probe_->tables.other, other_, total, failed, latency);
  for (const auto& [l, v] : total) metrics::AddCounter(upcalls, l, v);
  for (const auto& [l, v] : failed) metrics::AddCounter(failures, l, v);
  for (const auto& [dp, n] : unanswered_) {
    metrics::AddCounter(unanswered, {{"datapath", dp.first}, {"netns", links_.NetnsLabel(dp.second)}}, n);
  }
  return emit();
}

void UpcallCollector::Read(Tables::Maps& maps, State& state, std::map<metrics::Labels, double>& total,
                           std::map<metrics::Labels, double>& failed, metrics::HistogramFamily& latency) const {
  for (const auto& [pkt, f] : state.inflight.Expire(*maps.inflight, probe_->tables.now_ns())) {
    unanswered_[{DatapathName(f.datapath), pkt.netns}]++;
  }
  for (const auto& [s, c] : state.table.Read(*maps.counts, decltype(state.table)::Clock::now())) {
    const std::string dp = DatapathName(s.key.datapath);
    total[{{"datapath", dp}, {"device", s.device.device}, {"netns", s.device.netns}, {"cmd", CmdName(s.key.cmd)}}] +=
        c.packets;
    if (s.key.err) {
      failed[{{"datapath", dp}, {"device", s.device.device}, {"netns", s.device.netns}, {"error", ErrnoName(s.key.err)}}] +=
          c.packets;
    }
  }
  auto hists = maps.hists->Read();
  state.hists_entries = hists.size();
  for (const auto& [k, h] : hists) {
    latency.series.push_back({{{"datapath", DatapathName(k.datapath)}, {"netns", links_.NetnsLabel(k.netns)}}, h});
  }
}

}  // namespace vnet::collectors
