// The upcall collector against the Open vSwitch kernel datapath: a real ovs-vswitchd with a
// system-datapath bridge joining veths of two namespaces. Needs the openvswitch module with its
// BTF (Debian's 6.1 and 6.12 kernels; the kernel matrix runs this), once per attach set.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "../support/netns.h"
#include "../support/ovs.h"
#include "app/capabilities.h"
#include "collectors/drops_collector.h"
#include "collectors/upcall_collector.h"
#include "net/devices.h"

namespace vnet::testing {
namespace {

// What the kernel itself says: `ovs-dpctl show` lookups of the datapath in `ns`.
std::map<std::string, double> DpctlLookups(const Netns& ns) {
  std::smatch m;
  std::string out = ns.Sh("ovs-dpctl show");
  if (!std::regex_search(out, m, std::regex("lookups: hit:(\\d+) missed:(\\d+) lost:(\\d+)"))) {
    throw std::runtime_error("no lookups in ovs-dpctl show: " + out);
  }
  return {{"hit", std::stod(m[1])}, {"missed", std::stod(m[2])}, {"lost", std::stod(m[3])}};
}

double Sum(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
           const std::map<std::string, std::string>& match) {
  double sum = 0;
  for (const auto& f : families) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      size_t matched = 0;
      for (const auto& l : m.label) matched += match.count(l.name) && match.at(l.name) == l.value;
      if (matched == match.size()) sum += f.type == prometheus::MetricType::Histogram ? m.histogram.sample_count
                                                                                       : m.counter.value;
    }
  }
  return sum;
}

std::string SkipReason() {
  if (!IsRoot()) return "needs root: loads BPF programs";
  if (!std::filesystem::exists("/sys/module/openvswitch")) {
    return "no openvswitch module loaded (the host kernel here has none; the kernel matrix runs this)";
  }
  if (!std::filesystem::exists("/sys/kernel/btf/openvswitch")) return "the kernel has no BTF for its modules (5.11+)";
  return "";
}

class UpcallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = SkipReason(); !why.empty()) GTEST_SKIP() << why;
    // Upcalls wait while ovs-vswitchd is stopped, longer than the default under emulation:
    // none may be given up as unanswered.
    settings_.inflight_timeout = std::chrono::seconds(600);
  }
  config::Config cfg_;
  collectors::UpcallCollector::Settings settings_;
  net::SystemLinks links_;
};

