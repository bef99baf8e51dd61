// The tap latency histograms with a real VM: qemu (TCG) boots Debian's 6.1 kernel (built by
// tests/vm/vnic-guest) whose virtio-net NIC sits on a tap on a Linux bridge; a remote
// namespace sits behind the bridge. The exporter runs as an operator runs it and is scraped
// over loopback. RealVmTest starts qemu itself, on a tap in the test's own namespace;
// LibvirtVmTest has libvirtd start it, on the tap libvirt makes, so that the VM's identity
// comes from libvirt's own files. One guest boot per suite serves its tests.
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

// The guest's kernel and initramfs, and its command line: its address, permanent neighbours
// (no ARP on the wire), no IPv6.
struct GuestImage {
  std::string kernel, initrd;
  static GuestImage Make() {
    std::istringstream paths(Sh(std::string(VNET_SOURCE_DIR) + "/tests/vm/vnic-guest " + VNET_BUILD_DIR + "/vnic"));
    GuestImage g;
    paths >> g.kernel >> g.initrd;
    return g;
  }
  static std::string Append() {
    return "console=ttyS0 quiet ipv6.disable=1 vnet.ip=" + kGuestIp + "/24 vnet.neigh=" + kRemoteIp + "@" + kRemoteMac +
           "," + kHostIp + "@" + kHostMac;
  }
};

// True once the guest's init said it is up on the console written to `console` (an emulated
// boot: a minute when this machine is busy).
bool WaitGuestReady(const std::string& console) {
  return WaitFor(
      [&] {
        std::ifstream f(console);
        std::stringstream s;
        s << f.rdbuf();
        return s.str().find("VNET_GUEST_READY") != std::string::npos;
      },
      std::chrono::minutes(5));
}

// Pings the guest `n` times from `ns`; the replies received.
int Ping(const Netns& ns, int n) {
  std::string out = ns.Sh("busybox ping -c " + std::to_string(n) + " -i 0.1 -W 5 " + kGuestIp + " || true");
  auto at = out.find(" packets received");
  if (at == std::string::npos) return 0;
  return std::stoi(out.substr(out.rfind(' ', at - 1) + 1));
}

// What the tests compare before and after, for one tap (a histogram per tap: the default).
struct Counts {
  double rx_backlog, tx_transit, rx_transit, tx_transit_1ms, rx_transit_1ms, identity;
  uint64_t tap_tx_packets;

  // From a scrape of the exporter on `port`, and the tap `device` in `ns` (null: this namespace).
  static Counts Read(uint16_t port, const std::string& device, const Netns* ns) {
    std::string t = HttpGet(port, "/metrics").body;
    auto series = [&](const std::string& name, const std::string& extra = "") {
      return SampleOf(t, name + "{device=\"" + device + "\",netns=\"" + (ns ? ns->name() : "") + "\"" + extra + "}");
    };
    return {series("vnet_tap_rx_backlog_seconds_count"),
            series("vnet_tap_tx_transit_seconds_count"),
            series("vnet_tap_rx_transit_seconds_count"),
            series("vnet_tap_tx_transit_seconds_bucket", ",le=\"0.0009765625\""),
            series("vnet_tap_rx_transit_seconds_bucket", ",le=\"0.0009765625\""),
            SampleOf(t, "vnet_tap_samples_discarded_total{reason=\"identity\"}"),
            LinkStat(ns, device, "tx_packets")};
  }
};

