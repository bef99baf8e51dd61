// The drops probe on the running kernel: known drops made in the test's own namespaces must
// be counted exactly once, with the right labels, and agree with the kernel's own counters.
#include <gtest/gtest.h>
#include <net/if.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>

#include <regex>
#include <thread>

#include "../support/fixtures.h"
#include "../support/netns.h"
#include "collectors/drops_collector.h"
#include "net/link_watcher.h"

namespace vnet::testing {
namespace {

using Labels = std::map<std::string, std::string>;

// Run once per attach type of the probe: the tp_btf program and its raw_tp fallback must count alike.
class DropsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and loads BPF programs";
    p_ = Prefix();
    has_reason_ = kernel::DropReasons("/sys/kernel/btf/vmlinux", "/sys/kernel/btf").tracepoint_has_reason();

    // h1 (remote host) -- bridge in sw -- h2 (hypervisor side). h2's interface takes the
    // ifindex of a device of the host namespace, so a wrong namespace lookup would show.
    h1_ = std::make_unique<Netns>(p_ + "-h1");
    sw_ = std::make_unique<Netns>(p_ + "-sw");
    h2_ = std::make_unique<Netns>(p_ + "-h2");
    // A device of our own in the host namespace (its peer in h1, removed with h1); not every
    // machine has one besides lo (a test VM has none).
    host_dev_ = p_ + "-host";
    Sh("ip link add " + host_dev_ + " type veth peer name hd netns " + h1_->name());
    host_ifindex_ = if_nametoindex(host_dev_.c_str());
    ASSERT_NE(host_ifindex_, 0u);

    Sh("ip -n " + sw_->name() + " link add br0 type bridge stp_state 0 forward_delay 0");
    Sh("ip -n " + h1_->name() + " link add eth0 type veth peer name p1 netns " + sw_->name());
    Sh("ip -n " + h2_->name() + " link add h2-eth index " + std::to_string(host_ifindex_) +
       " type veth peer name p2 netns " + sw_->name());
    // Bridged frames skip iptables: br_netfilter, where present, would check IP headers on the
    // bridge and drop there what the tests send to h2.
    sw_->Sh("[ ! -e /proc/sys/net/bridge ] || sysctl -qw net.bridge.bridge-nf-call-iptables=0 "
            "net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0");
    sw_->Sh("ip link set p1 master br0 && ip link set p2 master br0 && ip link set p1 up && ip link set p2 up && "
            "ip link set br0 up");
    h1_->Sh("ip addr add 192.0.2.1/24 dev eth0 && ip link set eth0 up");
    h2_->Sh("ip addr add 192.0.2.2/24 dev h2-eth && ip link set h2-eth up");
    // Static neighbours: no ARP traffic to account for.
    h1_->Sh("ip neigh add 192.0.2.2 lladdr " + Mac(h2_.get(), "h2-eth") + " dev eth0 nud permanent");
    h2_->Sh("ip neigh add 192.0.2.1 lladdr " + Mac(h1_.get(), "eth0") + " dev h2-eth nud permanent");

    // Long enough for the slowest (emulated) test kernel; expiry itself is unit-tested.
    cfg_.devices.grace_period = std::chrono::seconds(600);
    for (const auto& t : config::kAttachTypes) {
      if (t != GetParam()) cfg_.disabled_attach_types.push_back(t);
    }
    collector_ = collectors::DropsCollector::Attach(cfg_, {}, links_);
    auto probes = collector_->Probes();
    ASSERT_EQ(probes.size(), 1u);
    ASSERT_TRUE(probes[0].attached) << probes[0].error;
    ASSERT_EQ(probes[0].attach_type, GetParam());
    // As app::Main wires it: link events of the host namespace reach the collector.
    watcher_ = std::make_unique<net::LinkWatcher>(
        [this](uint32_t ifindex, const std::string& name, bool deleted) { collector_->OnLink(ifindex, name, deleted); });
  }

  void TearDown() override {
    watcher_.reset();
    // Namespaces are destroyed asynchronously after `ip netns del`; the host end of the pair
    // is removed now so that the next test can create it again.
    if (!host_dev_.empty()) Sh("ip link del " + host_dev_ + " 2>/dev/null || true");
  }

  std::string Reason(const std::string& name) const { return has_reason_ ? name : "NOT_SPECIFIED"; }

  double Drops(const Labels& l) { return Value(collector_->Collect(), "vnet_drops_total", l); }

