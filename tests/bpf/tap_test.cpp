// The tap latency probe on the running kernel. A test backend plays the VM: it holds a
// multi-queue tap and reads and writes frames per queue, delaying its reads by a known amount.
// The host side is a bridge joining the tap and a veth whose peer is a remote host.
#include <gtest/gtest.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "../support/families.h"
#include "../support/fixtures.h"
#include "../support/netns.h"
#include "collectors/tap_collector.h"
#include "net/link_watcher.h"

namespace vnet::testing {
namespace {

constexpr int kQueues = 4;
const std::string kVmMac = "02:00:00:00:00:10";
const std::string kVmIp = "192.0.2.10";
const std::string kRemoteIp = "192.0.2.1";

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and loads BPF programs";
    const std::string p = Prefix();
    hv_ = std::make_unique<Netns>(p + "-hv");
    remote_ = std::make_unique<Netns>(p + "-remote");
    hv_->Sh("[ ! -e /proc/sys/net/bridge ] || sysctl -qw net.bridge.bridge-nf-call-iptables=0");
    tap_ = std::make_unique<Tap>(hv_.get(), "vm0", kQueues);
    Sh("ip -n " + hv_->name() + " link add up0 type veth peer name eth0 netns " + remote_->name());
    // Only the test's own packets may enter the tap: no multicast flooded to it (the remote's IGMP
    // reports), no IGMP of br0's own (its queries and reports ignore mcast_flood), and an address
    // on br0 only in the one test about local delivery.
    hv_->Sh("ip link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 && "
            "ip link set br0 multicast off && ip link set vm0 master br0 && "
            "ip link set up0 master br0 && ip link set vm0 up && ip link set up0 up && ip link set br0 up && "
            "bridge fdb add " + kVmMac + " dev vm0 master static && bridge link set dev vm0 mcast_flood off");
    remote_->Sh("ip addr add " + kRemoteIp + "/24 dev eth0 && ip link set eth0 up && ip neigh add " + kVmIp +
                " lladdr " + kVmMac + " dev eth0 nud permanent");
    remote_mac_ = Mac(remote_.get(), "eth0");

    cfg_.devices.grace_period = std::chrono::seconds(2);
    settings_.per_queue = true;
    collector_ = collectors::TapCollector::Attach(cfg_, settings_, links_);
    for (const auto& probe : collector_->Probes()) ASSERT_TRUE(probe.attached) << probe.probe << ": " << probe.error;
    watcher_ = std::make_unique<net::LinkWatcher>(
        [this](uint32_t ifindex, const std::string& name, bool deleted) { collector_->OnLink(ifindex, name, deleted); });
  }

  void TearDown() override { watcher_.reset(); }

  // The histogram of `family` for vm0's `queue` (-1: of vm0, queues summed).
  Hist Get(const std::string& family, int queue) {
    Labels want = {{"device", "vm0"}, {"netns", hv_->name()}};
    if (queue >= 0) want["queue"] = std::to_string(queue);
    return HistogramOf(collector_->Collect(), family, want);
  }

  // A datagram from the remote's `sock` to the VM's `port`, through up0 and the bridge.
  void SendToVm(const UdpSocket& sock, uint16_t port) {
    sockaddr_in vm{};
    vm.sin_family = AF_INET;
    vm.sin_port = htons(port);
    inet_pton(AF_INET, kVmIp.c_str(), &vm.sin_addr);
    const char payload[18] = "vnet_exporter";
    ASSERT_EQ(sendto(sock.fd(), payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&vm), sizeof(vm)),
              static_cast<ssize_t>(sizeof(payload)));
  }

  std::vector<uint8_t> ToRemote(uint16_t src_port, uint16_t dst_port) {
    return UdpFrame(remote_mac_, kVmMac, kVmIp, kRemoteIp, false, src_port, dst_port);
  }

  std::unique_ptr<Netns> hv_, remote_;
  std::unique_ptr<Tap> tap_;
  std::string remote_mac_;
  config::Config cfg_;
  collectors::TapCollector::Settings settings_;
  net::SystemLinks links_;
  std::unique_ptr<collectors::TapCollector> collector_;
  std::unique_ptr<net::LinkWatcher> watcher_;
};