// qemu with a virtio NIC on the tap `tap` of namespace `ns`, its console in `console`.
class Guest {
 public:
  // `name`: qemu's -name, with its threads named as libvirt has qemu name them.
  Guest(const Netns& ns, const std::string& tap, const std::string& console, const std::string& name)
      : console_(console) {
    const GuestImage image = GuestImage::Make();
    const std::string append = GuestImage::Append();
    pid_ = fork();
    if (pid_ == 0) {
      // No vhost: this machine has no vhost_net; qemu itself reads and writes the tap.
      execlp("ip", "ip", "netns", "exec", ns.name().c_str(), "qemu-system-x86_64", "-name",
             ("guest=" + name + ",debug-threads=on").c_str(), "-accel", "tcg", "-m", "256",
             "-smp", "1", "-display", "none", "-monitor", "none", "-no-reboot", "-kernel", image.kernel.c_str(), "-initrd",
             image.initrd.c_str(), "-append", append.c_str(), "-netdev",
             ("tap,id=n0,ifname=" + tap + ",script=no,downscript=no,vhost=off").c_str(), "-device",
             ("virtio-net-pci,netdev=n0,mac=" + kGuestMac).c_str(), "-serial", ("file:" + console).c_str(), nullptr);
      _exit(127);
    }
  }
  ~Guest() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool WaitReady() const { return WaitGuestReady(console_); }

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
    guest_name_ = p + "-guest";
    guest_ = new Guest(*hv_, "vm0", std::string(VNET_BUILD_DIR) + "/vnic/console.log", guest_name_);
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

  Counts Read() const { return Counts::Read(port_, "vm0", hv_); }

  static inline Netns *hv_ = nullptr, *remote_ = nullptr;
  static inline Guest* guest_ = nullptr;
  static inline Running* exporter_ = nullptr;
  static inline std::string config_, guest_name_;
  static inline uint16_t port_ = 0;
};

// The samples of the sched collector's `family` for VM `vm` and thread kind `thread`.
double SchedSample(uint16_t port, const std::string& family, const std::string& vm, const std::string& thread) {
  return SampleOf(HttpGet(port, "/metrics").body, family + "{vm_name=\"" + vm + "\",thread=\"" + thread + "\"}");
}

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
  EXPECT_EQ(after.rx_transit_1ms - before.rx_transit_1ms, kPings) << "rx transit samples above 0.98 ms";
  EXPECT_EQ(after.tx_transit_1ms - before.tx_transit_1ms, kPings) << "tx transit samples above 0.98 ms";
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
    for (int k = 0; k < 5; k++) HttpGet(port_, "/metrics");
  }
  Counts after = Read();
  EXPECT_EQ(after.rx_transit, before.rx_transit);
  EXPECT_EQ(after.tx_transit, before.tx_transit);
  EXPECT_EQ(after.tap_tx_packets - before.tap_tx_packets, static_cast<uint64_t>(kRounds));
  EXPECT_EQ(after.rx_backlog - before.rx_backlog, kRounds);
  std::printf("identity discards during host-local traffic: %.0f\n", after.identity - before.identity);
}

// qemu's threads are found by their names and the VM by qemu's -name: its one vCPU (-smp 1) and
// its main loop (which reads the tap: no vhost here) wait for a CPU when the guest's pings wake
// them, and run.
TEST_F(RealVmTest, TheGuestsVcpuAndMainLoopAreTimedUnderItsName) {
  EXPECT_EQ(SchedSample(port_, "vnet_sched_threads", guest_name_, "vcpu"), 1);
  EXPECT_EQ(SchedSample(port_, "vnet_sched_threads", guest_name_, "main"), 1);
  const double vcpu = SchedSample(port_, "vnet_sched_delay_seconds_count", guest_name_, "vcpu");
  const double main = SchedSample(port_, "vnet_sched_delay_seconds_count", guest_name_, "main");
  const double ran = SchedSample(port_, "vnet_sched_running_seconds_total", guest_name_, "vcpu");
  ASSERT_EQ(Ping(*remote_, 10), 10);
  EXPECT_GT(SchedSample(port_, "vnet_sched_delay_seconds_count", guest_name_, "vcpu"), vcpu);
  EXPECT_GT(SchedSample(port_, "vnet_sched_delay_seconds_count", guest_name_, "main"), main);
  EXPECT_GT(SchedSample(port_, "vnet_sched_running_seconds_total", guest_name_, "vcpu"), ran);
}