  // The sum of every series that has the labels of `subset`, whatever its other labels.
  double Sum(const Labels& subset) {
    double sum = 0;
    for (const auto& f : collector_->Collect()) {
      if (f.name != "vnet_drops_total") continue;
      for (const auto& m : f.metric) {
        std::size_t matched = 0;
        for (const auto& l : m.label) {
          auto s = subset.find(l.name);
          if (s != subset.end() && s->second == l.value) matched++;
        }
        if (matched == subset.size()) sum += m.counter.value;
      }
    }
    return sum;
  }

  // The drops series, for failure messages.
  std::string Dump() {
    std::string out = "\n";
    for (const auto& f : collector_->Collect()) {
      if (f.name != "vnet_drops_total") continue;
      for (const auto& m : f.metric) {
        for (const auto& l : m.label) out += l.name + "=" + l.value + " ";
        out += std::to_string(m.counter.value) + "\n";
      }
    }
    return out;
  }

  std::string p_;
  bool has_reason_ = false;
  std::unique_ptr<Netns> h1_, sw_, h2_;
  uint32_t host_ifindex_ = 0;
  std::string host_dev_;
  config::Config cfg_;
  net::SystemLinks links_;
  std::unique_ptr<collectors::DropsCollector> collector_;
  std::unique_ptr<net::LinkWatcher> watcher_;
};

TEST_P(DropsTest, UdpToClosedPortIsNoSocketOnTheNamespacedDevice) {
  Labels l{{"device", "h2-eth"}, {"netns", h2_->name()}, {"reason", Reason("NO_SOCKET")},
           {"location", "__udp4_lib_rcv"}, {"protocol", "udp"}};
  double before = Drops(l);
  Labels on_host{{"device", host_dev_}, {"netns", ""}, {"reason", Reason("NO_SOCKET")}, {"protocol", "udp"}};
  double host_before = Sum(on_host);
  uint64_t noports = h2_->Counter("Udp", "NoPorts");

  SendUdp(*h1_, "192.0.2.2", 9, 17);
  ASSERT_TRUE(WaitFor([&] { return h2_->Counter("Udp", "NoPorts") == noports + 17; }));

  EXPECT_EQ(Drops(l) - before, 17);
  // Same ifindex in the host namespace: nothing may land on the host's device.
  EXPECT_EQ(Sum(on_host), host_before) << host_dev_ << " has ifindex " << host_ifindex_;
}

// Keys of the newest BPF map called `name` (this test's collector made it last) whose drop_key
// is of namespace `netns` (and device `ifindex`, unless 0).
int KeysOfNamespace(const std::string& name, uint32_t netns, uint32_t ifindex = 0) {
  int n = 0;
  for (const auto& k : MapKeys<drop_key>(name)) n += k.netns == netns && (ifindex == 0 || k.ifindex == ifindex);
  return n;
}

// What the exporter makes of devices (filtered, gone) is the same for both programs, which
// share count_drop: run with one (each run builds three namespaces, 20 s in an emulated guest).
class DropsDeviceTest : public DropsTest {};

// A device the filter leaves out takes no map entry once the collector has seen it: the
// program skips it; the drops of a device it keeps are counted exactly.
TEST_P(DropsDeviceTest, ExcludedDevicesAreSkippedInTheKernel) {
  cfg_.devices.exclude = {"h2-*"};
  collector_ = collectors::DropsCollector::Attach(cfg_, {}, links_);
  struct stat st;
  ASSERT_EQ(stat(("/run/netns/" + h2_->name()).c_str(), &st), 0);
  const uint32_t h2_netns = static_cast<uint32_t>(st.st_ino);
  const Labels h1_eth{{"device", "eth0"}, {"netns", h1_->name()}, {"reason", Reason("NO_SOCKET")},
                      {"location", "__udp4_lib_rcv"}, {"protocol", "udp"}};
  uint64_t h1_noports = h1_->Counter("Udp", "NoPorts"), h2_noports = h2_->Counter("Udp", "NoPorts");
  auto round = [&](int n) {
    SendUdp(*h1_, "192.0.2.2", 9, 5);  // NO_SOCKET on h2-eth: left out
    SendUdp(*h2_, "192.0.2.1", 9, 7);  // NO_SOCKET on h1's eth0: counted
    h1_noports += 7;
    h2_noports += 5;
    ASSERT_TRUE(WaitFor([&] {
      return h1_->Counter("Udp", "NoPorts") == h1_noports && h2_->Counter("Udp", "NoPorts") == h2_noports;
    })) << "round " << n;
  };
  round(1);
  EXPECT_GT(KeysOfNamespace("drops_other", h2_netns), 0) << "not seen yet: counted in the kernel";
  EXPECT_EQ(Drops(h1_eth), 7);
  EXPECT_EQ(Sum({{"device", "h2-eth"}}), 0) << Dump();
  EXPECT_EQ(KeysOfNamespace("drops_other", h2_netns), 0) << "its entries were not erased";
  round(2);
  round(3);
  EXPECT_EQ(KeysOfNamespace("drops_other", h2_netns), 0) << "the program did not skip h2-eth";
  EXPECT_EQ(Drops(h1_eth), 21);
  EXPECT_EQ(Sum({{"device", "h2-eth"}}), 0) << Dump();
}