// guest -> host: frames written on queue 2 reach the remote through bridge and veth, inside the
// writer's own write() (netif_rx, then softirq on the same CPU): nothing queues them, so 8 ms
// is a generous bound even for an emulated guest.
TEST_F(TapTest, GuestToHostCountsEachFrameOnItsQueue) {
  std::vector<Hist> before;
  for (int q = 0; q < kQueues; q++) before.push_back(Get("vnet_tap_tx_transit_seconds", q));
  uint64_t remote_rx = LinkStat(remote_.get(), "eth0", "rx_packets");

  for (int i = 0; i < 15; i++) tap_->Write(ToRemote(5000, 6000), 2);
  ASSERT_TRUE(WaitFor([&] { return LinkStat(remote_.get(), "eth0", "rx_packets") >= remote_rx + 15; }));

  for (int q = 0; q < kQueues; q++) {
    Hist h = Get("vnet_tap_tx_transit_seconds", q);
    EXPECT_EQ(h.count - before[q].count, q == 2 ? 15 : 0) << "queue " << q;
  }
  Hist h = Get("vnet_tap_tx_transit_seconds", 2);
  EXPECT_EQ(h.Le(0.0078125) - before[2].Le(0.0078125), 15) << "a sample above 7.8 ms";
}

// Per-queue histograms off (the default): the kernel sums a tap's queues, one series without
// a queue label.
TEST_F(TapTest, QueuesAreSummedInTheKernelWithoutPerQueue) {
  watcher_.reset();
  settings_.per_queue = false;
  collector_ = collectors::TapCollector::Attach(cfg_, settings_, links_);
  for (const auto& probe : collector_->Probes()) ASSERT_TRUE(probe.attached) << probe.probe << ": " << probe.error;
  uint64_t remote_rx = LinkStat(remote_.get(), "eth0", "rx_packets");
  for (int q = 0; q < kQueues; q++) {
    for (int i = 0; i < q + 1; i++) tap_->Write(ToRemote(5000, 6000), q);
  }
  ASSERT_TRUE(WaitFor([&] { return LinkStat(remote_.get(), "eth0", "rx_packets") >= remote_rx + 10; }));
  EXPECT_EQ(Get("vnet_tap_tx_transit_seconds", -1).count, 10);  // 1 + 2 + 3 + 4
  for (int q = 0; q < kQueues; q++) EXPECT_EQ(Get("vnet_tap_tx_transit_seconds", q).count, 0) << "queue " << q;
}

