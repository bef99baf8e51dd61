// The tap latency histograms with a real VM: qemu (TCG) boots Debian's 6.1 kernel (built by
// tests/vm/vnic-guest) whose virtio-net NIC sits on vm0, a tap qemu opens in the test's own
// namespace, on a Linux bridge; a remote namespace sits behind the bridge. The exporter runs
// as an operator runs it and is scraped over loopback. One guest boot serves every test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "../support/http.h"
#include "../support/netns.h"
#include "../support/running.h"

namespace vnet::testing {
namespace {

const std::string kGuestIp = "192.0.2.10", kGuestMac = "02:00:00:00:00:10";
const std::string kRemoteIp = "192.0.2.1", kRemoteMac = "02:00:00:00:00:01";
const std::string kHostIp = "192.0.2.254", kHostMac = "02:00:00:00:00:fe";

// The value of the sample `series` (name and labels exactly as exposed) in `text`, 0 when absent.
double SampleOf(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size() + 2));
}

// qemu with a virtio NIC on the tap `tap` of namespace `ns`, its console in `console`.
class Guest {
 public:
  Guest(const Netns& ns, const std::string& tap, const std::string& console) : console_(console) {
    std::istringstream paths(Sh(std::string(VNET_SOURCE_DIR) + "/tests/vm/vnic-guest " + VNET_BUILD_DIR + "/vnic"));
    std::string kernel, initrd;
    paths >> kernel >> initrd;
    const std::string append = "console=ttyS0 quiet ipv6.disable=1 vnet.ip=" + kGuestIp + "/24 vnet.neigh=" +
                               kRemoteIp + "@" + kRemoteMac + "," + kHostIp + "@" + kHostMac;
    pid_ = fork();
    if (pid_ == 0) {
      // No vhost: this machine has no vhost_net; qemu itself reads and writes the tap.
      execlp("ip", "ip", "netns", "exec", ns.name().c_str(), "qemu-system-x86_64", "-accel", "tcg", "-m", "256",
             "-smp", "1", "-display", "none", "-monitor", "none", "-no-reboot", "-kernel", kernel.c_str(), "-initrd",
             initrd.c_str(), "-append", append.c_str(), "-netdev",
             ("tap,id=n0,ifname=" + tap + ",script=no,downscript=no,vhost=off").c_str(), "-device",
             ("virtio-net-pci,netdev=n0,mac=" + kGuestMac).c_str(), "-serial", ("file:" + console).c_str(), nullptr);
      _exit(127);
    }
  }
  ~Guest() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  // True once the guest's init said it is up (an emulated boot: a minute when this machine is busy).
  bool WaitReady() const {
    return WaitFor(
        [&] {
          std::ifstream f(console_);
          std::stringstream s;
          s << f.rdbuf();
          return s.str().find("VNET_GUEST_READY") != std::string::npos;
        },
        std::chrono::minutes(5));
  }

 private:
  std::string console_;
  pid_t pid_ = -1;
};

class RealVmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!IsRoot()) return;
    const std::string p = Prefix();
    hv_ = new Netns(p + "-hv");
    remote_ = new Netns(p + "-remote");
    Sh("ip -n " + hv_->name() + " link add up0 type veth peer name eth0 netns " + remote_->name());
    hv_->Sh("[ ! -e /proc/sys/net/bridge ] || sysctl -qw net.bridge.bridge-nf-call-iptables=0");
    hv_->Sh("ip link add br0 address " + kHostMac + " type bridge stp_state 0 forward_delay 0 && "
            "ip link set up0 master br0 && ip link set up0 up && ip link set br0 up && "
            "ip addr add " + kHostIp + "/24 dev br0 && ip neigh add " + kGuestIp + " lladdr " + kGuestMac +
            " dev br0 nud permanent");
    remote_->Sh("ip link set eth0 address " + kRemoteMac + " && ip addr add " + kRemoteIp +
                "/24 dev eth0 && ip link set eth0 up && ip neigh add " + kGuestIp + " lladdr " + kGuestMac +
                " dev eth0 nud permanent");
    guest_ = new Guest(*hv_, "vm0", std::string(VNET_BUILD_DIR) + "/vnic/console.log");
    ASSERT_TRUE(WaitFor([] { return system(("ip -n " + hv_->name() + " link show vm0 >/dev/null 2>&1").c_str()) == 0; },
                        std::chrono::seconds(60)));
    hv_->Sh("ip link set vm0 master br0 && ip link set vm0 up");

    config_ = std::string(VNET_BUILD_DIR) + "/vnic/exporter.yaml";
    std::ofstream(config_) << "collectors: {drops: {enabled: false}, upcall: {enabled: false}, ovs: {enabled: false}, "
                              "interface: {enabled: false}}\n";
    exporter_ = new Running("--web.listen-address=127.0.0.1:0 --config.file=" + config_);
    port_ = ListeningPort(*exporter_);
    ASSERT_TRUE(guest_->WaitReady()) << "the guest did not boot: see " << VNET_BUILD_DIR << "/vnic/console.log";
    // The first packets after boot may meet a NIC still coming up.
    ASSERT_TRUE(WaitFor([] { return Ping(*remote_, 1) == 1; }, std::chrono::seconds(60)));
  }

  static void TearDownTestSuite() {
    delete exporter_;
    delete guest_;
    delete remote_;
    delete hv_;
  }

  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: creates namespaces, runs a VM and loads BPF programs";
  }

  // Pings the guest `n` times from `ns`; the replies received.
  static int Ping(const Netns& ns, int n) {
    std::string out = ns.Sh("busybox ping -c " + std::to_string(n) + " -i 0.1 -W 5 " + kGuestIp + " || true");
    auto at = out.find(" packets received");
    if (at == std::string::npos) return 0;
    return std::stoi(out.substr(out.rfind(' ', at - 1) + 1));
  }

  std::string Scrape() const { return HttpGet(port_, "/metrics").body; }

  // The sample of `family` (with suffix) for vm0's only queue.
  std::string Series(const std::string& family, const std::string& extra = "") const {
    return family + "{device=\"vm0\",netns=\"" + hv_->name() + "\",queue=\"0\"" + extra + "}";
  }

  struct Counts {
    double rx_backlog, tx_transit, rx_transit, tx_transit_1ms, rx_transit_1ms, identity;
    uint64_t tap_tx_packets;
  };
  Counts Read() const {
    std::string t = Scrape();
    return {SampleOf(t, Series("vnet_tap_rx_backlog_seconds_count")),
            SampleOf(t, Series("vnet_tap_tx_transit_seconds_count")),
            SampleOf(t, Series("vnet_tap_rx_transit_seconds_count")),
            SampleOf(t, Series("vnet_tap_tx_transit_seconds_bucket", ",le=\"0.001024\"")),
            SampleOf(t, Series("vnet_tap_rx_transit_seconds_bucket", ",le=\"0.001024\"")),
            SampleOf(t, "vnet_tap_samples_discarded_total{reason=\"identity\"}"),
            LinkStat(hv_, "vm0", "tx_packets")};
  }

  static inline Netns *hv_ = nullptr, *remote_ = nullptr;
  static inline Guest* guest_ = nullptr;
  static inline Running* exporter_ = nullptr;
  static inline std::string config_;
  static inline uint16_t port_ = 0;
};

// Forwarded through the bridge: each ping is one rx transit sample (remote -> guest) and each
// reply one tx transit sample (guest -> remote), host-side times well under 1 ms; every packet
// qemu read from the tap is one backlog sample. No ARP or IPv6: neighbours are permanent.
TEST_F(RealVmTest, PingsFromBehindTheBridgeAreOneTransitSampleEachWay) {
  constexpr int kPings = 20;
  Counts before = Read();
  ASSERT_EQ(Ping(*remote_, kPings), kPings);
  Counts after = Read();
  EXPECT_EQ(after.rx_transit - before.rx_transit, kPings);
  EXPECT_EQ(after.tx_transit - before.tx_transit, kPings);
  EXPECT_EQ(after.rx_transit_1ms - before.rx_transit_1ms, kPings) << "rx transit samples above 1.024 ms";
  EXPECT_EQ(after.tx_transit_1ms - before.tx_transit_1ms, kPings) << "tx transit samples above 1.024 ms";
  EXPECT_EQ(after.tap_tx_packets - before.tap_tx_packets, static_cast<uint64_t>(kPings));
  EXPECT_EQ(after.rx_backlog - before.rx_backlog, kPings);
}

// The host's own traffic with the guest (pings from the bridge's address and the replies
// delivered to the host) and loopback TCP (the scrapes themselves, between the pings) pass no
// packet through the host: no transit sample. The host's pings are backlog samples.
TEST_F(RealVmTest, HostLocalTrafficAndLoopbackScrapesGiveNoTransitSample) {
  constexpr int kRounds = 20;
  Counts before = Read();
  for (int i = 0; i < kRounds; i++) {
    ASSERT_EQ(Ping(*hv_, 1), 1);
    for (int k = 0; k < 5; k++) Scrape();
  }
  Counts after = Read();
  EXPECT_EQ(after.rx_transit, before.rx_transit);
  EXPECT_EQ(after.tx_transit, before.tx_transit);
  EXPECT_EQ(after.tap_tx_packets - before.tap_tx_packets, static_cast<uint64_t>(kRounds));
  EXPECT_EQ(after.rx_backlog - before.rx_backlog, kRounds);
  std::printf("identity discards during host-local traffic: %.0f\n", after.identity - before.identity);
}

}  // namespace
}  // namespace vnet::testing