TEST_P(DropsTest, NftablesDropRuleIsNetfilterDrop) {
  h2_->Sh("nft add table inet vx && nft add chain inet vx in { type filter hook input priority 0 \\; } && "
          "nft add rule inet vx in udp dport 7777 counter drop");
  // Recent kernels free the packet in nft_do_chain itself; older ones in nf_hook_slow on the
  // NF_DROP verdict. One of the two, never both, never elsewhere.
  Labels l{{"device", "h2-eth"}, {"netns", h2_->name()}, {"reason", Reason("NETFILTER_DROP")}, {"protocol", "udp"}};
  auto nft_packets = [&] {
    std::smatch m;
    std::string out = h2_->Sh("nft list chain inet vx in");
    return std::regex_search(out, m, std::regex("counter packets ([0-9]+)")) ? std::stoull(m[1]) : 0;
  };
  auto at = [&](const std::string& location) {
    Labels with = l;
    with["location"] = location;
    return Drops(with);
  };
  double before = at("nft_do_chain") + at("nf_hook_slow");
  double any_before = Sum(l);

  SendUdp(*h1_, "192.0.2.2", 7777, 13);
  ASSERT_TRUE(WaitFor([&] { return nft_packets() == 13; }));

  EXPECT_EQ(at("nft_do_chain") + at("nf_hook_slow") - before, 13) << Dump();
  EXPECT_EQ(Sum(l) - any_before, 13) << Dump();
}

TEST_P(DropsTest, TapWhoseReaderDoesNotReadDropsWithFullRing) {
  Tap tap(h2_.get(), "vm0");  // opened, never read: the VM's backend is stuck
  h2_->Sh("ip link set vm0 txqueuelen 8 up && ip addr add 198.51.100.1/24 dev vm0 && "
          "ip neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev vm0 nud permanent");
  Labels l{{"device", "vm0"}, {"netns", h2_->name()}, {"reason", Reason("FULL_RING")},
           {"location", "tun_net_xmit"}, {"protocol", "udp"}};
  double before = Drops(l);
  uint64_t tx_dropped = LinkStat(h2_.get(), "vm0", "tx_dropped");

  SendUdp(*h2_, "198.51.100.2", 9, 8 + 11);  // the ring holds txqueuelen packets
  ASSERT_TRUE(WaitFor([&] { return LinkStat(h2_.get(), "vm0", "tx_dropped") >= tx_dropped + 11; }));

  EXPECT_EQ(LinkStat(h2_.get(), "vm0", "tx_dropped") - tx_dropped, 11u);
  EXPECT_EQ(Drops(l) - before, 11);
}

TEST_P(DropsTest, BadIpChecksumIsIpCsum) {
  Labels l{{"device", "h2-eth"}, {"netns", h2_->name()}, {"reason", Reason("IP_CSUM")},
           {"location", "ip_rcv_core"}, {"protocol", "udp"}};
  double before = Drops(l);
  uint64_t csum_errors = h2_->Counter("IpExt", "InCsumErrors");

  auto frame = UdpFrame(Mac(h2_.get(), "h2-eth"), Mac(h1_.get(), "eth0"), "192.0.2.1", "192.0.2.2", true);
  SendFrames(*h1_, "eth0", frame, 9);
  ASSERT_TRUE(WaitFor([&] { return h2_->Counter("IpExt", "InCsumErrors") == csum_errors + 9; })) << Dump();

  EXPECT_EQ(Drops(l) - before, 9) << Dump();
}