// host -> guest: each queue gets its own flow (tun steers a flow to the queue the guest last
// sent it on); the backend reads 40 ms after the remote sent. Every packet is one backlog
// sample in the (31.25 ms, 62.5 ms] bucket and one rx transit sample, on its queue.
TEST_F(TapTest, HostToGuestBacklogAndTransitPerQueue) {
  constexpr int kPerQueue = 5;
  auto discarded = [&](const char* reason) {
    return Value(collector_->Collect(), "vnet_tap_samples_discarded_total", {{"reason", reason}});
  };
  const double evicted0 = discarded("evicted"), identity0 = discarded("identity");
  // The remote's end of each flow is a bound socket: the guest's steering frames are received
  // there (no ICMP port unreachable comes back to the guest) and the flow is sent from it.
  std::vector<std::unique_ptr<UdpSocket>> remote_socks;
  for (int q = 0; q < kQueues; q++) remote_socks.push_back(std::make_unique<UdpSocket>(*remote_, 6000 + q));
  for (int q = 0; q < kQueues; q++) tap_->Write(ToRemote(5000 + q, 6000 + q), q);  // steer
  SendToVm(*remote_socks[0], 5000);  // up0's first frame to the tap: up0 is learned as a feeder
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int q = 0; q < kQueues; q++) tap_->ReadAll(q);
  std::vector<Hist> backlog0, transit0;
  for (int q = 0; q < kQueues; q++) {
    backlog0.push_back(Get("vnet_tap_rx_backlog_seconds", q));
    transit0.push_back(Get("vnet_tap_rx_transit_seconds", q));
  }

  for (int q = 0; q < kQueues; q++) {
    for (int i = 0; i < kPerQueue; i++) SendToVm(*remote_socks[q], 5000 + q);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(40));  // the VM's backend is slow
  std::vector<std::vector<std::vector<uint8_t>>> read(kQueues);
  for (int q = 0; q < kQueues; q++) read[q] = tap_->ReadAll(q);

  for (int q = 0; q < kQueues; q++) {
    std::string frames;
    for (const auto& f : read[q]) {
      char b[96];
      std::snprintf(b, sizeof(b), "[len %zu proto %d from %d.%d.%d.%d mac %02x:%02x dport %d] ", f.size(),
                    f.size() > 23 ? f[23] : -1, f[26], f[27], f[28], f[29], f[10], f[11], UdpDstPort(f));
      frames += b;
    }
    ASSERT_EQ(read[q].size(), static_cast<size_t>(kPerQueue)) << "queue " << q << ": " << frames;
    for (const auto& f : read[q]) ASSERT_EQ(UdpDstPort(f), 5000 + q) << "flow not steered to queue " << q;
    Hist backlog = Get("vnet_tap_rx_backlog_seconds", q);
    Hist transit = Get("vnet_tap_rx_transit_seconds", q);
    EXPECT_EQ(backlog.count - backlog0[q].count, kPerQueue) << "queue " << q;
    EXPECT_EQ((backlog.Le(0.0625) - backlog.Le(0.03125)) - (backlog0[q].Le(0.0625) - backlog0[q].Le(0.03125)),
              kPerQueue)
        << "queue " << q << ": backlog samples outside (31.25 ms, 62.5 ms]";
    EXPECT_EQ(transit.count - transit0[q].count, kPerQueue) << "queue " << q;
  }
  EXPECT_EQ(discarded("evicted") - evicted0, 0);
  EXPECT_EQ(discarded("identity") - identity0, 0);
}

// A device's bridged frames are stamped (a clock read) only once one of them has reached a tap:
// the first only teaches it, untimed; frames of devices that never feed a tap (a bridge of
// containers) cost no clock read.
TEST_F(TapTest, ADevicesFirstFrameToATapTeachesItAndIsNotTimed) {
  UdpSocket sock(*remote_, 6000);
  tap_->Write(ToRemote(5000, 6000), 0);  // steers the flow to queue 0
  Hist transit0 = Get("vnet_tap_rx_transit_seconds", 0), backlog0 = Get("vnet_tap_rx_backlog_seconds", 0);
  SendToVm(sock, 5000);
  ASSERT_TRUE(WaitFor([&] { return tap_->ReadAll(0).size() == 1; }));
  EXPECT_EQ(Get("vnet_tap_rx_transit_seconds", 0).count, transit0.count);
  EXPECT_EQ(Get("vnet_tap_rx_backlog_seconds", 0).count - backlog0.count, 1);
  constexpr int kFrames = 5;
  for (int i = 0; i < kFrames; i++) SendToVm(sock, 5000);
  size_t read = 0;
  ASSERT_TRUE(WaitFor([&] { return (read += tap_->ReadAll(0).size()) >= kFrames; }));
  EXPECT_EQ(Get("vnet_tap_rx_transit_seconds", 0).count - transit0.count, kFrames);
  EXPECT_EQ(Get("vnet_tap_rx_backlog_seconds", 0).count - backlog0.count, kFrames + 1);
}

