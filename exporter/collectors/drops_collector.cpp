#include "collectors/drops_collector.h"

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "config/reader.h"
#include "ebpf/loader.h"

extern "C" {
#include "drops.skel.h"
}

namespace vnet::collectors {
namespace {

static_assert(sizeof(drop_key) == 24, "drop_key layout is shared with bpf/drops.h");
static_assert(sizeof(drop_value) == 16, "drop_value layout is shared with bpf/drops.h");

const std::string kName = "drops";
constexpr const char* kProbe = "skb:kfree_skb";

const char* ProtoName(uint32_t p) {
  switch (p) {
    case VNET_PROTO_TCP: return "tcp";
    case VNET_PROTO_UDP: return "udp";
    case VNET_PROTO_ICMP: return "icmp";
    case VNET_PROTO_ICMPV6: return "icmpv6";
    case VNET_PROTO_ARP: return "arp";
    case VNET_PROTO_OTHER_IPV4: return "other-ipv4";
    case VNET_PROTO_OTHER_IPV6: return "other-ipv6";
  }
  return "other";
}

}  // namespace

DropsCollector::DropsCollector(std::unique_ptr<Probe> probe, std::string error,
                               std::unique_ptr<kernel::DropReasons> reasons, std::unique_ptr<kernel::Kallsyms> syms,
                               net::LinkSource& links, const config::Config& cfg)
    : probe_(std::move(probe)),
      error_(std::move(error)),
      reasons_(std::move(reasons)),
      syms_(std::move(syms)),
      table_(links, cfg.devices),
      other_table_(links, cfg.devices) {}

void DropsCollector::Settings::Parse(const config::Reader& r) {
  r.ExpectMap({"enabled", "max_entries", "other_netns_max_entries"});
  if (auto c = r.Child("enabled")) enabled = c->Bool();
  if (auto c = r.Child("max_entries")) max_entries = c->Uint(64, 1u << 22);
  if (auto c = r.Child("other_netns_max_entries")) other_netns_max_entries = c->Uint(64, 1u << 22);
}

std::unique_ptr<DropsCollector> DropsCollector::Attach(const config::Config& cfg, const Settings& settings,
                                                       net::LinkSource& links) {
  std::unique_ptr<kernel::DropReasons> reasons;
  try {
    reasons = std::make_unique<kernel::DropReasons>(cfg.btf_path.empty() ? "/sys/kernel/btf/vmlinux" : cfg.btf_path,
                                                    "/sys/kernel/btf");
  } catch (const std::exception& e) {
    return std::make_unique<DropsCollector>(nullptr, std::string(e.what()) + " (set bpf.btf_path)", nullptr, nullptr,
                                            links, cfg);
  }
  const bool has_reason = reasons->tracepoint_has_reason();

  std::string error;
  auto loaded = ebpf::LoadFirst<drops_bpf>(
      {drops_bpf__open_opts, drops_bpf__load, drops_bpf__destroy}, cfg.btf_path, cfg.disabled_attach_types,
      {{"tp_btf", [](drops_bpf* s) { return std::vector{s->progs.kfree_skb_btf}; }},
       {"raw_tp", [](drops_bpf* s) { return std::vector{s->progs.kfree_skb_raw}; }}},
      [&](drops_bpf* s) {
        s->rodata->has_reason = has_reason;
        s->rodata->host_netns = links.OwnNetns();
        s->rodata->filtered = cfg.devices.Filters();
        bpf_map__set_max_entries(s->maps.drops, settings.max_entries);
        bpf_map__set_max_entries(s->maps.drops_other, settings.other_netns_max_entries);
      },
      error);
  auto probe = ebpf::MakeProbe<Tables>(
      std::move(loaded),
      [](drops_bpf* s) {
        return Tables{std::make_unique<ebpf::HashTable<drop_key, drop_value>>(s->maps.drops),
                      std::make_unique<ebpf::HashTable<drop_key, drop_value>>(s->maps.drops_other),
                      [s](drop_stat stat) { return ebpf::ReadPerCpuCounter(s->maps.drop_stats, stat); },
                      std::make_unique<ebpf::HashKeySet<device_id>>(s->maps.drops_excluded)};
      },
      error);
  return std::make_unique<DropsCollector>(std::move(probe), error, std::move(reasons),
                                          std::make_unique<kernel::Kallsyms>(), links, cfg);
}

const std::string& DropsCollector::Name() const { return kName; }

std::vector<ProbeStatus> DropsCollector::Probes() const {
  if (probe_) return {{kProbe, probe_->attach_type, true, ""}};
  return {{kProbe, "", false, error_}};
}

std::vector<ebpf::Program> DropsCollector::Programs() const {
  return probe_ ? probe_->programs : std::vector<ebpf::Program>{};
}

std::vector<MapStatus> DropsCollector::Maps() const {
  if (!probe_) return {};
  std::lock_guard lock(mu_);
  const auto& t = probe_->tables;
  return {{"drops", table_.entries(), t.drops->Capacity(), t.stat(DROP_STAT_MAP_FULL)},
          {"drops_other", other_table_.entries(), t.drops_other->Capacity(), t.stat(DROP_STAT_OTHER_MAP_FULL)}};
}

// Link events are those of the exporter's own namespace: only `drops` has its devices.
void DropsCollector::OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
  std::lock_guard lock(mu_);
  if (probe_) table_.OnLink(*probe_->tables.drops, ifindex, name, deleted, probe_->tables.excluded.get());
}

