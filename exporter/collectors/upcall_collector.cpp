#include "collectors/upcall_collector.h"

#include <string.h>
#include <time.h>

#include <filesystem>

#include "app/log.h"
#include "bpf/loader.h"
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
const std::string kUpcallProbe = "openvswitch:ovs_dp_upcall";
const std::string kExecuteProbe = "ovs_packet_cmd_execute";
using Table = DeviceTable<upcall_key, upcall_count>;

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

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

UpcallCollector::Sources NotLoaded(const std::string& why, bool waiting) {
  UpcallCollector::Sources src;
  src.probes = {{kUpcallProbe, "", false, why, waiting}, {kExecuteProbe, "", false, why, waiting}};
  return src;
}

// Exposed buckets: 1us .. 4.19s, as the tap histograms' default.
constexpr int kLastBucket = 22;

}  // namespace

UpcallCollector::UpcallCollector(Loader load, std::function<bool()> module_loaded, net::LinkSource& links,
                                 const config::Config& cfg)
    : load_(std::move(load)), module_loaded_(std::move(module_loaded)), links_(links), cfg_(cfg) {
  std::lock_guard lock(mu_);
  sources_ = NotLoaded("openvswitch module not loaded", true);
  LoadIfNeeded(false);
}

std::unique_ptr<UpcallCollector> UpcallCollector::Attach(const config::Config& cfg, net::LinkSource& links) {
  auto load = [cfg] {
    struct Probe {
      bpf::Loaded<upcall_bpf> loaded;
    };
    auto probe = std::make_shared<Probe>();
    // Each alternative is a whole set: the upcall's arguments and result, and the execute side.
    probe->loaded = bpf::LoadFirst<upcall_bpf>(
        {upcall_bpf__open_opts, upcall_bpf__load, upcall_bpf__destroy}, cfg.btf_path, cfg.disabled_attach_types,
        {{"fentry", [](upcall_bpf* s) { return std::vector{s->progs.upcall_fexit, s->progs.execute_fentry}; }},
         {"tp_btf",
          [](upcall_bpf* s) {
            return std::vector{s->progs.upcall_tp_btf, s->progs.upcall_kretprobe, s->progs.execute_kprobe};
          }},
         {"raw_tp",
          [](upcall_bpf* s) {
            return std::vector{s->progs.upcall_raw_tp, s->progs.upcall_kretprobe, s->progs.execute_kprobe};
          }},
         {"kprobe",
          [](upcall_bpf* s) {
            return std::vector{s->progs.upcall_kprobe, s->progs.upcall_kretprobe, s->progs.execute_kprobe};
          }}},
        [&](upcall_bpf* s) {
          bpf_map__set_max_entries(s->maps.upcall_inflight, cfg.upcall.max_inflight);
          bpf_map__set_max_entries(s->maps.upcall_counts, cfg.upcall.max_series);
        });
    const auto& l = probe->loaded;
    if (!l.skel) return NotLoaded(l.error, false);
    Sources src;
    const std::string execute_type = l.attach_type == "fentry" ? "fentry" : "kprobe";
    src.probes = {{kUpcallProbe, l.attach_type, true, ""}, {kExecuteProbe, execute_type, true, ""}};
    upcall_bpf* s = l.skel.get();
    src.counts = std::make_unique<bpf::HashTable<upcall_key, upcall_count>>(s->maps.upcall_counts);
    src.hists = std::make_unique<bpf::HashTable<upcall_hist_key, hist>>(s->maps.upcall_hists);
    src.inflight = std::make_unique<bpf::HashTable<upcall_packet, upcall_inflight>>(s->maps.upcall_inflight);
    src.stat = [s](uint32_t i) { return bpf::ReadPerCpuCounter(s->maps.upcall_stats, i); };
    src.now_ns = MonotonicNs;
    for (auto* p : l.programs) src.programs.push_back({bpf_program__name(p), bpf_program__fd(p)});
    src.owner = probe;
    return src;
  };
  auto module_loaded = [] { return std::filesystem::exists("/sys/module/openvswitch"); };
  return std::make_unique<UpcallCollector>(load, module_loaded, links, cfg);
}

void UpcallCollector::LoadIfNeeded(bool log) const {
  if (sources_.counts) return;
  if (!module_loaded_()) {
    if (tried_while_loaded_) sources_ = NotLoaded("openvswitch module not loaded", true);
    tried_while_loaded_ = false;
    return;
  }
  if (tried_while_loaded_) return;
  tried_while_loaded_ = true;
  sources_ = load_();
  if (log) {
    for (const auto& p : sources_.probes) {
      if (p.attached) {
        app::Log(app::Level::kInfo, "collector upcall: " + p.probe + " attached (" + p.attach_type + ")");
      } else {
        app::Log(app::Level::kWarn, "collector upcall: " + p.probe + " not attached: " + p.error);
      }
    }
  }
  if (!sources_.counts) return;
  table_ = std::make_unique<Table>(std::move(sources_.counts), links_, cfg_.devices, [](const upcall_key& k) {
    return Table::Labels{DatapathName(k.datapath), std::to_string(k.cmd), std::to_string(k.err)};
  });
}