// An uplink that is a bond: its frames are reported received on the bond's port (up0), while
// the reception ends on the bond (skb_iif), so the device learned as a feeder must be the port.
TEST_F(TapTest, ABondedUplinksFramesAreTimed) {
  if (hv_->Sh("ip link add bond0 type bond mode active-backup miimon 10 2>&1 || true").find("Unknown device type") !=
      std::string::npos) {
    GTEST_SKIP() << "this kernel has no bonding driver";
  }
  hv_->Sh("ip link set up0 nomaster && ip link set up0 down && ip link set up0 master bond0 && "
          "ip link set bond0 master br0 && ip link set bond0 up && ip link set up0 up");
  // The bond has a carrier once its link monitor saw the port's (5.10 waits for it), and only
  // then does the bridge forward on it.
  ASSERT_TRUE(WaitFor([&] { return hv_->Sh("bridge link show dev bond0").find("state forwarding") != std::string::npos; }));
  UdpSocket sock(*remote_, 6000);
  tap_->Write(ToRemote(5000, 6000), 0);  // steers the flow to queue 0
  Hist transit0 = Get("vnet_tap_rx_transit_seconds", 0);
  SendToVm(sock, 5000);  // teaches the port
  ASSERT_TRUE(WaitFor([&] { return tap_->ReadAll(0).size() == 1; }));
  constexpr int kFrames = 5;
  for (int i = 0; i < kFrames; i++) SendToVm(sock, 5000);
  size_t read = 0;
  ASSERT_TRUE(WaitFor([&] { return (read += tap_->ReadAll(0).size()) >= kFrames; }));
  EXPECT_EQ(Get("vnet_tap_rx_transit_seconds", 0).count - transit0.count, kFrames);
}

// Local delivery to the host is not a transit sample.
TEST_F(TapTest, LocalDeliveryIsNotATransitSample) {
  UdpSocket sock(*hv_, 7000);
  hv_->Sh("ip addr add 192.0.2.254/24 dev br0 && ip neigh add " + kVmIp + " lladdr " + kVmMac +
          " dev br0 nud permanent");
  double before = Get("vnet_tap_tx_transit_seconds", 1).count;
  auto frame = UdpFrame(Mac(hv_.get(), "br0"), kVmMac, kVmIp, "192.0.2.254", false, 5000, 7000);
  for (int i = 0; i < 6; i++) tap_->Write(frame, 1);
  char buf[256];
  int got = 0;
  ASSERT_TRUE(WaitFor([&] {
    while (recv(sock.fd(), buf, sizeof(buf), MSG_DONTWAIT) > 0) got++;
    return got == 6;
  }));
  EXPECT_EQ(Get("vnet_tap_tx_transit_seconds", 1).count, before);
}