TEST_F(UpcallTest, CountsUpcallsFailuresAndLatency) {
  OvsBridge br(Prefix(), 78, "system");
  auto c = collectors::UpcallCollector::Attach(cfg_, settings_, links_);
  for (const auto& p : c->Probes()) {
    ASSERT_TRUE(p.attached) << p.probe << ": " << p.error;
  }
  EXPECT_EQ(c->Probes()[0].attach_type, "kprobe");

  const std::map<std::string, std::string> pa = {{"datapath", "ovs-system"}, {"device", "pa"}, {"netns", br.sw.name()}};
  auto before = DpctlLookups(br.sw);
  constexpr int kFlows = 12;
  br.NewFlows(kFlows, 30000);
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcalls_total", pa) >= kFlows; }, std::chrono::seconds(30)));
  // Each answered: ovs-vswitchd executes the packet it got (an emulated guest on a busy machine
  // has taken more than 30 s for these 12).
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", {}) >= kFlows; },
                      std::chrono::seconds(120)))
      << Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", {}) << " answered of " << kFlows;
  auto families = c->Collect();
  auto after = DpctlLookups(br.sw);
  EXPECT_EQ(after["missed"] - before["missed"], kFlows);
  auto miss = pa;
  miss["cmd"] = "miss";
  EXPECT_EQ(Sum(families, "vnet_ovs_upcalls_total", miss), kFlows);
  EXPECT_EQ(Sum(families, "vnet_ovs_upcalls_total", {}), kFlows) << "upcalls of packets the test did not send";
  EXPECT_EQ(Sum(families, "vnet_ovs_upcall_failures_total", {}), 0);
  EXPECT_EQ(Sum(families, "vnet_ovs_upcall_latency_seconds", {{"datapath", "ovs-system"}}), kFlows);

  // Handlers stopped while new flows come: their sockets fill and the kernel fails upcalls
  // (large packets: each upcall carries its packet, the sockets' buffers are megabytes).
  br.vs.Signal(SIGSTOP);
  constexpr int kStorm = 5000;
  br.NewFlows(kStorm, 33000, 7000, 1400);
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcalls_total", pa) >= kFlows + kStorm; },
                      std::chrono::seconds(60)));
  families = c->Collect();
  auto stopped = DpctlLookups(br.sw);
  const double failed = Sum(families, "vnet_ovs_upcall_failures_total", pa);
  EXPECT_GT(failed, 0) << "the handlers' sockets never filled";
  std::cout << "storm of " << kStorm << " new flows with ovs-vswitchd stopped: " << failed << " upcalls failed ("
            << Sum(families, "vnet_ovs_upcall_failures_total", {{"error", "EAGAIN"}}) << " EAGAIN), kernel lost +"
            << stopped["lost"] - before["lost"] << "\n";
  EXPECT_EQ(failed, stopped["lost"] - before["lost"]);
  EXPECT_EQ(Sum(families, "vnet_ovs_upcall_failures_total", {}), failed);
  EXPECT_EQ(stopped["missed"] - before["missed"], kFlows + kStorm);
  EXPECT_EQ(Sum(families, "vnet_ovs_upcalls_total", miss), kFlows + kStorm);

  // Resumed: ovs-vswitchd answers what was queued; every answered upcall is one latency sample.
  br.vs.Signal(SIGCONT);
  const double queued = kFlows + kStorm - failed;
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", {}) >= queued; },
                      std::chrono::seconds(120)))
      << Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", {}) << " of " << queued;
  auto resumed = c->Collect();
  EXPECT_EQ(Sum(resumed, "vnet_ovs_upcall_latency_seconds", {}), queued);
  EXPECT_EQ(Sum(resumed, "vnet_ovs_upcalls_unanswered_total", {}), 0);
}

// Anyone may make a datapath in namespaces of their own (a user namespace is enough): those
// datapaths fill the *_other maps, never the host's, whose upcalls keep every count and sample.
TEST_F(UpcallTest, OtherNamespacesCannotFillTheHostsMaps) {
  if (!NobodyNamespaces::Allowed()) GTEST_SKIP() << "this kernel does not let unprivileged users make user namespaces";
  OvsBridge br(Prefix(), 78, "system");
  net::SystemLinks system;
  OwnNetnsAs links(system, static_cast<uint32_t>(std::stoul(Sh("stat -L -c %i /run/netns/" + br.sw.name()))));
  settings_.max_series = 16;
  settings_.other_netns_max_series = 16;
  auto c = collectors::UpcallCollector::Attach(cfg_, settings_, links);
  for (const auto& p : c->Probes()) ASSERT_TRUE(p.attached) << p.probe << ": " << p.error;

  // 24 namespaces of user nobody, each with a datapath named as the host's whose own port sends
  // ARP requests: upcalls with no ovs-vswitchd to take them (ENOTCONN), one series each.
  constexpr int kNamespaces = 24;
  NobodyNamespaces flood(kNamespaces,
                         "ovs-dpctl add-dp ovs-system && ip link set ovs-system up && "
                         "ip addr add 10.9.0.1/24 dev ovs-system && echo x > /dev/udp/10.9.0.2/9");
  ASSERT_TRUE(WaitFor([&] {
    auto m = c->Maps();
    return m[3].entries + m[3].update_failures >= kNamespaces;
  }, std::chrono::seconds(60)))
      << "upcall_counts_other: " << c->Maps()[3].entries << " entries, " << c->Maps()[3].update_failures << " refused";

  // Meanwhile the host's datapath: every upcall counted and timed.
  constexpr int kFlows = 12;
  br.NewFlows(kFlows, 30000);
  const std::map<std::string, std::string> host = {{"datapath", "ovs-system"}, {"netns", br.sw.name()}};
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", host) >= kFlows; },
                      std::chrono::seconds(120)))
      << Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", host) << " answered of " << kFlows;
  auto families = c->Collect();
  auto pa = host;
  pa["device"] = "pa";
  EXPECT_EQ(Sum(families, "vnet_ovs_upcalls_total", pa), kFlows);
  EXPECT_EQ(Sum(families, "vnet_ovs_upcall_latency_seconds", host), kFlows);
  EXPECT_EQ(Sum(families, "vnet_ovs_upcall_failures_total", host), 0);
  auto maps = c->Maps();
  ASSERT_EQ(maps[3].map, "upcall_counts_other");
  EXPECT_EQ(maps[3].entries, 16u);
  EXPECT_GE(maps[3].update_failures, static_cast<uint64_t>(kNamespaces - 16));
  EXPECT_EQ(maps[0].update_failures, 0u);
  std::cout << "upcall_counts_other: " << maps[3].entries << " entries, " << maps[3].update_failures
            << " upcalls not counted\n";
}

