#include "collectors/tap_collector.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>

#include "config/reader.h"
#include "ebpf/loader.h"

extern "C" {
#include "tap.skel.h"
}

namespace vnet::collectors {
namespace {

static_assert(sizeof(tap_hist_key) == 12, "tap_hist_key layout is shared with bpf/tap.h");
static_assert(sizeof(hist) == (HIST_SLOTS + 1) * 8, "hist layout is shared with bpf/hist.h");
static_assert(sizeof(tap_hists) == TAP_DIR__MAX * sizeof(hist), "tap_hists layout is shared with bpf/tap.h");
static_assert(sizeof(tap_stamp) == 32, "tap_stamp layout is shared with bpf/tap.h");

const std::string kName = "tap";

// The tracepoints, in the order of the programs of an alternative.
const std::vector<std::string> kProbes = {"net:netif_receive_skb", "net:net_dev_start_xmit",
                                          "skb:skb_copy_datagram_iovec"};

// Index of the slot whose bound is the first at or above `d`.
int SlotAtOrAbove(std::chrono::nanoseconds d) {
  const double seconds = std::chrono::duration<double>(d).count();
  return std::max(0, static_cast<int>(std::ceil(std::log2(seconds) - 1e-9)) - HIST_SLOT0_EXP);
}

// Map entries for `series` histograms: an entry holds the three directions of a tap (or queue).
uint32_t Entries(uint32_t series) { return (series + TAP_DIR__MAX - 1) / TAP_DIR__MAX; }

// The programs learn the tun driver again (a module loaded again sits elsewhere), and the taps
// and tap feeders they filter on once a bitmap fills with devices long gone: with more than a
// quarter of the bits set most packets would pay a lookup or a clock read. A device is learned
// again from its next packet.
void Forget(tap_bpf* s) {
  s->bss->tun_ops = 0;
  for (auto* bitmap : {&s->bss->tap_ifindexes, &s->bss->feeder_ifindexes}) {
    size_t bits = 0;
    for (uint64_t w : *bitmap) bits += std::popcount(w);
    if (bits > TAP_IFINDEX_BITS / 4) std::fill(std::begin(*bitmap), std::end(*bitmap), 0);
  }
}

}  // namespace

void TapCollector::Settings::Parse(const config::Reader& r) {
  r.ExpectMap({"enabled", "backlog_slots", "max_series", "other_netns_max_series", "sample_every", "per_queue",
               "bucket_min", "bucket_max"});
  if (auto c = r.Child("enabled")) enabled = c->Bool();
  if (auto c = r.Child("per_queue")) per_queue = c->Bool();
  if (auto c = r.Child("backlog_slots")) {
    backlog_slots = c->Uint(1024, 1u << 22);
    // The programs pick a slot with a mask.
    if (backlog_slots & (backlog_slots - 1)) c->Fail("must be a power of two, got " + std::to_string(backlog_slots));
  }
  if (auto c = r.Child("max_series")) max_series = c->Uint(16, 1u << 20);
  if (auto c = r.Child("other_netns_max_series")) other_netns_max_series = c->Uint(16, 1u << 20);
  if (auto c = r.Child("sample_every")) sample_every = c->Uint(1, 1u << 20);
  auto min = r.Child("bucket_min"), max = r.Child("bucket_max");
  if (min) {
    bucket_min = min->Duration();
    if (bucket_min < std::chrono::microseconds(1)) min->Fail("must be at least 1us");
  }
  if (max) {
    bucket_max = max->Duration();
    // The kernel's last bounded slot is 2^5 s.
    if (bucket_max > std::chrono::seconds(32)) max->Fail("must be at most 32s");
  }
  // Checked whichever of the two was given: a range with no bucket exports only +Inf.
  if (bucket_max <= bucket_min) {
    (max ? *max : *min)
        .Fail("bucket_max must be above bucket_min (" + std::to_string(bucket_min.count()) + "ns, bucket_max " +
              std::to_string(bucket_max.count()) + "ns)");
  }
}

TapCollector::TapCollector(std::unique_ptr<Probe> probe, std::string error, net::LinkSource& links,
                           const config::Config& cfg, const Settings& settings)
    : probe_(std::move(probe)),
      error_(std::move(error)),
      cfg_(settings),
      table_(links, cfg.devices),
      other_table_(links, cfg.devices) {}

std::unique_ptr<TapCollector> TapCollector::Attach(const config::Config& cfg, const Settings& settings,
                                                   net::LinkSource& links) {
  std::string error;
  auto loaded = ebpf::LoadFirst<tap_bpf>(
      {tap_bpf__open_opts, tap_bpf__load, tap_bpf__destroy}, cfg.btf_path, cfg.disabled_attach_types,
      {{"tp_btf",
        [](tap_bpf* s) {
          return std::vector{s->progs.tap_netif_receive_skb, s->progs.tap_start_xmit, s->progs.tap_copy_datagram};
        }}},
      [&](tap_bpf* s) {
        bpf_map__set_max_entries(s->maps.tap_backlog, settings.backlog_slots);
        s->rodata->backlog_mask = settings.backlog_slots - 1;
        bpf_map__set_max_entries(s->maps.tap_hists, Entries(settings.max_series));
        bpf_map__set_max_entries(s->maps.tap_hists_other, Entries(settings.other_netns_max_series));
        s->rodata->host_netns = links.OwnNetns();
        s->rodata->sample_every = settings.sample_every;
        s->rodata->per_queue = settings.per_queue;
        s->rodata->filtered = cfg.devices.Filters();
      },
      error);
  auto probe = ebpf::MakeProbe<Tables>(
      std::move(loaded),
      [](tap_bpf* s) {
        return Tables{std::make_unique<ebpf::HashTable<tap_hist_key, tap_hists>>(s->maps.tap_hists),
                      std::make_unique<ebpf::HashTable<tap_hist_key, tap_hists>>(s->maps.tap_hists_other),
                      [s](uint32_t i) { return ebpf::ReadPerCpuCounter(s->maps.tap_stats, i); },
                      [s] { Forget(s); }, std::make_unique<ebpf::HashKeySet<device_id>>(s->maps.tap_excluded)};
      },
      error);
  return std::make_unique<TapCollector>(std::move(probe), error, links, cfg, settings);
}

const std::string& TapCollector::Name() const { return kName; }

std::vector<ProbeStatus> TapCollector::Probes() const {
  std::vector<ProbeStatus> out;
  for (const auto& p : kProbes) {
    out.push_back(probe_ ? ProbeStatus{p, probe_->attach_type, true, ""} : ProbeStatus{p, "", false, error_});
  }
  return out;
}

std::vector<ebpf::Program> TapCollector::Programs() const {
  return probe_ ? probe_->programs : std::vector<ebpf::Program>{};
}

std::vector<MapStatus> TapCollector::Maps() const {
  if (!probe_) return {};
  std::lock_guard lock(mu_);
  const auto& m = probe_->tables;
  return {{"tap_hists", table_.entries(), m.hists->Capacity(), m.stat(TAP_STAT_HIST_FULL), 0},
          {"tap_hists_other", other_table_.entries(), m.hists_other->Capacity(), m.stat(TAP_STAT_OTHER_HIST_FULL), 0}};
}

void TapCollector::OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
  std::lock_guard lock(mu_);
  if (probe_) table_.OnLink(*probe_->tables.hists, ifindex, name, deleted, probe_->tables.excluded.get());
}