// In the host namespace (no address is added there): a device is deleted and its ifindex
// given to a new device before any scrape. Each keeps its own drops.
TEST_P(DropsTest, IfindexReusedBeforeAScrapeKeepsEachDevicesDrops) {
  const std::string a = p_ + "a", b = p_ + "b";
  const std::string index = std::to_string(30000 + getpid() % 1000);
  auto make = [&](const std::string& dev, const std::string& peer) {
    Sh("ip link add " + dev + " index " + index + " type veth peer name " + peer + " netns " + h1_->name());
    Sh("sysctl -qw net.ipv6.conf." + dev + ".disable_ipv6=1");
    Sh("ip link set " + dev + " up");
    h1_->Sh("ip link set " + peer + " up");
  };
  struct Cleanup {
    std::string b;
    ~Cleanup() {
      try {
        Sh("ip link del " + b);
      } catch (const std::exception&) {
      }
    }
  } cleanup{b};
  // Frames for a MAC that is not the device's: dropped as OTHERHOST by the IP layer.
  auto frame = UdpFrame("02:00:00:00:00:99", "02:00:00:00:00:01", "192.0.2.1", "192.0.2.2");
  auto labels = [&](const std::string& dev) {
    return Labels{{"device", dev}, {"netns", ""}, {"reason", Reason("OTHERHOST")},
                  {"location", "ip_rcv_core"}, {"protocol", "udp"}};
  };

  make(a, "pa");
  SendFrames(*h1_, "pa", frame, 6);
  ASSERT_TRUE(WaitFor([&] { return Drops(labels(a)) == 6; })) << Dump();
  Sh("ip link del " + a);
  // The deletion reaches the collector through rtnetlink on another thread; let it land
  // before the new device counts (an exporter in production has the same small window).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  make(b, "pb");
  SendFrames(*h1_, "pb", frame, 4);
  ASSERT_TRUE(WaitFor([&] { return Drops(labels(b)) >= 4; })) << Dump();

  auto families = collector_->Collect();
  EXPECT_EQ(Value(families, "vnet_drops_total", labels(a)), 6);
  EXPECT_EQ(Value(families, "vnet_drops_total", labels(b)), 4);
}

// A short-lived device of another namespace, deleted before any scrape: its drops count under
// device "gone:unnamed" of its namespace, exactly, and leave the map.
TEST_P(DropsDeviceTest, DropsOfADeviceGoneBeforeAScrapeAreGoneUnnamed) {
  struct stat st;
  ASSERT_EQ(stat(("/run/netns/" + h2_->name()).c_str(), &st), 0);
  const uint32_t h2_netns = static_cast<uint32_t>(st.st_ino);
  Sh("ip -n " + h1_->name() + " link add g0 type veth peer name g1 netns " + h2_->name());
  h1_->Sh("ip addr add 198.51.100.1/24 dev g0 && ip link set g0 up");
  h2_->Sh("ip addr add 198.51.100.2/24 dev g1 && ip link set g1 up");
  h1_->Sh("ip neigh add 198.51.100.2 lladdr " + Mac(h2_.get(), "g1") + " dev g0 nud permanent");
  const std::string shown = h2_->Sh("ip -o link show g1");
  const uint32_t g1 = static_cast<uint32_t>(std::stoul(shown.substr(0, shown.find(':'))));
  const uint64_t noports = h2_->Counter("Udp", "NoPorts");
  SendUdp(*h1_, "198.51.100.2", 9, 9);
  ASSERT_TRUE(WaitFor([&] { return h2_->Counter("Udp", "NoPorts") == noports + 9; }));
  EXPECT_GT(KeysOfNamespace("drops_other", h2_netns, g1), 0);
  h2_->Sh("ip link del g1");
  const Labels gone{{"device", "gone:unnamed"}, {"netns", h2_->name()}, {"reason", Reason("NO_SOCKET")},
                    {"location", "__udp4_lib_rcv"}, {"protocol", "udp"}};
  EXPECT_EQ(Drops(gone), 9) << Dump();
  EXPECT_EQ(KeysOfNamespace("drops_other", h2_netns, g1), 0) << "the gone device's entries are still in the map";
  EXPECT_EQ(Sum({{"device", "g1"}}), 0) << Dump();
  EXPECT_EQ(Drops(gone), 9) << "counted again";
}