// libvirtd of this machine (started here when it is not running, without its default network)
// runs a VM whose interface is on a bridge of this test: libvirt makes the tap (vnetN, in this
// namespace), names it in /run/libvirt/qemu/NAME.xml, and the exporter reads that file.
class LibvirtVmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!IsRoot() || system("command -v libvirtd virsh virtlogd >/dev/null") != 0) return;
    const std::string p = Prefix();
    name_ = p + "-vm";
    images_ = "/var/lib/libvirt/images/" + p;
    if (system("pgrep -x virtlogd >/dev/null") != 0) {
      Sh("virtlogd -d");
      started_virtlogd_ = true;
    }
    if (system("pgrep -x libvirtd >/dev/null") != 0) {
      // libvirt autostarts its networks only once per boot, marked by this file: its default
      // network would put an address on the host.
      Sh("mkdir -p /run/libvirt/network && touch /run/libvirt/network/autostarted && libvirtd -d");
      started_libvirtd_ = true;
    }
    ASSERT_TRUE(WaitFor([] { return system("virsh -q -c qemu:///system version >/dev/null 2>&1") == 0; },
                        std::chrono::seconds(30)));

    remote_ = new Netns(p + "-remote");
    bridge_ = p + "-br";
    Sh("ip link add " + bridge_ + " type bridge stp_state 0 forward_delay 0 && sysctl -qw net.ipv6.conf." + bridge_ +
       ".disable_ipv6=1 && ip link add " + p + "-up type veth peer name eth0 netns " + remote_->name() +
       " && sysctl -qw net.ipv6.conf." + p + "-up.disable_ipv6=1 && ip link set " + p + "-up master " + bridge_ +
       " && ip link set " + p + "-up up && ip link set " + bridge_ + " up");
    remote_->Sh("ip link set eth0 address " + kRemoteMac + " && ip addr add " + kRemoteIp +
                "/24 dev eth0 && ip link set eth0 up && ip neigh add " + kGuestIp + " lladdr " + kGuestMac +
                " dev eth0 nud permanent");

    const GuestImage image = GuestImage::Make();
    Sh("cp " + image.kernel + " " + images_ + "-vmlinuz && cp " + image.initrd + " " + images_ + "-initrd.gz");
    const std::string xml = images_ + ".xml";
    std::ofstream(xml) << "<domain type='qemu'><name>" << name_ << "</name><memory unit='MiB'>256</memory>"
                       << "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type><kernel>" << images_
                       << "-vmlinuz</kernel><initrd>" << images_ << "-initrd.gz</initrd><cmdline>"
                       << GuestImage::Append() << "</cmdline></os><devices>"
                       << "<interface type='bridge'><source bridge='" << bridge_ << "'/><mac address='" << kGuestMac
                       << "'/><model type='virtio'/><driver name='qemu'/></interface>"
                       << "<serial type='file'><source path='" << images_ << "-console.log'/></serial>"
                       << "</devices></domain>\n";
    Sh("virsh -q -c qemu:///system define " + xml + " && virsh -q -c qemu:///system start " + name_);
    defined_ = true;
    tap_ = Sh("virsh -q -c qemu:///system domiflist " + name_ + " | awk '{print $1; exit}'");
    tap_.erase(tap_.find_last_not_of("\n ") + 1);
    ASSERT_EQ(tap_.rfind("vnet", 0), 0u) << "libvirt's tap: " << tap_;
    // The host's own IPv6 chatter on the tap would be backlog samples besides the test's.
    Sh("sysctl -qw net.ipv6.conf." + tap_ + ".disable_ipv6=1");

    config_ = images_ + "-exporter.yaml";
    std::ofstream(config_) << "collectors: {drops: {enabled: false}, upcall: {enabled: false}, ovs: {enabled: false}, "
                              "interface: {ovsdb_socket: /nonexistent}}\n";
    exporter_ = new Running("--web.listen-address=127.0.0.1:0 --config.file=" + config_);
    port_ = ListeningPort(*exporter_);
    ASSERT_TRUE(WaitGuestReady(images_ + "-console.log")) << "the guest did not boot: see " << images_
                                                          << "-console.log";
    ASSERT_TRUE(WaitFor([] { return Ping(*remote_, 1) == 1; }, std::chrono::seconds(60)));
  }

  static void TearDownTestSuite() {
    delete exporter_;
    if (defined_) {
      system(("virsh -q -c qemu:///system destroy " + name_ + " >/dev/null 2>&1; virsh -q -c qemu:///system undefine " +
              name_ + " >/dev/null 2>&1")
                 .c_str());
    }
    if (!bridge_.empty()) {
      system(("ip link del " + bridge_ + " 2>/dev/null; ip link del " + Prefix() + "-up 2>/dev/null").c_str());
    }
    if (!images_.empty()) system(("rm -f " + images_ + "-* " + images_ + ".xml").c_str());
    delete remote_;
    if (started_libvirtd_) system("kill $(cat /run/libvirtd.pid) 2>/dev/null");
    if (started_virtlogd_) system("kill $(cat /run/virtlogd.pid) 2>/dev/null");
  }

  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: runs a VM through libvirtd and loads BPF programs";
    if (name_.empty()) GTEST_SKIP() << "libvirt-daemon-system is not installed";
  }

  static inline std::string name_, images_, bridge_, tap_, config_;
  static inline Netns* remote_ = nullptr;
  static inline Running* exporter_ = nullptr;
  static inline uint16_t port_ = 0;
  static inline bool started_libvirtd_ = false, started_virtlogd_ = false, defined_ = false;
};