// Host-local traffic beside the VM's: the guest talks to the host and the host answers, the
// host sends to the guest, and loopback TCP runs in between (its segments are freed where no
// tracepoint sees them, GRO and coalescing, and their addresses come back for the host's next
// packets). None of it is a transit; every frame the backend reads is one backlog sample.
TEST_F(TapTest, HostLocalTrafficGivesNoTransitSample) {
  hv_->Sh("ip addr add 192.0.2.254/24 dev br0 && ip neigh add " + kVmIp + " lladdr " + kVmMac +
          " dev br0 nud permanent");
  UdpSocket udp_socket(*hv_, 7000);
  const int udp = udp_socket.fd();
  int listener = -1, client = -1, server = -1;
  hv_->Run([&] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    a.sin_port = htons(7001);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(listener, 1), 0);
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    server = accept(listener, nullptr, nullptr);
  });
  struct Close {
    std::vector<int> fds;
    ~Close() {
      for (int fd : fds) close(fd);
    }
  } close_socks{{listener, client, server}};
  ASSERT_GE(server, 0);
  for (int q = 0; q < kQueues; q++) tap_->ReadAll(q);
  auto counts = [&](const std::string& family) {
    double n = 0;
    for (int q = 0; q < kQueues; q++) n += Get(family, q).count;
    return n;
  };
  const double tx0 = counts("vnet_tap_tx_transit_seconds"), rx0 = counts("vnet_tap_rx_transit_seconds");
  const double backlog0 = counts("vnet_tap_rx_backlog_seconds");
  const uint64_t tap_tx0 = LinkStat(hv_.get(), "vm0", "tx_packets");

  constexpr int kRounds = 200;
  sockaddr_in vm{};
  vm.sin_family = AF_INET;
  vm.sin_port = htons(5000);
  inet_pton(AF_INET, kVmIp.c_str(), &vm.sin_addr);
  auto request = UdpFrame(Mac(hv_.get(), "br0"), kVmMac, kVmIp, "192.0.2.254", false, 5000, 7000);
  char buf[2048];
  size_t read = 0;
  for (int i = 0; i < kRounds; i++) {
    for (int k = 0; k < 8; k++) {  // loopback TCP: 8 segments and their ACKs
      ASSERT_EQ(write(client, buf, 100), 100);
      ASSERT_TRUE(WaitFor([&] { return recv(server, buf, sizeof(buf), MSG_DONTWAIT) > 0; }));
    }
    tap_->Write(request, i % kQueues);  // the guest asks the host
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ASSERT_TRUE(WaitFor([&] {
      return recvfrom(udp, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len) > 0;
    }));
    ASSERT_EQ(sendto(udp, buf, 18, 0, reinterpret_cast<sockaddr*>(&from), len), 18);  // the host answers
    ASSERT_EQ(sendto(udp, buf, 18, 0, reinterpret_cast<sockaddr*>(&vm), sizeof(vm)), 18);  // and sends
    for (int q = 0; q < kQueues; q++) read += tap_->ReadAll(q).size();
  }
  ASSERT_TRUE(WaitFor([&] {
    for (int q = 0; q < kQueues; q++) read += tap_->ReadAll(q).size();
    return read >= 2 * kRounds;
  }));

  EXPECT_EQ(read, 2u * kRounds);
  EXPECT_EQ(LinkStat(hv_.get(), "vm0", "tx_packets") - tap_tx0, read);
  EXPECT_EQ(counts("vnet_tap_rx_backlog_seconds") - backlog0, static_cast<double>(read));
  EXPECT_EQ(counts("vnet_tap_tx_transit_seconds"), tx0);
  EXPECT_EQ(counts("vnet_tap_rx_transit_seconds"), rx0);
}

// A tap removed and created again under the same name (another VM) while traffic flows: its
// series starts again from the new tap's samples alone, none of the old tap's.
TEST_F(TapTest, RecreatedTapStartsItsSeriesAfresh) {
  for (int i = 0; i < 7; i++) tap_->Write(ToRemote(5000, 6000), 0);
  ASSERT_TRUE(WaitFor([&] { return Get("vnet_tap_tx_transit_seconds", 0).count == 7; }));
  tap_.reset();  // the VM stops: its tap is deleted
  tap_ = std::make_unique<Tap>(hv_.get(), "vm0", kQueues);  // another VM gets a tap of that name
  hv_->Sh("ip link set vm0 master br0 && ip link set vm0 up");
  for (int i = 0; i < 3; i++) tap_->Write(ToRemote(5000, 6000), 0);
  EXPECT_EQ(Get("vnet_tap_tx_transit_seconds", 0).count, 3);
  std::this_thread::sleep_for(cfg_.devices.grace_period);
  EXPECT_EQ(Get("vnet_tap_tx_transit_seconds", 0).count, 3);
}

// sample_every 4: one packet in 4 of each direction is timed, counted per CPU. Everything here
// runs on one CPU (the writer's and the sender's softirqs run where they write and send).
class TapSamplingTest : public TapTest {
 protected:
  void SetUp() override {
    settings_.sample_every = 4;
    TapTest::SetUp();
  }
};

