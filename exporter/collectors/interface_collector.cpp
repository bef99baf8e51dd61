#include "collectors/interface_collector.h"

#include <filesystem>

#include "config/reader.h"
#include "log/log.h"
#include "metrics/family.h"
#include "net/jsonrpc.h"

namespace vnet::collectors {
namespace {

const std::string kName = "interface";

// How old the list of devices may get without a link change: a tap's attached queues (the
// `queues` label) change without one.
constexpr std::chrono::seconds kLinksMaxAge{60};

const std::string& First(const std::string& a, const std::string& b) { return a.empty() ? b : a; }

// Transmit queues of a device (`dir` its /sys/class/net directory).
int TxQueues(const std::filesystem::path& dir) {
  int queues = 0;
  std::error_code ec;
  for (const auto& q : std::filesystem::directory_iterator(dir / "queues", ec)) {
    if (q.path().filename().string().rfind("tx-", 0) == 0) queues++;
  }
  return queues;
}

}  // namespace

void InterfaceCollector::Settings::Parse(const config::Reader& r) {
  r.ExpectMap({"enabled", "libvirt_dir", "ovsdb_socket", "ovsdb_timeout", "libvirt_max_file_bytes", "ovsdb_max_reply_bytes"});
  if (auto v = r.Child("enabled")) enabled = v->Bool();
  if (auto v = r.Child("libvirt_dir")) libvirt_dir = v->String();
  if (auto v = r.Child("ovsdb_socket")) ovsdb_socket = v->String();
  if (auto v = r.Child("ovsdb_timeout")) {
    ovsdb_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(v->Duration());
    if (ovsdb_timeout < std::chrono::milliseconds(1) || ovsdb_timeout > std::chrono::seconds(10)) {
      v->Fail("must be between 1ms and 10s");
    }
  }
  if (auto v = r.Child("libvirt_max_file_bytes")) libvirt_max_file_bytes = v->Uint(4096, 1u << 28);
  if (auto v = r.Child("ovsdb_max_reply_bytes")) ovsdb_max_reply_bytes = v->Uint(4096, 1u << 28);
}

std::unique_ptr<Collector> InterfaceCollector::Make(const config::Config& cfg, net::LinkSource&) {
  // Collect() holds mu_ around the call: the cache is never used by two scrapes at once.
  auto links = std::make_shared<net::CachedLinks>(kLinksMaxAge);
  return std::make_unique<InterfaceCollector>(cfg, cfg.Get<Settings>(), [links] { return links->Get(); });
}

InterfaceCollector::InterfaceCollector(const config::Config& cfg, const Settings& settings,
                                       std::function<std::vector<net::Link>()> links, std::string sysfs)
    : devices_(cfg.devices),
      links_(std::move(links)),
      sysfs_(std::move(sysfs)),
      libvirt_(settings.libvirt_dir, settings.libvirt_max_file_bytes),
      ovsdb_(settings.ovsdb_socket, settings.ovsdb_timeout, settings.ovsdb_max_reply_bytes) {}

const std::string& InterfaceCollector::Name() const { return kName; }

std::vector<prometheus::MetricFamily> InterfaceCollector::Collect() const {
  using prometheus::MetricType;
  auto info = metrics::Family("vnet_interface_info",
                              "A VM's network interface on this host: tap device, VM, bridge and OVS port. Always 1; "
                              "join with * on(device) group_left(vm_name) vnet_interface_info.",
                              MetricType::Gauge);
  auto up = metrics::Family("vnet_interface_source_up",
                            "1 when the identity source answered at the last scrape (libvirt: its live domain "
                            "directory is readable; ovsdb: ovsdb-server answered).",
                            MetricType::Gauge);
  std::lock_guard lock(mu_);
  std::map<std::string, identity::VmInterface> vms;
  bool libvirt_up = libvirt_.Read(vms);
  std::map<std::string, identity::OvsInterface> ovs;
  bool ovsdb_up = true;
  try {
    ovs = ovsdb_.Read();
    ovsdb_error_.reset();
  } catch (const std::exception& e) {  // unreachable, or a reply not as expected: only its labels go
    ovsdb_up = false;
    if (ovsdb_error_ != e.what()) log::Log(log::Level::kInfo, std::string("interface: no OVSDB identity: ") + e.what());
    ovsdb_error_ = e.what();
  }
  metrics::AddGauge(up, {{"source", "libvirt"}}, libvirt_up ? 1 : 0);
  metrics::AddGauge(up, {{"source", "ovsdb"}}, ovsdb_up ? 1 : 0);

  for (const auto& link : links_()) {
    const std::string& dev = link.name;
    auto vm = vms.find(dev);
    auto port = ovs.find(dev);
    if (!link.tap && vm == vms.end() && port == ovs.end()) continue;  // not a VM's interface
    if (!devices_.Selected(dev)) continue;
    const identity::VmInterface v = vm == vms.end() ? identity::VmInterface{} : vm->second;
    const identity::OvsInterface o = port == ovs.end() ? identity::OvsInterface{} : port->second;
    // A Linux bridge is the device's master; an OVS port's master is the datapath (ovs-system).
    const std::string linux_bridge = link.master == "ovs-system" ? "" : link.master;
    metrics::AddGauge(info,
                      {{"device", dev},
                       {"ifindex", std::to_string(link.ifindex)},
                       {"mac", link.mac},
                       // A tap's attached queues (0 while no VM has it open), else the device's.
                       {"queues", std::to_string(link.tun ? link.tun_queues : TxQueues(std::filesystem::path(sysfs_) / dev))},
                       {"vm_name", v.vm_name},
                       {"vm_uuid", First(v.vm_uuid, o.vm_uuid)},
                       {"vm_mac", First(v.mac, o.attached_mac)},
                       {"bridge", First(o.bridge, First(linux_bridge, v.bridge))},
                       {"ovs_port", o.port},
                       {"iface_id", First(o.iface_id, v.iface_id)},
                       {"iface_status", o.iface_status}},
                      1);
  }
  return metrics::Families(std::move(info), std::move(up));
}

}  // namespace vnet::collectors