// The kernel's own module loader (the test guest's points to its module tree).
void Modprobe(const std::string& module) {
  std::ifstream helper("/proc/sys/kernel/modprobe");
  std::string modprobe;
  std::getline(helper, modprobe);
  Sh(modprobe + " " + module);
}

// The module loaded after the exporter started: the collector waits, then attaches.
TEST(UpcallModuleTest, AttachesWhenTheModuleAppears) {
  if (auto why = SkipReason(); !why.empty()) GTEST_SKIP() << why;
  // The datapaths of earlier tests go with their namespaces, asynchronously.
  if (!WaitFor([] { return system("rmmod openvswitch 2>/dev/null") == 0; })) {
    GTEST_SKIP() << "openvswitch is in use, cannot be unloaded";
  }
  config::Config cfg;
  net::SystemLinks links;
  auto c = collectors::UpcallCollector::Attach(cfg, {}, links);
  for (const auto& p : c->Probes()) {
    EXPECT_FALSE(p.attached) << p.probe;
    EXPECT_TRUE(p.waiting) << p.probe;
  }
  Modprobe("openvswitch");
  OvsBridge br(Prefix(), 78, "system");
  // The attach happens in a scrape, which has only the capabilities the exporter keeps
  // (capabilities are per thread: this one alone drops them).
  std::thread([&] {
    app::KeepOnly(app::kDefaultKeep);
    c->Collect();
  }).join();
  for (const auto& p : c->Probes()) EXPECT_TRUE(p.attached) << p.probe << ": " << p.error;
  br.NewFlows(3, 30000);
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcalls_total", {{"device", "pa"}}) >= 3; }));
  EXPECT_EQ(Sum(c->Collect(), "vnet_ovs_upcalls_total", {{"device", "pa"}}), 3);
}

