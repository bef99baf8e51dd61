#include "collectors/drops_collector.h"


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
    : sources_(std::move(sources)), reasons_(std::move(reasons)), syms_(std::move(syms)) {
  if (!sources_.table) return;
  table_ = std::make_unique<DeviceTable<drop_key, drop_value>>(
      std::move(sources_.table), links, cfg.devices,
      [this](const drop_key& k) {
        return DeviceTable<drop_key, drop_value>::Labels{reasons_->Name(k.reason), syms_->Name(k.location),
                                                         ProtoName(k.protocol)};
      },
      [this](const std::vector<drop_key>& keys) {
        std::vector<uint64_t> addrs;
        for (const auto& k : keys) addrs.push_back(k.location);
        syms_->Resolve(addrs);
      });
}

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
      {{"tp_btf", [](drops_bpf* s) { return std::vector{s->progs.kfree_skb_btf}; }},
       {"raw_tp", [](drops_bpf* s) { return std::vector{s->progs.kfree_skb_raw}; }}},
      [&](drops_bpf* s) {
        s->rodata->has_reason = has_reason;
        bpf_map__set_max_entries(s->maps.drops, cfg.drops.max_entries);
      });

  const auto& l = probe->loaded;
  src.probes.push_back({kProbe, l.attach_type, l.skel != nullptr, l.error});
  if (l.skel) {
    drops_bpf* s = l.skel.get();
    src.table = std::make_unique<bpf::HashTable<drop_key, drop_value>>(s->maps.drops);
    src.map_full = [s] { return bpf::ReadPerCpuCounter(s->maps.drop_stats, DROP_STAT_MAP_FULL); };
    for (auto* p : l.programs) src.programs.push_back({bpf_program__name(p), bpf_program__fd(p)});
  }
  src.owner = probe;
  return std::make_unique<DropsCollector>(std::move(src), std::move(reasons), std::make_unique<bpf::Kallsyms>(),
                                          links, cfg);
}

const std::string& DropsCollector::Name() const { return kName; }

std::vector<MapStatus> DropsCollector::Maps() const {
  if (!table_) return {};
  std::lock_guard lock(mu_);
  return {{"drops", table_->entries(), table_->capacity(), sources_.map_full()}};
}

void DropsCollector::OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
  std::lock_guard lock(mu_);
  if (table_) table_->OnLink(ifindex, name, deleted);
}

std::vector<prometheus::MetricFamily> DropsCollector::Collect() const {
  auto packets = metrics::Family("vnet_drops_total", "Packets dropped by the kernel (skb:kfree_skb), by reason and dropping function.",
                                 prometheus::MetricType::Counter);
  auto bytes = metrics::Family("vnet_dropped_bytes_total", "Bytes of the packets counted in vnet_drops_total.",
                               prometheus::MetricType::Counter);
  std::lock_guard lock(mu_);
  if (!table_) return {packets, bytes};
  for (const auto& [l, v] : table_->Read(DeviceTable<drop_key, drop_value>::Clock::now())) {
    metrics::Labels labels{{"device", l[0]}, {"netns", l[1]}, {"reason", l[2]}, {"location", l[3]}, {"protocol", l[4]}};
    metrics::AddCounter(packets, labels, static_cast<double>(v.packets));
    metrics::AddCounter(bytes, labels, static_cast<double>(v.bytes));
  }
  return {packets, bytes};
}

}  // namespace vnet::collectors