TEST_F(TapSamplingTest, OnePacketInFourIsTimedPerDirection) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);  // this thread, and the threads it starts
  UdpSocket sock(*remote_, 6000);
  tap_->Write(ToRemote(5000, 6000), 0);  // the tap's first packet: the tap is learned
  uint64_t remote_rx = LinkStat(remote_.get(), "eth0", "rx_packets");
  Hist tx0 = Get("vnet_tap_tx_transit_seconds", 0), rx0 = Get("vnet_tap_rx_transit_seconds", 0);
  Hist backlog0 = Get("vnet_tap_rx_backlog_seconds", 0);

  constexpr int kPackets = 40;
  for (int i = 0; i < kPackets; i++) tap_->Write(ToRemote(5000, 6000), 0);
  ASSERT_TRUE(WaitFor([&] { return LinkStat(remote_.get(), "eth0", "rx_packets") >= remote_rx + kPackets; }));
  sockaddr_in vm{};
  vm.sin_family = AF_INET;
  vm.sin_port = htons(5000);
  inet_pton(AF_INET, kVmIp.c_str(), &vm.sin_addr);
  remote_->Run([&] {
    for (int i = 0; i < kPackets; i++) sendto(sock.fd(), "x", 1, 0, reinterpret_cast<sockaddr*>(&vm), sizeof(vm));
  });
  size_t read = 0;
  ASSERT_TRUE(WaitFor([&] { return (read += tap_->ReadAll(0).size()) >= kPackets; }));
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &all);
  sched_setaffinity(0, sizeof(all), &all);

  EXPECT_EQ(read, static_cast<size_t>(kPackets));
  EXPECT_EQ(Get("vnet_tap_tx_transit_seconds", 0).count - tx0.count, kPackets / 4);
  EXPECT_EQ(Get("vnet_tap_rx_transit_seconds", 0).count - rx0.count, kPackets / 4);
  EXPECT_EQ(Get("vnet_tap_rx_backlog_seconds", 0).count - backlog0.count, kPackets / 4);
  EXPECT_EQ(Value(collector_->Collect(), "vnet_tap_samples_discarded_total", {{"reason", "evicted"}}), 0);
}

// More packets waiting in the tap's rings than backlog slots: some stamps are taken by later
// packets (by the pigeonhole, at least the excess), and every packet read is either a backlog
// sample or counted as evicted, never a sample with another packet's time.
class TapEvictionTest : public TapTest {
 protected:
  void SetUp() override {
    settings_.backlog_slots = 1024;
    TapTest::SetUp();
  }
};

TEST_F(TapEvictionTest, EveryReadIsASampleOrAnEviction) {
  constexpr int kPackets = 3000;
  hv_->Sh("ip link set vm0 txqueuelen 4000");
  auto backlog = [&] {
    double n = 0;
    for (int q = 0; q < kQueues; q++) n += Get("vnet_tap_rx_backlog_seconds", q).count;
    return n;
  };
  auto evicted = [&] { return Value(collector_->Collect(), "vnet_tap_samples_discarded_total", {{"reason", "evicted"}}); };
  const double backlog0 = backlog(), evicted0 = evicted();
  SendUdp(*remote_, kVmIp, 5000, kPackets);
  size_t read = 0;
  ASSERT_TRUE(WaitFor([&] {
    for (int q = 0; q < kQueues; q++) read += tap_->ReadAll(q).size();
    return read >= static_cast<size_t>(kPackets);
  }));
  EXPECT_EQ(read, static_cast<size_t>(kPackets));
  const double samples = backlog() - backlog0, evictions = evicted() - evicted0;
  EXPECT_EQ(samples + evictions, kPackets);
  EXPECT_GE(evictions, kPackets - 1024);
}