// An OVS upgrade reloads the module (force-reload-kmod) while the exporter runs: the module
// unloads with the probes attached, scrapes go on meanwhile, and the module loaded anew is
// counted again.
TEST(UpcallModuleTest, TheModuleUnloadsUnderTrafficAndComesBack) {
  if (auto why = SkipReason(); !why.empty()) GTEST_SKIP() << why;
  config::Config cfg;
  net::SystemLinks links;
  auto c = collectors::UpcallCollector::Attach(cfg, {}, links);
  for (const auto& p : c->Probes()) ASSERT_TRUE(p.attached) << p.probe << ": " << p.error;

  std::atomic<bool> stop = false;
  std::atomic<int> scrapes = 0;
  std::thread scraper([&] {
    while (!stop) {
      c->Collect();
      c->Maps();
      c->Probes();
      scrapes++;
    }
  });
  {
    OvsBridge br(Prefix(), 78, "system");
    br.NewFlows(5, 30000);
    ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcalls_total", {{"device", "pa"}}) >= 5; }));
    EXPECT_EQ(Sum(c->Collect(), "vnet_ovs_upcalls_total", {{"device", "pa"}}), 5);
    // New flows keep coming while ovs-vswitchd stops and the datapath is deleted.
    std::thread traffic([&] { br.NewFlows(300, 31000); });
    br.vs.Stop();
    br.sw.Sh("ovs-dpctl del-dp ovs-system");
    traffic.join();
  }
  // The namespaces and their ports go asynchronously; then nothing but a probe could hold the module.
  EXPECT_TRUE(WaitFor([] { return system("rmmod openvswitch 2>/dev/null") == 0; }, std::chrono::seconds(30)))
      << "rmmod openvswitch refused while the exporter is attached: " << Sh("lsmod | grep openvswitch || true");
  const int gone = scrapes;
  ASSERT_TRUE(WaitFor([&] { return scrapes > gone + 3; }));
  for (const auto& p : c->Probes()) {
    EXPECT_FALSE(p.attached) << p.probe;
    EXPECT_TRUE(p.waiting) << p.probe;
  }
  EXPECT_EQ(Sum(c->Collect(), "vnet_ovs_upcalls_total", {}), 0);

  Modprobe("openvswitch");
  OvsBridge br(Prefix(), 79, "system");
  ASSERT_TRUE(WaitFor([&] { return c->Probes()[0].attached; })) << c->Probes()[0].error;
  br.NewFlows(3, 30000);
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcalls_total", {{"device", "pa"}}) >= 3; }));
  // An upcall is counted when queued, its latency when ovs-vswitchd answers, later.
  ASSERT_TRUE(WaitFor([&] { return Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", {}) >= 3; },
                      std::chrono::seconds(120)));
  stop = true;
  scraper.join();
  // The new instance's upcalls only: the old one's ended with it.
  EXPECT_EQ(Sum(c->Collect(), "vnet_ovs_upcalls_total", {}), 3);
  EXPECT_EQ(Sum(c->Collect(), "vnet_ovs_upcall_latency_seconds", {}), 3);
}

// Packets dropped by a datapath flow carry the openvswitch module's own drop reasons (6.6+),
// named from its BTF by the drops collector.
TEST(OvsDropReasonTest, DatapathDropsHaveOvsReasonNames) {
  if (auto why = SkipReason(); !why.empty()) GTEST_SKIP() << why;
  if (Sh("bpftool btf dump file /sys/kernel/btf/openvswitch format raw | grep -c \"ENUM 'ovs_drop_reason'\" "
         "|| true") == "0\n") {
    GTEST_SKIP() << "the kernel's openvswitch has no drop reasons (6.6+)";
  }
  OvsBridge br(Prefix(), 78, "system");
  Sh("ovs-ofctl add-flow unix:" + br.db.Path("br0.mgmt") + " 'priority=100,udp,tp_dst=7100,actions=drop'");
  config::Config cfg;
  net::SystemLinks links;
  auto drops = collectors::DropsCollector::Attach(cfg, {}, links);
  ASSERT_TRUE(drops->Probes()[0].attached) << drops->Probes()[0].error;

  // The first packet is an upcall (ovs-vswitchd executes nothing for a drop), and installs the
  // datapath flow that drops the next ones in the kernel.
  br.NewFlows(1, 40000, 7100);
  ASSERT_TRUE(WaitFor([&] { return br.sw.Sh("ovs-dpctl dump-flows").find("dst=7100") != std::string::npos; },
                      std::chrono::seconds(20)));
  constexpr int kDrops = 9;
  for (int i = 0; i < kDrops; i++) br.NewFlows(1, 40000, 7100);  // the same flow each time
  auto ovs_drops = [&] {
    std::map<std::string, double> out;  // "reason at location" -> drops
    for (const auto& f : drops->Collect()) {
      if (f.name != "vnet_drops_total") continue;
      for (const auto& m : f.metric) {
        std::map<std::string, std::string> l;
        for (const auto& lp : m.label) l[lp.name] = lp.value;
        if (l["device"] == "pa" && l["reason"].rfind("OVS_DROP_", 0) == 0) {
          out[l["reason"] + " at " + l["location"]] += m.counter.value;
        }
      }
    }
    return out;
  };
  auto total = [&] {
    double n = 0;
    for (const auto& [k, v] : ovs_drops()) n += v;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return total() >= kDrops; })) << [&] {
    std::string all = br.sw.Sh("ovs-dpctl dump-flows");
    for (const auto& f : drops->Collect()) {
      if (f.name != "vnet_drops_total") continue;
      for (const auto& m : f.metric) {
        for (const auto& l : m.label) all += l.name + "=" + l.value + " ";
        all += std::to_string(m.counter.value) + "\n";
      }
    }
    return all;
  }();
  EXPECT_EQ(total(), kDrops);
  for (const auto& [k, v] : ovs_drops()) std::cout << v << " drops: " << k << "\n";
}

}  // namespace
}  // namespace vnet::testing