// The tap libvirt made is timed like any other and joins the VM's name from libvirt's files.
TEST_F(LibvirtVmTest, PingsAreTransitSamplesOfTheTapLibvirtNamed) {
  constexpr int kPings = 20;
  Counts before = Counts::Read(port_, tap_, nullptr);
  ASSERT_EQ(Ping(*remote_, kPings), kPings);
  Counts after = Counts::Read(port_, tap_, nullptr);
  EXPECT_EQ(after.rx_transit - before.rx_transit, kPings);
  EXPECT_EQ(after.tx_transit - before.tx_transit, kPings);
  EXPECT_EQ(after.rx_transit_1ms - before.rx_transit_1ms, kPings) << "rx transit samples above 0.98 ms";
  EXPECT_EQ(after.tx_transit_1ms - before.tx_transit_1ms, kPings) << "tx transit samples above 0.98 ms";
  EXPECT_EQ(after.rx_backlog - before.rx_backlog, static_cast<double>(after.tap_tx_packets - before.tap_tx_packets));

  std::string text = HttpGet(port_, "/metrics").body;
  std::string info;
  for (size_t at = text.find("\nvnet_interface_info{"); at != std::string::npos;
       at = text.find("\nvnet_interface_info{", at + 1)) {
    std::string line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
    if (line.find("device=\"" + tap_ + "\"") != std::string::npos) info = line;
  }
  EXPECT_NE(info.find("vm_name=\"" + name_ + "\""), std::string::npos) << info;
  EXPECT_NE(info.find("vm_mac=\"" + kGuestMac + "\""), std::string::npos) << info;
  EXPECT_NE(info.find("bridge=\"" + bridge_ + "\""), std::string::npos) << info;
}

// The VM libvirt started is named by its pid file in /run/libvirt/qemu; libvirt has qemu name
// its threads, so its vCPU is timed.
TEST_F(LibvirtVmTest, TheVmsVcpuIsTimedUnderItsLibvirtName) {
  EXPECT_EQ(SchedSample(port_, "vnet_sched_threads", name_, "vcpu"), 1);
  EXPECT_EQ(SchedSample(port_, "vnet_sched_threads", name_, "main"), 1);
  const double before = SchedSample(port_, "vnet_sched_delay_seconds_count", name_, "vcpu");
  ASSERT_EQ(Ping(*remote_, 5), 5);
  EXPECT_GT(SchedSample(port_, "vnet_sched_delay_seconds_count", name_, "vcpu"), before);
}

}  // namespace
}  // namespace vnet::testing