metrics::Emit DropsCollector::Scrape() const {
  // What the maps held, grouped into series: addresses inside one function are one series.
  struct Row {
    size_t device;    // index in `devices`
    size_t location;  // index in `locations`, which are in name order
    uint32_t reason, protocol;
    drop_value value;
    auto Key() const { return std::tie(device, location, reason, protocol); }
  };
  struct Read {
    std::vector<net::DeviceLabels> devices;
    std::vector<std::string> locations;
    std::map<uint32_t, std::string> reasons;
    std::vector<Row> rows;
  };
  auto read = std::make_shared<Read>();
  if (probe_) {
    std::lock_guard lock(mu_);
    const auto now = Table::Clock::now();
    auto* excluded = probe_->tables.excluded.get();
    auto series =
        Table::Merged(table_.Read(*probe_->tables.drops, now, excluded),
                      other_table_.Read(*probe_->tables.drops_other, now, excluded));
    std::unordered_set<uint64_t> distinct;  // a few hundred functions for thousands of entries
    for (const auto& [s, v] : series) distinct.insert(s.key.location);
    const std::vector<uint64_t> addresses(distinct.begin(), distinct.end());
    syms_->Resolve(addresses);  // one pass over kallsyms for all of them
    // Each function's name once, in name order, and the index of each address's name: worked
    // out per address, not per entry.
    std::map<std::string, size_t> locations;
    for (uint64_t a : addresses) locations.emplace(syms_->Name(a), 0);
    for (auto& [name, index] : locations) {
      index = read->locations.size();
      read->locations.push_back(name);
    }
    std::unordered_map<uint64_t, size_t> location_of;
    for (uint64_t a : addresses) location_of.emplace(a, locations.at(syms_->Name(a)));
    read->rows.reserve(series.size());
    for (const auto& [s, v] : series) {  // in device order
      if (read->devices.empty() || !(read->devices.back() == s.device)) read->devices.push_back(s.device);
      read->rows.push_back({read->devices.size() - 1, location_of.at(s.key.location), s.key.reason, s.key.protocol, v});
      if (!read->reasons.contains(s.key.reason)) read->reasons.emplace(s.key.reason, reasons_->Name(s.key.reason));
    }
  }
  // Rows of one series made adjacent, then summed into the first of them.
  auto& rows = read->rows;
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.Key() < b.Key(); });
  size_t kept = 0;
  for (size_t i = 0; i < rows.size(); i++) {
    if (kept > 0 && rows[kept - 1].Key() == rows[i].Key()) {
      ebpf::Accumulate(rows[kept - 1].value, rows[i].value);
    } else {
      rows[kept++] = rows[i];
    }
  }
  rows.resize(kept);
  return [read](metrics::Writer& w) {
    for (bool packets : {true, false}) {
      if (packets) {
        w.Family("vnet_drops_total", "Packets dropped by the kernel (skb:kfree_skb), by reason and dropping function.",
                 prometheus::MetricType::Counter);
      } else {
        w.Family("vnet_dropped_bytes_total", "Bytes of the packets counted in vnet_drops_total.",
                 prometheus::MetricType::Counter);
      }
      for (const Row& r : read->rows) {
        const auto& device = read->devices[r.device];
        const metrics::Label labels[] = {{"device", device.device},
                                         {"netns", device.netns},
                                         {"reason", read->reasons.at(r.reason)},
                                         {"location", read->locations[r.location]},
                                         {"protocol", ProtoName(r.protocol)}};
        w.Value(labels, static_cast<double>(packets ? r.value.packets : r.value.bytes));
      }
    }
  };
}

}  // namespace vnet::collectors