INSTANTIATE_TEST_SUITE_P(AttachTypes, DropsTest, ::testing::Values("tp_btf", "raw_tp"),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(AttachTypes, DropsDeviceTest, ::testing::Values("tp_btf"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace vnet::testing

namespace vnet::testing {
namespace {

// More distinct series than the map holds: the map stays at its capacity and every drop that
// found no room is counted as an update failure, never silently lost.
TEST(DropsMapFullTest, OverflowIsCountedAndVisible) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and loads BPF programs";
  constexpr int kDevices = 70;
  Netns ns(Prefix() + "-full");
  std::string batch;
  for (int i = 0; i < kDevices; i++) {
    std::string d = "d" + std::to_string(i), e = "e" + std::to_string(i);
    batch += "link add " + d + " type veth peer name " + e + "\nlink set " + d + " up\nlink set " + e + " up\n";
  }
  Sh("printf '" + batch + "' | ip -n " + ns.name() + " -batch -");

  config::Config cfg;
  collectors::DropsCollector::Settings settings;
  settings.other_netns_max_entries = 64;  // the namespace is not the exporter's own
  net::SystemLinks links;
  auto collector = collectors::DropsCollector::Attach(cfg, settings, links);
  ASSERT_TRUE(collector->Probes()[0].attached) << collector->Probes()[0].error;
  collector->Collect();
  uint64_t failures_before = collector->Maps()[1].update_failures;

  auto frame = UdpFrame("02:00:00:00:00:99", "02:00:00:00:00:01", "192.0.2.1", "192.0.2.2");
  for (int i = 0; i < kDevices; i++) SendFrames(ns, "e" + std::to_string(i), frame, 1);

  double counted = 0;
  uint64_t failures = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto families = collector->Collect();
    counted = 0;
    for (const auto& f : families) {
      if (f.name != "vnet_drops_total") continue;
      for (const auto& m : f.metric) {
        if (m.label[1].value == ns.name() && m.label[0].value[0] == 'd') counted += m.counter.value;
      }
    }
    failures = collector->Maps()[1].update_failures - failures_before;
    return counted + failures >= kDevices;
  }));
  auto maps = collector->Maps();
  EXPECT_EQ(maps[1].map, "drops_other");
  EXPECT_EQ(maps[1].capacity, 64u);
  EXPECT_EQ(maps[1].entries, 64u);
  EXPECT_EQ(counted + failures, kDevices) << counted << " counted, " << failures << " refused";
  EXPECT_GE(failures, static_cast<uint64_t>(kDevices - 64));
}

// Any user can make network namespaces (user namespaces) and drops in them. They fill the map
// of other namespaces, never the one of the exporter's own: its drops are still counted, and
// what found no room is counted too.
TEST(DropsMapFullTest, OtherNamespacesCannotFillTheHostsMap) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs and switches user";
  if (!NobodyNamespaces::Allowed()) GTEST_SKIP() << "this kernel does not let unprivileged users make user namespaces";
  config::Config cfg;
  collectors::DropsCollector::Settings settings;
  settings.max_entries = 64;
  settings.other_netns_max_entries = 16;
  net::SystemLinks links;
  auto collector = collectors::DropsCollector::Attach(cfg, settings, links);
  ASSERT_TRUE(collector->Probes()[0].attached) << collector->Probes()[0].error;
  collector->Collect();

  // 32 namespaces of user nobody, each dropping one datagram to a closed port on its lo.
  constexpr int kNamespaces = 32;
  NobodyNamespaces flood(kNamespaces, "ip link set lo up && echo x > /dev/udp/127.0.0.1/9");
  // Then 3 in the exporter's own namespace, on loopback.
  Sh("bash -c 'for i in 1 2 3; do echo x > /dev/udp/127.0.0.1/9; done'");

  const bool has_reason = kernel::DropReasons("/sys/kernel/btf/vmlinux", "/sys/kernel/btf").tracepoint_has_reason();
  Labels host{{"device", "lo"}, {"netns", ""}, {"reason", has_reason ? "NO_SOCKET" : "NOT_SPECIFIED"},
              {"location", "__udp4_lib_rcv"}, {"protocol", "udp"}};
  // Other namespaces of the machine (containers, other tests) may drop meanwhile: drops_other
  // holds at least this test's 32, so at least 16 found no room.
  ASSERT_TRUE(WaitFor([&] {
    return Value(collector->Collect(), "vnet_drops_total", host) == 3 &&
           collector->Maps()[1].entries + collector->Maps()[1].update_failures >= kNamespaces;
  })) << Value(collector->Collect(), "vnet_drops_total", host) << " host drops; drops_other "
      << collector->Maps()[1].entries << " entries, " << collector->Maps()[1].update_failures << " refused";
  auto maps = collector->Maps();
  EXPECT_EQ(maps[1].entries, 16u);
  EXPECT_GE(maps[1].update_failures, static_cast<uint64_t>(kNamespaces - 16));
  EXPECT_EQ(maps[0].update_failures, 0u);
}

}  // namespace
}  // namespace vnet::testing