// Anyone can make a namespace with taps (a user namespace is enough) and time its packets:
// those fill tap_hists_other, never the host's map, whose VMs keep every sample.
TEST(TapMapsTest, OtherNamespacesCannotFillTheHostsMap) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and loads BPF programs";
  const std::string p = Prefix();
  Netns host(p + "-host"), other(p + "-other");
  Tap vm(&host, "vm0");
  constexpr int kOtherTaps = 20;
  std::vector<std::unique_ptr<Tap>> others;
  for (int i = 0; i < kOtherTaps; i++) {
    others.push_back(std::make_unique<Tap>(&other, "t" + std::to_string(i)));
    other.Sh("ip link set t" + std::to_string(i) + " up");
  }
  host.Sh("ip link set vm0 up");
  net::SystemLinks system;
  OwnNetnsAs links(system, static_cast<uint32_t>(std::stoul(Sh("stat -L -c %i /run/netns/" + host.name()))));
  config::Config cfg;
  collectors::TapCollector::Settings settings;
  settings.other_netns_max_series = 48;  // 16 map entries: each holds a tap's three directions
  auto collector = collectors::TapCollector::Attach(cfg, settings, links);
  for (const auto& probe : collector->Probes()) ASSERT_TRUE(probe.attached) << probe.probe << ": " << probe.error;

  const auto frame = UdpFrame("02:00:00:00:00:10", "02:00:00:00:00:01", "192.0.2.1", "192.0.2.10");
  for (int i = 0; i < kOtherTaps; i++) SendFrames(other, "t" + std::to_string(i), frame, 1);
  SendFrames(host, "vm0", frame, 5);
  size_t read = vm.ReadAll(0).size();
  for (const auto& t : others) read += t->ReadAll(0).size();
  ASSERT_EQ(read, kOtherTaps + 5u);

  double vm_samples = 0;
  for (const auto& f : collector->Collect()) {
    if (f.name != "vnet_tap_rx_backlog_seconds") continue;
    for (const auto& m : f.metric) {
      if (m.label[0].value == "vm0" && m.label[1].value == host.name()) vm_samples += m.histogram.sample_count;
    }
  }
  EXPECT_EQ(vm_samples, 5);
  auto maps = collector->Maps();
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].map, "tap_hists");
  EXPECT_EQ(maps[0].update_failures, 0u);
  EXPECT_EQ(maps[1].map, "tap_hists_other");
  EXPECT_EQ(maps[1].entries, 16u);
  // Other namespaces of the machine may time packets meanwhile: at least the test's 4 refused.
  EXPECT_GE(maps[1].update_failures, kOtherTaps - 16u);
}

// Taps the device filter leaves out take no map entry: the first scrape that finds their
// samples erases them and puts the tap in tap_excluded, and the programs record nothing of it
// after that, while the other tap of the namespace counts every packet.
TEST(TapMapsTest, ExcludedTapsAreSkippedInTheKernel) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and loads BPF programs";
  Netns host(Prefix() + "-host");
  Tap vm(&host, "vm0"), left_out(&host, "skip0");
  host.Sh("ip link set vm0 up && ip link set skip0 up");
  const auto netns = static_cast<uint32_t>(std::stoul(Sh("stat -L -c %i /run/netns/" + host.name())));
  const auto ifindex = static_cast<uint32_t>(std::stoul(host.Sh("cat /sys/class/net/skip0/ifindex")));
  net::SystemLinks system;
  OwnNetnsAs links(system, netns);
  config::Config cfg;
  cfg.devices.exclude = {"skip*"};
  auto collector = collectors::TapCollector::Attach(cfg, {}, links);
  for (const auto& probe : collector->Probes()) ASSERT_TRUE(probe.attached) << probe.probe << ": " << probe.error;

  const auto frame = UdpFrame("02:00:00:00:00:10", "02:00:00:00:00:01", "192.0.2.1", "192.0.2.10");
  auto round = [&] {
    SendFrames(host, "vm0", frame, 5);
    SendFrames(host, "skip0", frame, 3);
    ASSERT_EQ(vm.ReadAll(0).size() + left_out.ReadAll(0).size(), 8u);  // read: a backlog sample each
  };
  auto entries = [&] {
    int n = 0;
    for (const auto& k : MapKeys<tap_hist_key>("tap_hists")) n += k.netns == netns && k.ifindex == ifindex;
    return n;
  };
  auto samples = [&](const std::string& device) {
    return HistogramOf(collector->Collect(), "vnet_tap_rx_backlog_seconds", {{"device", device}, {"netns", host.name()}})
        .count;
  };
  round();
  EXPECT_EQ(entries(), 1) << "not seen yet: recorded in the kernel";
  EXPECT_EQ(samples("vm0"), 5);
  EXPECT_EQ(entries(), 0) << "its entry was not erased";
  EXPECT_EQ(samples("skip0"), 0);
  round();
  round();
  EXPECT_EQ(entries(), 0) << "the programs did not skip skip0";
  EXPECT_EQ(samples("vm0"), 15);
  EXPECT_EQ(samples("skip0"), 0);
}

}  // namespace
}  // namespace vnet::testing
