// Identity sources on fixed inputs: libvirt domain XML, an OVSDB reply, a link dump.
#include "collectors/interface_collector.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "metrics/text.h"
#include "../support/fixtures.h"
#include "../support/samples.h"

namespace vnet::collectors {
namespace {

using vnet::testing::kDomstatus;
using vnet::testing::kOvsdbTables;
using vnet::testing::TempDir;

TEST(Libvirt, ParsesLiveDomainXml) {
  auto ifs = identity::ParseDomainXml(kDomstatus);
  ASSERT_EQ(ifs.size(), 2u);  // the interface without a target device has no host side
  const auto& a = ifs.at("vnet3");
  EXPECT_EQ(a.vm_name, "web1");
  EXPECT_EQ(a.vm_uuid, "6f1c8a2e-1b7d-4e0a-9d1a-3c2b1a0f9e8d");
  EXPECT_EQ(a.mac, "52:54:00:12:34:56");
  EXPECT_EQ(a.bridge, "br-int");
  EXPECT_EQ(a.iface_id, "0c7d0f7e-2b4a-4d7e-8f0e-111111111111");
  EXPECT_EQ(ifs.at("vnet4").iface_id, "");
  EXPECT_THROW(identity::ParseDomainXml("<domain><name>x"), std::runtime_error);
  EXPECT_THROW(identity::ParseDomainXml("<network/>"), std::runtime_error);
}

TEST(Libvirt, FollowsDomainsStartingAndStopping) {
  TempDir dir;
  identity::Libvirt lv(dir.path().string(), 1 << 20);
  std::map<std::string, identity::VmInterface> out;
  EXPECT_TRUE(lv.Read(out));
  EXPECT_TRUE(out.empty());
  std::string path = dir.Write("web1.xml", kDomstatus);
  EXPECT_TRUE(lv.Read(out));
  EXPECT_EQ(out.at("vnet3").vm_name, "web1");
  // The tap is given to another domain: web1's file goes, db1's comes.
  std::filesystem::remove(path);
  std::string db1 = kDomstatus;
  db1.replace(db1.find("<name>web1</name>"), 17, "<name>db1</name>");
  dir.Write("db1.xml", db1);
  out.clear();
  EXPECT_TRUE(lv.Read(out));
  EXPECT_EQ(out.at("vnet3").vm_name, "db1");
  EXPECT_FALSE(identity::Libvirt("/nonexistent", 1 << 20).Read(out));
}

// Files a local user or a broken libvirtd could put in the run directory: each is skipped
// without blocking or filling memory, and the other domains are still read.
TEST(Libvirt, SkipsWhatIsNotADomainFile) {
  TempDir dir;
  dir.Write("web1.xml", kDomstatus);
  std::filesystem::create_symlink("/dev/zero", dir.path() / "zero.xml");
  ASSERT_EQ(mkfifo((dir.path() / "fifo.xml").c_str(), 0600), 0);
  // 2 MiB: past the default limit (collectors.interface.libvirt_max_file_bytes), within a larger one.
  dir.Write("huge.xml", "<domain><name>big</name><devices><interface type='bridge'><target dev='vnet9'/>"
                        "</interface></devices>" + std::string(2 << 20, ' ') + "</domain>");
  dir.Write("broken.xml", "<domain><name>x");
  identity::Libvirt lv(dir.path().string(), 1 << 20);
  std::map<std::string, identity::VmInterface> out;
  EXPECT_TRUE(lv.Read(out));
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(out.at("vnet3").vm_name, "web1");
  std::map<std::string, identity::VmInterface> larger;
  EXPECT_TRUE(identity::Libvirt(dir.path().string(), 4 << 20).Read(larger));
  EXPECT_EQ(larger.at("vnet9").vm_name, "big");
  // The FIFO removed: nothing stays blocked, the next read is the same.
  std::filesystem::remove(dir.path() / "fifo.xml");
  out.clear();
  EXPECT_TRUE(lv.Read(out));
  EXPECT_EQ(out.size(), 2u);
}

TEST(Ovsdb, ParsesInterfacePortAndBridgeRows) {
  auto result = nlohmann::json::parse(kOvsdbTables);
  auto ifs = identity::ParseOvsdbTables(result);
  ASSERT_EQ(ifs.size(), 2u);
  const auto& v = ifs.at("vnet3");
  EXPECT_EQ(v.bridge, "br-int");
  EXPECT_EQ(v.port, "vnet3");
  EXPECT_EQ(v.iface_id, "port-1");
  EXPECT_EQ(v.attached_mac, "52:54:00:12:34:56");
  EXPECT_EQ(v.vm_uuid, "6f1c8a2e");
  EXPECT_EQ(v.iface_status, "active");
  EXPECT_EQ(ifs.at("br-int").bridge, "br-int");
}

// Values of other types than OVSDB's are absent; the rest of the reply is still read (a wrong
// type used to make every vnet_interface_info series vanish).
TEST(Ovsdb, ValuesOfTheWrongTypeAreAbsent) {
  auto result = nlohmann::json::parse(R"([
    {"rows": [
      {"_uuid": ["uuid", 7], "name": "vnet3", "external_ids": ["map", [["iface-id", 1], ["vm-uuid", "u"]]]},
      {"_uuid": ["uuid", "i2"], "name": 5},
      {"_uuid": ["set", "x"], "name": "vnet5", "external_ids": ["map", "x"]},
      "not a row",
      {"_uuid": ["uuid", "i4"], "name": "vnet4"}]},
    {"rows": {"a": 1}},
    "not an op"
  ])");
  auto ifs = identity::ParseOvsdbTables(result);
  ASSERT_EQ(ifs.size(), 3u);
  EXPECT_EQ(ifs.at("vnet3").iface_id, "");
  EXPECT_EQ(ifs.at("vnet3").vm_uuid, "u");
  EXPECT_EQ(ifs.at("vnet4").bridge, "");
  EXPECT_TRUE(ifs.count("vnet5"));
  EXPECT_TRUE(identity::ParseOvsdbTables(nlohmann::json::parse(R"([1, 2, 3])")).empty());
}

// A tap on OVS (4 queues attached), a tap on a Linux bridge, a plain NIC and a tun (L3) device,
// as the kernel's link dump gives them.
std::vector<net::Link> Links() {
  return {{10, "vnet3", "fe:54:00:12:34:56", "ovs-system", true, true, 4},
          {11, "vnet4", "fe:54:00:ab:cd:ef", "br0", true, true, 1},
          {12, "eth0", "02:00:00:00:00:01", "", false, false, 0},
          {13, "tun0", "", "", true, false, 1}};
}

TEST(InterfaceCollector, JoinsTheSourcesPerDevice) {
  TempDir dir;
  dir.Write("libvirt/web1.xml", kDomstatus);
  config::Config cfg;
  InterfaceCollector::Settings settings;
  settings.libvirt_dir = (dir.path() / "libvirt").string();
  settings.ovsdb_socket = (dir.path() / "db.sock").string();  // no ovsdb-server here
  InterfaceCollector c(cfg, settings, Links);
  std::string text;
  metrics::WriteText(text, c.Collect());
  EXPECT_EQ(text,
            "# HELP vnet_interface_info A VM's network interface on this host: tap device, VM, bridge and OVS port. "
            "Always 1; join with * on(device) group_left(vm_name) vnet_interface_info.\n"
            "# TYPE vnet_interface_info gauge\n"
            "vnet_interface_info{device=\"vnet3\",ifindex=\"10\",mac=\"fe:54:00:12:34:56\",queues=\"4\",vm_name=\"web1\","
            "vm_uuid=\"6f1c8a2e-1b7d-4e0a-9d1a-3c2b1a0f9e8d\",vm_mac=\"52:54:00:12:34:56\",bridge=\"br-int\","
            "ovs_port=\"\",iface_id=\"0c7d0f7e-2b4a-4d7e-8f0e-111111111111\",iface_status=\"\"} 1\n"
            "vnet_interface_info{device=\"vnet4\",ifindex=\"11\",mac=\"fe:54:00:ab:cd:ef\",queues=\"1\",vm_name=\"web1\","
            "vm_uuid=\"6f1c8a2e-1b7d-4e0a-9d1a-3c2b1a0f9e8d\",vm_mac=\"52:54:00:ab:cd:ef\",bridge=\"br0\","
            "ovs_port=\"\",iface_id=\"\",iface_status=\"\"} 1\n"
            "# HELP vnet_interface_source_up 1 when the identity source answered at the last scrape (libvirt: its "
            "live domain directory is readable; ovsdb: ovsdb-server answered).\n"
            "# TYPE vnet_interface_source_up gauge\n"
            "vnet_interface_source_up{source=\"libvirt\"} 1\n"
            "vnet_interface_source_up{source=\"ovsdb\"} 0\n");
}

TEST(InterfaceCollector, TapsWithoutAnySourceHaveEmptyIdentity) {
  config::Config cfg;
  InterfaceCollector::Settings settings;
  settings.libvirt_dir = "/nonexistent";
  settings.ovsdb_socket = "/nonexistent.sock";
  InterfaceCollector c(cfg, settings, Links);
  std::string text;
  metrics::WriteText(text, c.Collect());
  EXPECT_NE(text.find("vnet_interface_info{device=\"vnet4\",ifindex=\"11\",mac=\"fe:54:00:ab:cd:ef\",queues=\"1\",vm_name=\"\","
                          "vm_uuid=\"\",vm_mac=\"\",bridge=\"br0\",ovs_port=\"\",iface_id=\"\",iface_status=\"\"} 1"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("device=\"eth0\""), std::string::npos);
  EXPECT_EQ(text.find("device=\"tun0\""), std::string::npos);
  EXPECT_NE(text.find("vnet_interface_source_up{source=\"libvirt\"} 0"), std::string::npos);
}

}  // namespace
}  // namespace vnet::collectors
