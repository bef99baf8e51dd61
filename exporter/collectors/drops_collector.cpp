#include "collectors/drops_collector.h"

#include <map>
#include <string_view>

#include "config/reader.h"
#include "ebpf/loader.h"
#include "metrics/family.h"

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
        bpf_map__set_max_entries(s->maps.drops, settings.max_entries);
        bpf_map__set_max_entries(s->maps.drops_other, settings.other_netns_max_entries);
      },
      error);
  auto probe = ebpf::MakeProbe<Tables>(
      std::move(loaded),
      [](drops_bpf* s) {
        return Tables{std::make_unique<ebpf::HashTable<drop_key, drop_value>>(s->maps.drops),
                      std::make_unique<ebpf::HashTable<drop_key, drop_value>>(s->maps.drops_other),
                      [s](drop_stat stat) { return ebpf::ReadPerCpuCounter(s->maps.drop_stats, stat); }};
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
  if (probe_) table_.OnLink(*probe_->tables.drops, ifindex, name, deleted);
}

std::vector<prometheus::MetricFamily> DropsCollector::Collect() const {
  auto packets = metrics::Family("vnet_drops_total", "Packets dropped by the kernel (skb:kfree_skb), by reason and dropping function.",
                                 prometheus::MetricType::Counter);
  auto bytes = metrics::Family("vnet_dropped_bytes_total", "Bytes of the packets counted in vnet_drops_total.",
                               prometheus::MetricType::Counter);
  if (!probe_) return metrics::Families(std::move(packets), std::move(bytes));
  std::lock_guard lock(mu_);
  const auto now = decltype(table_)::Clock::now();
  auto series = table_.Read(*probe_->tables.drops, now);
  series.merge(other_table_.Read(*probe_->tables.drops_other, now));  // keys differ by namespace
  std::vector<uint64_t> locations;
  for (const auto& [s, v] : series) locations.push_back(s.key.location);
  syms_->Resolve(locations);  // one pass over kallsyms for all of them
  // Addresses inside one function are one series. The key's views point into `series` and
  // into the names resolved above: labels are copied once per series made, not per entry.
  struct Key {
    std::string_view device, netns, location;
    uint32_t reason, protocol;
    auto operator<=>(const Key&) const = default;
  };
  std::map<Key, drop_value> by_key;
  for (const auto& [s, v] : series) {
    ebpf::Accumulate(by_key[{s.device.device, s.device.netns, syms_->Name(s.key.location), s.key.reason, s.key.protocol}],
                     v);
  }
  std::map<uint32_t, std::string> reasons;  // each reason named once
  packets.metric.reserve(by_key.size());
  bytes.metric.reserve(by_key.size());
  for (const auto& [k, v] : by_key) {
    auto r = reasons.find(k.reason);
    if (r == reasons.end()) r = reasons.emplace(k.reason, reasons_->Name(k.reason)).first;
    const metrics::Labels labels = {{"device", std::string(k.device)},
                                    {"netns", std::string(k.netns)},
                                    {"reason", r->second},
                                    {"location", std::string(k.location)},
                                    {"protocol", ProtoName(k.protocol)}};
    metrics::AddCounter(packets, labels, static_cast<double>(v.packets));
    metrics::AddCounter(bytes, labels, static_cast<double>(v.bytes));
  }
  return metrics::Families(std::move(packets), std::move(bytes));
}

}  // namespace vnet::collectors
