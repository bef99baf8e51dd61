#include "collectors/drops_collector.h"

#include <set>

#include "bpf/loader.h"
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

struct Probe {
  bpf::Loaded<drops_bpf> loaded;
};

}  // namespace

DropsCollector::DropsCollector(Sources sources, std::unique_ptr<bpf::DropReasons> reasons,
                               std::unique_ptr<bpf::Kallsyms> syms, net::LinkSource& links, const config::Config& cfg)
    : sources_(std::move(sources)),
      reasons_(std::move(reasons)),
      syms_(std::move(syms)),
      devices_(cfg.devices),
      tracker_(links, cfg.devices.grace_period) {}

std::unique_ptr<DropsCollector> DropsCollector::Attach(const config::Config& cfg, net::LinkSource& links) {
  Sources src;
  std::unique_ptr<bpf::DropReasons> reasons;
  try {
    reasons = std::make_unique<bpf::DropReasons>(cfg.btf_path.empty() ? "/sys/kernel/btf/vmlinux" : cfg.btf_path,
                                                 "/sys/kernel/btf");
  } catch (const std::exception& e) {
    src.probes.push_back({kProbe, "", false, std::string(e.what()) + " (set bpf.btf_path)"});
    return std::make_unique<DropsCollector>(std::move(src), nullptr, nullptr, links, cfg);
  }
  const bool has_reason = reasons->tracepoint_has_reason();

  auto probe = std::make_shared<Probe>();
  probe->loaded = bpf::LoadFirst<drops_bpf>(
      {drops_bpf__open_opts, drops_bpf__load, drops_bpf__destroy}, cfg.btf_path, cfg.disabled_attach_types,
      {{"tp_btf", [](drops_bpf* s) { return s->progs.kfree_skb_btf; }},
       {"raw_tp", [](drops_bpf* s) { return s->progs.kfree_skb_raw; }}},
      [&](drops_bpf* s) {
        s->rodata->has_reason = has_reason;
        bpf_map__set_max_entries(s->maps.drops, cfg.drops.max_entries);
      });

  const auto& l = probe->loaded;
  src.probes.push_back({kProbe, l.attach_type, l.skel != nullptr, l.error});
  if (l.skel) {
    drops_bpf* s = l.skel.get();
    src.table = std::make_unique<bpf::PerCpuHashTable<drop_key, drop_value>>(s->maps.drops);
    src.map_full = [s] { return bpf::ReadPerCpuCounter(s->maps.drop_stats, DROP_STAT_MAP_FULL); };
    src.programs.push_back({bpf_program__name(l.program), bpf_program__fd(l.program)});
  }
  src.owner = probe;
  return std::make_unique<DropsCollector>(std::move(src), std::move(reasons), std::make_unique<bpf::Kallsyms>(),
                                          links, cfg);
}

const std::string& DropsCollector::Name() const { return kName; }

std::vector<MapStatus> DropsCollector::Maps() const {
  if (!sources_.table) return {};
  std::lock_guard lock(mu_);
  return {{"drops", entries_, sources_.table->Capacity(), sources_.map_full()}};
}

DropsCollector::SeriesKey DropsCollector::Labels(const drop_key& k, const net::DeviceLabels& dev) const {
  return {dev.device, dev.netns, reasons_->Name(k.reason), syms_->Name(k.location), ProtoName(k.protocol)};
}

void DropsCollector::Retire(const std::vector<std::pair<drop_key, drop_value>>& entries, net::DeviceId id,
                            const net::DeviceLabels& labels, net::DeviceTracker::Clock::time_point now) const {
  std::vector<drop_key> erase;
  std::vector<uint64_t> addrs;
  for (const auto& [k, v] : entries) {
    if (k.netns == id.netns && k.ifindex == id.ifindex) addrs.push_back(k.location);
  }
  syms_->Resolve(addrs);
  for (const auto& [k, v] : entries) {
    if (k.netns != id.netns || k.ifindex != id.ifindex) continue;
    Retired& r = retired_[Labels(k, labels)];
    r.value.packets += v.packets;
    r.value.bytes += v.bytes;
    r.until = now + tracker_.grace();
    erase.push_back(k);
  }
  sources_.table->Erase(erase);
}

void DropsCollector::OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
  std::lock_guard lock(mu_);
  if (!sources_.table) return;
  net::DeviceId id{tracker_.OwnNetns(), ifindex};
  auto known = tracker_.Known(id);
  if (!deleted && (!known || known->device == name)) return;  // not a rename of a device we count
  tracker_.Forget(id);
  Retire(sources_.table->Read(), id, known ? *known : net::DeviceLabels{name, ""},
         net::DeviceTracker::Clock::now());
}

std::vector<prometheus::MetricFamily> DropsCollector::Collect() const {
  auto packets = metrics::Family("vnet_drops_total", "Packets dropped by the kernel (skb:kfree_skb), by reason and dropping function.",
                                 prometheus::MetricType::Counter);
  auto bytes = metrics::Family("vnet_dropped_bytes_total", "Bytes of the packets counted in vnet_drops_total.",
                               prometheus::MetricType::Counter);
  std::lock_guard lock(mu_);
  if (!sources_.table) return {packets, bytes};

  const auto now = net::DeviceTracker::Clock::now();
  auto entries = sources_.table->Read();
  std::set<net::DeviceId> ids;
  for (const auto& [k, v] : entries) {
    if (k.ifindex) ids.insert({k.netns, k.ifindex});
  }
  auto devs = tracker_.Resolve(ids, now);
  for (const auto& [id, old] : devs.changed) Retire(entries, id, old, now);
  std::set<net::DeviceId> expired(devs.expired.begin(), devs.expired.end());
  std::set<net::DeviceId> changed;
  for (const auto& [id, old] : devs.changed) changed.insert(id);
  std::vector<drop_key> erase;
  std::erase_if(entries, [&](const auto& e) {
    net::DeviceId id{e.first.netns, e.first.ifindex};
    if (expired.count(id)) {
      erase.push_back(e.first);
      return true;
    }
    return changed.count(id) > 0;  // Retire() took those
  });
  sources_.table->Erase(erase);
  std::erase_if(retired_, [&](const auto& r) { return r.second.until <= now; });
  entries_ = entries.size();

  std::vector<uint64_t> addrs;
  for (const auto& [k, v] : entries) addrs.push_back(k.location);
  syms_->Resolve(addrs);

  // Several addresses inside one function are one series; so are live and retired counts
  // of a device that was re-created under the same name.
  std::map<SeriesKey, drop_value> series;
  for (const auto& [k, v] : entries) {
    net::DeviceLabels dev;  // no device: empty labels
    if (k.ifindex) dev = devs.labels.at({k.netns, k.ifindex});
    drop_value& s = series[Labels(k, dev)];
    s.packets += v.packets;
    s.bytes += v.bytes;
  }
  for (const auto& [key, r] : retired_) {
    drop_value& s = series[key];
    s.packets += r.value.packets;
    s.bytes += r.value.bytes;
  }
  for (const auto& [key, v] : series) {
    if (!devices_.Selected(key[0])) continue;
    metrics::Labels labels{{"device", key[0]}, {"netns", key[1]}, {"reason", key[2]}, {"location", key[3]},
                           {"protocol", key[4]}};
    metrics::AddCounter(packets, labels, static_cast<double>(v.packets));
    metrics::AddCounter(bytes, labels, static_cast<double>(v.bytes));
  }
  return {packets, bytes};
}

}  // namespace vnet::collectors
