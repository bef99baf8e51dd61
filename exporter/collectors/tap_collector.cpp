#include "collectors/tap_collector.h"

#include <time.h>

#include <cmath>

#include "bpf/loader.h"
#include "metrics/histogram.h"

extern "C" {
#include "tap.skel.h"
}

namespace vnet::collectors {
namespace {

static_assert(sizeof(tap_hist_key) == 16, "tap_hist_key layout is shared with bpf/tap.h");
static_assert(sizeof(hist) == (HIST_SLOTS + 1) * 8, "hist layout is shared with bpf/hist.h");
static_assert(sizeof(tap_inflight) == 24, "tap_inflight layout is shared with bpf/tap.h");

const std::string kName = "tap";
using Table = DeviceTable<tap_hist_key, hist>;

// The tracepoints, in the order of the programs of an alternative.
const std::vector<std::string> kProbes = {"net:netif_rx",           "net:netif_receive_skb",
                                          "net:net_dev_start_xmit", "skb:skb_copy_datagram_iovec",
                                          "skb:consume_skb",        "skb:kfree_skb"};

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Index of the slot whose bound 2^i us is the first at or above `d`.
int SlotAtOrAbove(std::chrono::nanoseconds d) {
  double us = std::chrono::duration<double, std::micro>(d).count();
  return std::max(0, static_cast<int>(std::ceil(std::log2(us) - 1e-9)));
}

}  // namespace

TapCollector::TapCollector(Sources sources, net::LinkSource& links, const config::Config& cfg)
    : sources_(std::move(sources)), cfg_(cfg.tap) {
  if (!sources_.hists) return;
  table_ = std::make_unique<Table>(std::move(sources_.hists), links, cfg.devices, [](const tap_hist_key& k) {
    return Table::Labels{std::to_string(k.queue), std::to_string(k.dir)};
  });
}

std::unique_ptr<TapCollector> TapCollector::Attach(const config::Config& cfg, net::LinkSource& links) {
  struct Probe {
    bpf::Loaded<tap_bpf> loaded;
  };
  auto probe = std::make_shared<Probe>();
  probe->loaded = bpf::LoadFirst<tap_bpf>(
      {tap_bpf__open_opts, tap_bpf__load, tap_bpf__destroy}, cfg.btf_path, cfg.disabled_attach_types,
      {{"tp_btf",
        [](tap_bpf* s) {
          return std::vector{s->progs.tap_netif_rx, s->progs.tap_netif_receive_skb, s->progs.tap_start_xmit,
                             s->progs.tap_copy_datagram, s->progs.tap_consume_skb, s->progs.tap_kfree_skb};
        }}},
      [&](tap_bpf* s) {
        bpf_map__set_max_entries(s->maps.tap_inflight, cfg.tap.max_inflight);
        bpf_map__set_max_entries(s->maps.tap_hists, cfg.tap.max_series);
      });

  Sources src;
  const auto& l = probe->loaded;
  for (const auto& p : kProbes) src.probes.push_back({p, l.attach_type, l.skel != nullptr, l.error});
  if (l.skel) {
    tap_bpf* s = l.skel.get();
    src.hists = std::make_unique<bpf::HashTable<tap_hist_key, hist>>(s->maps.tap_hists);
    src.inflight = std::make_unique<bpf::HashTable<uint64_t, tap_inflight>>(s->maps.tap_inflight);
    src.stat = [s](uint32_t i) { return bpf::ReadPerCpuCounter(s->maps.tap_stats, i); };
    src.now_ns = MonotonicNs;
    for (auto* p : l.programs) src.programs.push_back({bpf_program__name(p), bpf_program__fd(p)});
  }
  src.owner = probe;
  return std::make_unique<TapCollector>(std::move(src), links, cfg);
}

const std::string& TapCollector::Name() const { return kName; }

std::vector<MapStatus> TapCollector::Maps() const {
  if (!table_) return {};
  std::lock_guard lock(mu_);
  return {{"tap_inflight", inflight_entries_, sources_.inflight->Capacity(), sources_.stat(TAP_STAT_INFLIGHT_FULL),
           expired_ + sources_.stat(TAP_STAT_STALE)},
          {"tap_hists", table_->entries(), table_->capacity(), sources_.stat(TAP_STAT_HIST_FULL), 0}};
}

void TapCollector::OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
  std::lock_guard lock(mu_);
  if (table_) table_->OnLink(ifindex, name, deleted);
}

void TapCollector::ExpireInflight() const {
  auto entries = sources_.inflight->Read();
  const uint64_t now = sources_.now_ns();
  const uint64_t timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.inflight_timeout).count();
  std::vector<uint64_t> old;
  for (const auto& [skb, f] : entries) {
    if (now > f.ts && now - f.ts > timeout) old.push_back(skb);
  }
  sources_.inflight->Erase(old);
  expired_ += old.size();
  inflight_entries_ = entries.size() - old.size();
}

std::vector<prometheus::MetricFamily> TapCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families = {
      metrics::Family("vnet_tap_rx_backlog_seconds",
                      "Host to guest: from a packet handed to the tap until the VM's backend (vhost, qemu) read it.",
                      MetricType::Histogram),
      metrics::Family("vnet_tap_tx_transit_seconds",
                      "Guest to host: from a packet received from the tap until the host sent it on its egress device.",
                      MetricType::Histogram),
      metrics::Family("vnet_tap_rx_transit_seconds",
                      "Uplink to guest: from a packet's arrival on a non-tap device until it was handed to the tap.",
                      MetricType::Histogram),
  };
  static_assert(TAP_RX_BACKLOG == 0 && TAP_TX_TRANSIT == 1 && TAP_RX_TRANSIT == 2, "families are indexed by dir");
  std::lock_guard lock(mu_);
  if (!table_) return families;
  ExpireInflight();

  const int first = SlotAtOrAbove(cfg_.bucket_min);
  const int last = std::min(SlotAtOrAbove(cfg_.bucket_max), HIST_SLOTS - 2);
  for (const auto& [l, h] : table_->Read(Table::Clock::now())) {
    const uint32_t dir = std::stoul(l[3]);
    if (dir >= TAP_DIR__MAX) continue;
    metrics::AddHistogram(families[dir], {{"device", l[0]}, {"netns", l[1]}, {"queue", l[2]}}, h, first, last);
  }
  return families;
}

}  // namespace vnet::collectors
