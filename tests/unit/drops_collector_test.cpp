// The drops collector on fixed map contents: exposition text, label resolution, retirement.
#include "collectors/drops_collector.h"

#include <gtest/gtest.h>


#include "metrics/text.h"
#include "../support/fixtures.h"

namespace vnet::collectors {
namespace {

using vnet::testing::FakeDeviceSet;
using vnet::testing::FakeLinks;
using vnet::testing::TempDir;

using FakeTable = vnet::testing::FakeTable<drop_key, drop_value>;

constexpr uint64_t kUdpRcv = 0xffffffff81100010;
constexpr uint64_t kUdpRcv2 = 0xffffffff81100020;
constexpr uint64_t kNfHook = 0xffffffff81200004;
constexpr uint64_t kTunXmit = 0xffffffffc0001010;
constexpr uint32_t kOther = 4026532000;

class DropsCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string kernel = (dir.path() / "vmlinux").string();
    vnet::testing::WriteKernelBtf(kernel,
                                  {{"SKB_DROP_REASON_NOT_SPECIFIED", 2},
                                   {"SKB_DROP_REASON_NO_SOCKET", 3},
                                   {"SKB_DROP_REASON_NETFILTER_DROP", 12},
                                   {"SKB_DROP_REASON_FULL_RING", 80}},
                                  true);
    std::string syms = dir.Write("kallsyms",
                                 "ffffffff81100000 T __udp4_lib_rcv\n"
                                 "ffffffff81200000 T nf_hook_slow\n"
                                 "ffffffffc0001000 t tun_net_xmit\t[tun]\n");
    links.tables[FakeLinks::kOwn] = {{1, "lo"}, {5, "vnet0"}, {6, "br0"}};
    links.tables[kOther] = {{5, "veth-b"}};
    links.names[kOther] = "remote";
    auto t = std::make_unique<FakeTable>();
    table = t.get();
    auto e = std::make_unique<FakeDeviceSet>();
    excluded = e.get();
    auto probe = std::make_unique<DropsCollector::Probe>();
    probe->tables = {std::move(t), std::make_unique<FakeTable>(),
                     [this](drop_stat s) { return s == DROP_STAT_MAP_FULL ? map_full : 0; }, std::move(e)};
    probe->attach_type = "tp_btf";
    collector = std::make_unique<DropsCollector>(
        std::move(probe), "", std::make_unique<kernel::DropReasons>(kernel, (dir.path() / "btf").string()),
        std::make_unique<kernel::Kallsyms>(syms, (dir.path() / "modules").string()), links, cfg);
  }

  std::string Text() {
    std::string out;
    metrics::WriteText(out, collector->Collect());
    return out;
  }

  TempDir dir;
  FakeLinks links;
  config::Config cfg;
  FakeTable* table = nullptr;
  FakeDeviceSet* excluded = nullptr;
  uint64_t map_full = 0;
  std::unique_ptr<DropsCollector> collector;
};

TEST_F(DropsCollectorTest, ExpositionGoldenText) {
  table->rows = {
      {{kUdpRcv, 3, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {4, 400}},
      // Another address inside the same function: one series.
      {{kUdpRcv2, 3, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {1, 100}},
      // Same ifindex in another namespace: its own name there, not the host's vnet0.
      {{kNfHook, 12, 5, kOther, VNET_PROTO_TCP}, {2, 120}},
      {{kTunXmit, 80, 6, FakeLinks::kOwn, VNET_PROTO_ARP}, {7, 294}},
      {{kNfHook, 2, 0, 0, VNET_PROTO_OTHER_IPV6}, {1, 80}},
  };
  EXPECT_EQ(Text(),
            "# HELP vnet_drops_total Packets dropped by the kernel (skb:kfree_skb), by reason and dropping function.\n"
            "# TYPE vnet_drops_total counter\n"
            "vnet_drops_total{device=\"\",netns=\"\",reason=\"NOT_SPECIFIED\",location=\"nf_hook_slow\",protocol=\"other-ipv6\"} 1\n"
            "vnet_drops_total{device=\"br0\",netns=\"\",reason=\"FULL_RING\",location=\"tun_net_xmit\",protocol=\"arp\"} 7\n"
            "vnet_drops_total{device=\"veth-b\",netns=\"remote\",reason=\"NETFILTER_DROP\",location=\"nf_hook_slow\",protocol=\"tcp\"} 2\n"
            "vnet_drops_total{device=\"vnet0\",netns=\"\",reason=\"NO_SOCKET\",location=\"__udp4_lib_rcv\",protocol=\"udp\"} 5\n"
            "# HELP vnet_dropped_bytes_total Bytes of the packets counted in vnet_drops_total.\n"
            "# TYPE vnet_dropped_bytes_total counter\n"
            "vnet_dropped_bytes_total{device=\"\",netns=\"\",reason=\"NOT_SPECIFIED\",location=\"nf_hook_slow\",protocol=\"other-ipv6\"} 80\n"
            "vnet_dropped_bytes_total{device=\"br0\",netns=\"\",reason=\"FULL_RING\",location=\"tun_net_xmit\",protocol=\"arp\"} 294\n"
            "vnet_dropped_bytes_total{device=\"veth-b\",netns=\"remote\",reason=\"NETFILTER_DROP\",location=\"nf_hook_slow\",protocol=\"tcp\"} 120\n"
            "vnet_dropped_bytes_total{device=\"vnet0\",netns=\"\",reason=\"NO_SOCKET\",location=\"__udp4_lib_rcv\",protocol=\"udp\"} 500\n");
  auto maps = collector->Maps();
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].map, "drops");
  EXPECT_EQ(maps[0].entries, 5u);
  EXPECT_EQ(maps[0].capacity, 1024u);
  EXPECT_EQ(maps[1].map, "drops_other");
  EXPECT_EQ(maps[1].entries, 0u);
}