metrics::Emit TapCollector::Scrape() const {
  using prometheus::MetricType;
  static_assert(TAP_RX_BACKLOG == 0 && TAP_TX_TRANSIT == 1 && TAP_RX_TRANSIT == 2, "families are indexed by dir");
  static const std::string kFamilies[TAP_DIR__MAX][2] = {
      {"vnet_tap_rx_backlog_seconds",
       "Host to guest: from a packet handed to the tap until the VM's backend (vhost, qemu) read it."},
      {"vnet_tap_tx_transit_seconds",
       "Guest to host: from a packet received from the tap until the host sent it on its egress device."},
      {"vnet_tap_rx_transit_seconds",
       "Uplink to guest: from a packet's arrival on a non-tap device until it was handed to the tap."},
  };
  // What the maps held: written after the lock is released, series by series.
  struct Read {
    std::vector<std::pair<Table::Series, tap_hists>> series;
    uint64_t evicted = 0, identity = 0;
  };
  auto read = std::make_shared<Read>();
  if (probe_) {
    std::lock_guard lock(mu_);
    auto& m = probe_->tables;
    m.forget();
    read->evicted = m.stat(TAP_STAT_EVICTED);
    read->identity = m.stat(TAP_STAT_IDENTITY);
    const auto now = Table::Clock::now();
    read->series = Table::Merged(table_.Read(*m.hists, now, m.excluded.get()),
                                 other_table_.Read(*m.hists_other, now, m.excluded.get()));
  }
  const int first = SlotAtOrAbove(cfg_.bucket_min);
  const int last = std::min(SlotAtOrAbove(cfg_.bucket_max), HIST_SLOTS - 2);
  return [read, first, last, per_queue = cfg_.per_queue, attached = probe_ != nullptr](metrics::Writer& w) {
    for (uint32_t dir = 0; dir < TAP_DIR__MAX; dir++) {
      w.Family(kFamilies[dir][0], kFamilies[dir][1], MetricType::Histogram);
      for (const auto& [s, hists] : read->series) {
        const hist& h = hists.dir[dir];
        // A direction that never had a sample has no series (its entry was made by another).
        if (h.sum_ns == 0 && std::all_of(std::begin(h.slots), std::end(h.slots), [](uint64_t n) { return n == 0; })) {
          continue;
        }
        char queue[16];
        const metrics::Label labels[] = {
            {"device", s.device.device},
            {"netns", s.device.netns},
            {"queue", std::string_view(queue, std::to_chars(queue, queue + sizeof(queue), s.key.queue).ptr - queue)}};
        w.Histogram(std::span(labels, per_queue ? 3 : 2), h, first, last);
      }
    }
    if (!attached) return;
    w.Family("vnet_tap_samples_discarded_total",
             "Latency samples not recorded: `evicted` packets read from a tap whose stamp another packet had taken, "
             "`identity` ends whose packet was not the one stamped.",
             MetricType::Counter);
    const metrics::Label evicted[] = {{"reason", "evicted"}}, identity[] = {{"reason", "identity"}};
    w.Value(evicted, static_cast<double>(read->evicted));
    w.Value(identity, static_cast<double>(read->identity));
  };
}

}  // namespace vnet::collectors
