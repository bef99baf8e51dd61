// vnet_interface_info against a real ovsdb-server and real taps, with libvirt domain XML files
// written as libvirtd writes them; joined with the drops of the same taps, through VM churn.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../support/fixtures.h"
#include "../support/netns.h"
#include "../support/ovs.h"
#include "collectors/drops_collector.h"
#include "collectors/interface_collector.h"
#include "net/link_dump.h"
#include "net/link_watcher.h"

namespace vnet::testing {
namespace {

std::string DomainXml(const std::string& name, const std::string& uuid, const std::string& mac,
                      const std::string& dev, const std::string& iface_id) {
  return "<domstatus state='running' reason='booted' pid='1'>\n  <domain type='kvm' id='1'>\n    <name>" + name +
         "</name>\n    <uuid>" + uuid + "</uuid>\n    <devices>\n      <interface type='bridge'>\n        <mac address='" +
         mac + "'/>\n        <source bridge='br-vx'/>\n        <virtualport type='openvswitch'>\n          <parameters "
         "interfaceid='" + iface_id + "'/>\n        </virtualport>\n        <target dev='" + dev +
         "'/>\n      </interface>\n    </devices>\n  </domain>\n</domstatus>\n";
}

// Drops per VM, as `sum by (vm_name) (vnet_drops_total * on(device) group_left(vm_name) vnet_interface_info)`.
std::map<std::string, double> DropsPerVm(collectors::Collector& drops, collectors::Collector& info) {
  std::map<std::string, std::string> vm_of;
  for (const auto& f : info.Collect()) {
    if (f.name != "vnet_interface_info") continue;
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) {
        if (l.name == "vm_name") vm_of[m.label[0].value] = l.value;
      }
    }
  }
  std::map<std::string, double> out;
  for (const auto& f : drops.Collect()) {
    if (f.name != "vnet_drops_total") continue;
    for (const auto& m : f.metric) {
      if (m.label[1].value != "") continue;  // the exporter's own namespace, as vnet_interface_info
      auto vm = vm_of.find(m.label[0].value);
      if (vm != vm_of.end()) out[vm->second] += m.counter.value;
    }
  }
  return out;
}

std::map<std::string, std::string> InfoOf(collectors::Collector& info, const std::string& device) {
  for (const auto& f : info.Collect()) {
    if (f.name != "vnet_interface_info") continue;
    for (const auto& m : f.metric) {
      if (m.label[0].value != device) continue;
      std::map<std::string, std::string> l;
      for (const auto& lp : m.label) l[lp.name] = lp.value;
      return l;
    }
  }
  return {};
}

// The interface collector lists the devices again only after the kernel announced a link change
// (a device made, moved to a bridge, deleted), or when its list is old.
TEST(InterfaceTest, TheLinksAreDumpedAgainOnlyAfterALinkChangeOrWhenOld) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: creates devices";
  Netns ns(Prefix() + "cache");
  int dumps = 0;
  std::unique_ptr<net::CachedLinks> cached;
  auto names = [&] {
    std::set<std::string> out;
    ns.Run([&] {
      for (const auto& l : cached->Get()) out.insert(l.name);
    });
    return out;
  };
  ns.Run([&] {
    cached = std::make_unique<net::CachedLinks>(std::chrono::hours(1), [&] {
      dumps++;
      return net::DumpLinks();
    });
  });
  EXPECT_EQ(names(), std::set<std::string>{"lo"});
  EXPECT_EQ(names(), std::set<std::string>{"lo"});
  EXPECT_EQ(dumps, 1);
  ns.Sh("ip link add d0 type bridge");
  EXPECT_EQ(names(), (std::set<std::string>{"d0", "lo"}));
  EXPECT_EQ(dumps, 2);
  EXPECT_EQ(names().size(), 2u);
  EXPECT_EQ(dumps, 2) << "dumped again without a link change";
  ns.Sh("ip link del d0");
  EXPECT_EQ(names(), std::set<std::string>{"lo"});
  EXPECT_EQ(dumps, 3);
  ns.Run([&] {
    cached = std::make_unique<net::CachedLinks>(std::chrono::seconds(0), [&] {
      dumps++;
      return net::DumpLinks();
    });
  });
  names();
  names();
  EXPECT_EQ(dumps, 5) << "a list of age 0 is dumped at every call";
  ns.Run([&] { cached.reset(); });
}

// The link dump the interface collector reads instead of sysfs, against devices of a namespace
// of its own: a VM's tap with 4 queues open on a bridge, a persistent multi-queue tap nobody has open,
// a tun (L3) device and a veth.
TEST(InterfaceTest, TheLinkDumpHasTheKernelsDevices) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: creates devices";
  Netns ns(Prefix() + "dump");
  ns.Sh("ip link add name brx type bridge && ip tuntap add dev idle mode tap multi_queue && "
        "ip tuntap add dev l3 mode tun && ip link add v0 type veth peer name v1");
  Tap vm(&ns, "vm0", 4);
  ns.Sh("ip link set vm0 master brx && ip link set vm0 address fe:54:00:12:34:56");
  std::map<std::string, net::Link> links;
  ns.Run([&] {
    for (auto& l : net::DumpLinks()) links[l.name] = l;
  });
  ASSERT_EQ(links.size(), 7u);  // lo, brx, idle, l3, v0, v1, vm0
  for (const auto& [name, l] : links) {
    const std::string shown = ns.Sh("ip -o link show " + name);
    EXPECT_EQ(shown.substr(0, shown.find(':')), std::to_string(l.ifindex)) << name;
  }
  const auto& vm0 = links.at("vm0");
  EXPECT_EQ(vm0.mac, "fe:54:00:12:34:56");
  EXPECT_EQ(vm0.master, "brx");
  EXPECT_TRUE(vm0.tun && vm0.tap);
  EXPECT_EQ(vm0.tun_queues, 4u);
  EXPECT_TRUE(links.at("idle").tap);
  EXPECT_EQ(links.at("idle").tun_queues, 0u);
  EXPECT_EQ(links.at("idle").master, "");
  EXPECT_TRUE(links.at("l3").tun);
  EXPECT_FALSE(links.at("l3").tap);
  EXPECT_EQ(links.at("l3").tun_queues, 1u);
  EXPECT_EQ(links.at("l3").mac, "");
  EXPECT_FALSE(links.at("v0").tun || links.at("v0").tap);
  EXPECT_EQ(links.at("lo").mac, "00:00:00:00:00:00");
}