TEST_F(DropsCollectorTest, MapFullIsReported) {
  map_full = 42;
  collector->Collect();
  EXPECT_EQ(collector->Maps()[0].update_failures, 42u);
}

TEST_F(DropsCollectorTest, ExcludedDevicesAreNotExported) {
  cfg.devices.exclude = {"br*"};
  SetUp();
  table->rows = {{{kUdpRcv, 3, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {4, 400}},
                 {{kTunXmit, 80, 6, FakeLinks::kOwn, VNET_PROTO_ARP}, {7, 294}}};
  std::string text = Text();
  EXPECT_NE(text.find("device=\"vnet0\""), std::string::npos);
  EXPECT_EQ(text.find("device=\"br0\""), std::string::npos);
  // br0's entries left the map, and the program skips it from now on.
  ASSERT_EQ(table->rows.size(), 1u);
  EXPECT_EQ(table->rows[0].first.ifindex, 5u);
  EXPECT_EQ(excluded->ids, (std::set<std::pair<uint32_t, uint32_t>>{{FakeLinks::kOwn, 6}}));
}

// A device made (or renamed) under a name the filter leaves out is skipped from its first packet;
// one renamed to a selected name, or gone, is counted again.
TEST_F(DropsCollectorTest, TheProgramSkipsExcludedDevicesUntilTheyGoOrAreRenamed) {
  cfg.devices.exclude = {"br*"};
  SetUp();
  collector->OnLink(9, "br1", false);
  collector->OnLink(10, "vnet5", false);
  EXPECT_EQ(excluded->ids, (std::set<std::pair<uint32_t, uint32_t>>{{FakeLinks::kOwn, 9}}));
  collector->OnLink(9, "vnet9", false);  // renamed
  EXPECT_TRUE(excluded->ids.empty());
  collector->OnLink(9, "br9", false);
  collector->OnLink(9, "br9", true);  // deleted
  EXPECT_TRUE(excluded->ids.empty());

  // Another namespace's device is skipped once its first drops were read, until its namespace
  // no longer lists it under an excluded name.
  links.tables[kOther][7] = "br-x";
  table->rows = {{{kUdpRcv, 3, 7, kOther, VNET_PROTO_UDP}, {4, 400}}};
  EXPECT_EQ(Text().find("br-x"), std::string::npos);
  EXPECT_TRUE(table->rows.empty());
  EXPECT_EQ(excluded->ids, (std::set<std::pair<uint32_t, uint32_t>>{{kOther, 7}}));
  Text();
  EXPECT_EQ(excluded->ids, (std::set<std::pair<uint32_t, uint32_t>>{{kOther, 7}})) << "still there, still excluded";
  links.tables[kOther][7] = "eth-x";
  Text();
  EXPECT_TRUE(excluded->ids.empty());
  // A full set leaves the filtering to the scrape.
  excluded->capacity = 0;
  links.tables[kOther][7] = "br-x";
  table->rows = {{{kUdpRcv, 3, 7, kOther, VNET_PROTO_UDP}, {4, 400}}};
  EXPECT_EQ(Text().find("br-x"), std::string::npos);
  EXPECT_TRUE(table->rows.empty());
  EXPECT_TRUE(excluded->ids.empty());
}

TEST_F(DropsCollectorTest, DeletedDeviceKeepsItsCountsUnderItsNameAndTheIfindexStartsClean) {
  table->rows = {{{kTunXmit, 80, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {10, 1000}}};
  Text();  // vnet0 is now known
  links.tables[FakeLinks::kOwn].erase(5);
  collector->OnLink(5, "vnet0", true);
  EXPECT_TRUE(table->rows.empty());  // set aside, cleared in the kernel map
  // The ifindex is given to another VM's tap, which drops 3.
  links.tables[FakeLinks::kOwn][5] = "vnet7";
  table->rows = {{{kTunXmit, 80, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {3, 300}}};
  std::string text = Text();
  EXPECT_NE(text.find("vnet_drops_total{device=\"vnet0\",netns=\"\",reason=\"FULL_RING\",location=\"tun_net_xmit\","
                      "protocol=\"udp\"} 10\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vnet_drops_total{device=\"vnet7\",netns=\"\",reason=\"FULL_RING\",location=\"tun_net_xmit\","
                      "protocol=\"udp\"} 3\n"),
            std::string::npos)
      << text;
}

TEST_F(DropsCollectorTest, NameTakenByANewDeviceDropsTheOldDevicesCounts) {
  table->rows = {{{kTunXmit, 80, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {10, 1000}}};
  Text();
  collector->OnLink(5, "vnet0", true);  // the VM stops
  links.tables[FakeLinks::kOwn].erase(5);
  EXPECT_NE(Text().find("device=\"vnet0\""), std::string::npos);  // within grace
  links.tables[FakeLinks::kOwn][9] = "vnet0";  // another VM's tap takes the name
  EXPECT_EQ(Text().find("device=\"vnet0\""), std::string::npos);  // never joined with the new VM
  table->rows = {{{kTunXmit, 80, 9, FakeLinks::kOwn, VNET_PROTO_UDP}, {2, 200}}};
  EXPECT_NE(Text().find("{device=\"vnet0\",netns=\"\",reason=\"FULL_RING\",location=\"tun_net_xmit\","
                        "protocol=\"udp\"} 2\n"),
            std::string::npos);
}

TEST_F(DropsCollectorTest, RenameSeenAtScrapeTimeRetiresTheOldName) {
  table->rows = {{{kUdpRcv, 3, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {2, 200}}};
  Text();
  links.tables[FakeLinks::kOwn][5] = "vm-a-eth0";
  table->rows[0].second = {5, 500};  // 3 more, counted before the rename was seen
  std::string text = Text();
  EXPECT_NE(text.find("{device=\"vnet0\",netns=\"\",reason=\"NO_SOCKET\",location=\"__udp4_lib_rcv\",protocol=\"udp\"} 5"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("vm-a-eth0"), std::string::npos) << text;
  EXPECT_TRUE(table->rows.empty());
}

TEST_F(DropsCollectorTest, GoneDeviceDisappearsAfterGrace) {
  cfg.devices.grace_period = std::chrono::seconds(0);
  SetUp();
  table->rows = {{{kUdpRcv, 3, 9, FakeLinks::kOwn, VNET_PROTO_UDP}, {2, 200}}};  // ifindex 9 does not exist
  std::string text = Text();
  EXPECT_EQ(text.find("vnet_drops_total{"), std::string::npos) << text;
  EXPECT_TRUE(table->rows.empty());
}

// Thousands of short-lived devices must not make thousands of series: those gone before the
// exporter named them are one series per namespace (and reason, ...), their map entries freed.
TEST_F(DropsCollectorTest, DevicesGoneBeforeTheyWereNamedAreOneSeriesAndLeaveTheMap) {
  table->rows = {{{kUdpRcv, 3, 20, FakeLinks::kOwn, VNET_PROTO_UDP}, {2, 200}},
                 {{kUdpRcv, 3, 21, FakeLinks::kOwn, VNET_PROTO_UDP}, {3, 300}},
                 {{kUdpRcv, 3, 7, kOther, VNET_PROTO_UDP}, {4, 400}},
                 {{kUdpRcv, 3, 5, FakeLinks::kOwn, VNET_PROTO_UDP}, {1, 100}}};
  std::string text = Text();
  EXPECT_NE(text.find("vnet_drops_total{device=\"gone:unnamed\",netns=\"\",reason=\"NO_SOCKET\","
                      "location=\"__udp4_lib_rcv\",protocol=\"udp\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vnet_drops_total{device=\"gone:unnamed\",netns=\"remote\",reason=\"NO_SOCKET\","
                      "location=\"__udp4_lib_rcv\",protocol=\"udp\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("ifindex:"), std::string::npos) << text;
  ASSERT_EQ(table->rows.size(), 1u) << "the gone devices' entries are still in the map";
  EXPECT_EQ(table->rows[0].first.ifindex, 5u);
  // More of them add to the same series.
  table->rows.push_back({{kUdpRcv, 3, 22, FakeLinks::kOwn, VNET_PROTO_UDP}, {10, 1000}});
  EXPECT_NE(Text().find("{device=\"gone:unnamed\",netns=\"\",reason=\"NO_SOCKET\",location=\"__udp4_lib_rcv\","
                        "protocol=\"udp\"} 15\n"),
            std::string::npos);
}

}  // namespace
}  // namespace vnet::collectors