const std::string& UpcallCollector::Name() const { return kName; }

std::vector<ProbeStatus> UpcallCollector::Probes() const {
  std::lock_guard lock(mu_);
  return sources_.probes;
}

std::vector<ProgramRef> UpcallCollector::Programs() const {
  std::lock_guard lock(mu_);
  return sources_.programs;
}

std::vector<MapStatus> UpcallCollector::Maps() const {
  std::lock_guard lock(mu_);
  if (!table_) return {};
  return {{"upcall_counts", table_->entries(), table_->capacity(), sources_.stat(UPCALL_STAT_COUNTS_FULL), 0},
          {"upcall_inflight", inflight_entries_, sources_.inflight->Capacity(),
           sources_.stat(UPCALL_STAT_INFLIGHT_FULL), expired_ + sources_.stat(UPCALL_STAT_REPLACED)},
          {"upcall_hists", 0, sources_.hists->Capacity(), sources_.stat(UPCALL_STAT_HIST_FULL), 0}};
}

void UpcallCollector::OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
  std::lock_guard lock(mu_);
  if (!deleted && name == "ovs-system") LoadIfNeeded();
  if (table_) table_->OnLink(ifindex, name, deleted);
}

void UpcallCollector::ExpireInflight() const {
  auto entries = sources_.inflight->Read();
  const uint64_t now = sources_.now_ns();
  const uint64_t timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.upcall.inflight_timeout).count();
  std::vector<upcall_packet> old;
  for (const auto& [pkt, f] : entries) {
    if (now > f.ts && now - f.ts > timeout) {
      old.push_back(pkt);
      unanswered_[DatapathName(f.datapath)]++;
    }
  }
  sources_.inflight->Erase(old);
  expired_ += old.size();
  inflight_entries_ = entries.size() - old.size();
}

std::vector<prometheus::MetricFamily> UpcallCollector::Collect() const {
  using prometheus::MetricType;
  auto upcalls = metrics::Family("vnet_ovs_upcalls_total",
                                 "Packets the Open vSwitch kernel datapath sent to ovs-vswitchd (cmd miss: no flow; "
                                 "action: a userspace action), by the device they came in on; failed ones included.",
                                 MetricType::Counter);
  auto failures = metrics::Family("vnet_ovs_upcall_failures_total",
                                  "Upcalls that did not reach ovs-vswitchd, by the kernel's error (EAGAIN: the handler's "
                                  "socket was full; ENOTCONN: no handler). The datapath counts them as lost.",
                                  MetricType::Counter);
  auto latency = metrics::Family("vnet_ovs_upcall_latency_seconds",
                                 "From a packet's upcall until ovs-vswitchd sent it back to the datapath for execution.",
                                 MetricType::Histogram);
  auto unanswered = metrics::Family("vnet_ovs_upcalls_unanswered_total",
                                    "Upcalls queued to ovs-vswitchd whose packet it did not send back for execution "
                                    "within collectors.upcall.inflight_timeout (dropped by its rules, or not matched).",
                                    MetricType::Counter);
  std::lock_guard lock(mu_);
  LoadIfNeeded();
  if (!table_) return {upcalls, failures, latency, unanswered};
  ExpireInflight();

  std::map<metrics::Labels, double> total, failed;
  for (const auto& [l, c] : table_->Read(Table::Clock::now())) {
    // l: device, netns, datapath, cmd, err
    total[{{"datapath", l[2]}, {"device", l[0]}, {"netns", l[1]}, {"cmd", CmdName(std::stoul(l[3]))}}] += c.packets;
    const uint32_t err = std::stoul(l[4]);
    if (err) failed[{{"datapath", l[2]}, {"device", l[0]}, {"netns", l[1]}, {"error", ErrnoName(err)}}] += c.packets;
  }
  for (const auto& [l, v] : total) metrics::AddCounter(upcalls, l, v);
  for (const auto& [l, v] : failed) metrics::AddCounter(failures, l, v);

  for (const auto& [k, h] : sources_.hists->Read()) {
    metrics::AddHistogram(latency, {{"datapath", DatapathName(k.datapath)}}, h, 0, kLastBucket);
  }
  for (const auto& [dp, n] : unanswered_) metrics::AddCounter(unanswered, {{"datapath", dp}}, n);
  return {upcalls, failures, latency, unanswered};
}

}  // namespace vnet::collectors