TEST(InterfaceTest, IdentityFollowsATapGivenToAnotherVm) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: creates taps and loads BPF programs";
  OvsdbServer ovs;
  ovs.Vsctl("add-br br-vx");
  TempDir libvirt;
  const std::string tap_name = Prefix() + "t";  // in the host namespace, as libvirt makes them; no address
  config::Config cfg;
  collectors::InterfaceCollector::Settings settings;
  settings.libvirt_dir = libvirt.path().string();
  settings.ovsdb_socket = ovs.socket();
  cfg.devices.include = {tap_name};
  net::SystemLinks links;
  auto drops = collectors::DropsCollector::Attach(cfg, {}, links);
  ASSERT_TRUE(drops->Probes()[0].attached);
  collectors::InterfaceCollector info(cfg, settings);
  net::LinkWatcher watcher([&](uint32_t i, const std::string& n, bool d) { drops->OnLink(i, n, d); });

  // The VM sends frames the host is not the destination of: dropped as OTHERHOST on its tap.
  auto frame = UdpFrame("02:00:00:00:00:99", "52:54:00:00:00:0a", "192.0.2.10", "192.0.2.1");
  auto start_vm = [&](const std::string& vm, const std::string& uuid, const std::string& mac) {
    auto tap = std::make_unique<Tap>(nullptr, tap_name);
    Sh("sysctl -qw net.ipv6.conf." + tap_name + ".disable_ipv6=1 && ip link set " + tap_name + " up");
    ovs.Vsctl("add-port br-vx " + tap_name + " -- set Interface " + tap_name + " external_ids:iface-id=port-" + vm +
              " external_ids:attached-mac=" + mac + " external_ids:vm-uuid=" + uuid +
              " external_ids:iface-status=active");
    libvirt.Write(vm + ".xml", DomainXml(vm, uuid, mac, tap_name, "port-" + vm));
    return tap;
  };
  auto stop_vm = [&](std::unique_ptr<Tap>& tap, const std::string& vm) {
    ovs.Vsctl("del-port br-vx " + tap_name);
    std::filesystem::remove(libvirt.path() / (vm + ".xml"));
    tap.reset();
  };

  auto tap = start_vm("vm-a", "uuid-a", "52:54:00:00:00:0a");
  auto l = InfoOf(info, tap_name);
  EXPECT_EQ(l["vm_name"], "vm-a");
  EXPECT_EQ(l["vm_uuid"], "uuid-a");
  EXPECT_EQ(l["vm_mac"], "52:54:00:00:00:0a");
  EXPECT_EQ(l["bridge"], "br-vx");
  EXPECT_EQ(l["ovs_port"], tap_name);
  EXPECT_EQ(l["iface_id"], "port-vm-a");
  EXPECT_EQ(l["iface_status"], "active");
  EXPECT_EQ(l["queues"], "1");
  for (int i = 0; i < 5; i++) tap->Write(frame);
  ASSERT_TRUE(WaitFor([&] { return DropsPerVm(*drops, info)["vm-a"] >= 5; }));
  EXPECT_EQ(DropsPerVm(*drops, info), (std::map<std::string, double>{{"vm-a", 5}}));

  // vm-a stops; vm-b starts and gets a tap of the same name, while traffic flows.
  stop_vm(tap, "vm-a");
  tap = start_vm("vm-b", "uuid-b", "52:54:00:00:00:0b");
  for (int i = 0; i < 2; i++) tap->Write(frame);
  EXPECT_EQ(InfoOf(info, tap_name)["vm_name"], "vm-b");
  ASSERT_TRUE(WaitFor([&] {
    auto per_vm = DropsPerVm(*drops, info);
    EXPECT_EQ(per_vm.count("vm-a"), 0u) << "vm-a joined again";
    return per_vm["vm-b"] >= 2;
  }));
  EXPECT_EQ(DropsPerVm(*drops, info), (std::map<std::string, double>{{"vm-b", 2}}));

  // ovsdb-server goes away: the OVS labels empty, the rest stays, nothing fails.
  ovs.Stop();
  ASSERT_TRUE(WaitFor([&] { return InfoOf(info, tap_name)["ovs_port"].empty(); }));
  l = InfoOf(info, tap_name);
  EXPECT_EQ(l["vm_name"], "vm-b");
  EXPECT_EQ(l["iface_id"], "port-vm-b");  // libvirt's virtualport says it too
  EXPECT_EQ(l["iface_status"], "");
}

}  // namespace
}  // namespace vnet::testing
