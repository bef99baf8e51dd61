// Benchmark of the tap latency collector. Prints, from one run:
//  1. small-packet throughput with nothing attached, and its ratio with empty programs on the
//     collector's tracepoints (what any program there costs) and with the collector attached
//     (medians of rounds, kernel.bpf_stats_enabled off) on three paths:
//       rx:     remote -> veth -> bridge -> tap -> test backend (reads the tap)
//       tx:     test backend (writes the tap) -> tap -> bridge -> veth -> remote
//       no tap: namespace a -> veth -> bridge -> veth -> namespace b, beside the tap
//  2. the per-event cost of each program on each path (kernel.bpf_stats_enabled on), beside the
//     empty program on the same tracepoint attached at the same time.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include "../tests/support/netns.h"
#include "prog_stats.h"
#include "collectors/tap_collector.h"

extern "C" {
#include "empty.skel.h"
}

namespace {

using namespace vnet;
using Clock = std::chrono::steady_clock;

constexpr auto kRun = std::chrono::seconds(1);
constexpr int kRounds = 5;
constexpr uint32_t kSampleEvery = 4;  // the sampled configuration measured beside every packet
const std::string kVmMac = "02:00:00:00:00:10";

// A UDP socket bound to `port` inside `ns` and a thread counting what it receives.
class Sink {
 public:
  Sink(const testing::Netns& ns, uint16_t port) : socket_(ns, port) {
    timeval tv{0, 100000};
    setsockopt(socket_.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int size = 8 << 20;
    setsockopt(socket_.fd(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    thread_ = std::thread([this] {
      char buf[64];
      while (!stop_) {
        if (recv(socket_.fd(), buf, sizeof(buf), 0) > 0) count_++;
      }
    });
  }
  ~Sink() {
    stop_ = true;
    thread_.join();
  }
  uint64_t count() const { return count_; }

 private:
  testing::UdpSocket socket_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> count_{0};
  std::thread thread_;
};

// Sends 18-byte UDP payloads from inside `ns` to dst:9 for kRun.
void Blast(const testing::Netns& ns, const std::string& dst) {
  ns.Run([&] {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(9);
    inet_pton(AF_INET, dst.c_str(), &a.sin_addr);
    char payload[18] = {};
    auto until = Clock::now() + kRun;
    while (Clock::now() < until) {
      for (int i = 0; i < 64; i++) sendto(s, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
    close(s);
  });
}

double PerSecond(uint64_t n) { return static_cast<double>(n) / std::chrono::duration<double>(kRun).count(); }

struct Bench {
  testing::Netns hv{"vnet-bench-hv"}, remote{"vnet-bench-remote"}, a{"vnet-bench-a"}, b{"vnet-bench-b"};
  testing::Tap tap{&hv, "vm0", 1};

  Bench() {
    for (auto [ns, peer] : {std::pair{&remote, "up0"}, {&a, "va"}, {&b, "vb"}}) {
      testing::Sh("ip -n " + hv.name() + " link add " + peer + " type veth peer name eth0 netns " + ns->name());
    }
    hv.Sh("ip link add br0 type bridge stp_state 0 forward_delay 0 && for d in vm0 up0 va vb; do "
          "ip link set $d master br0 && ip link set $d up; done && ip link set br0 up && "
          "ip link set vm0 txqueuelen 10000 && bridge fdb add " + kVmMac + " dev vm0 master static");
    remote.Sh("ip addr add 192.0.2.1/24 dev eth0 && ip link set eth0 up && "
              "ip neigh add 192.0.2.10 lladdr " + kVmMac + " dev eth0 nud permanent");
    a.Sh("ip addr add 192.0.2.21/24 dev eth0 && ip link set eth0 up");
    b.Sh("ip addr add 192.0.2.22/24 dev eth0 && ip link set eth0 up");
    a.Sh("ip neigh add 192.0.2.22 lladdr " + testing::Mac(&b, "eth0") + " dev eth0 nud permanent");
    hv.Sh("bridge fdb add " + testing::Mac(&b, "eth0") + " dev vb master static && bridge fdb add " +
          testing::Mac(&remote, "eth0") + " dev up0 master static");
  }

  // remote -> bridge -> tap -> backend: frames the backend read per second.
  double Rx() {
    std::atomic<bool> stop{false};
    uint64_t frames = 0;
    std::thread backend([&] {
      while (!stop) frames += tap.ReadAll(0).size();
    });
    Blast(remote, "192.0.2.10");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop = true;
    backend.join();
    return PerSecond(frames);
  }

  // backend -> tap -> bridge -> remote: datagrams the remote received per second.
  double Tx() {
    Sink sink(remote, 6000);
    auto frame = testing::UdpFrame(testing::Mac(&remote, "eth0"), kVmMac, "192.0.2.10", "192.0.2.1", false, 5000, 6000);
    auto until = Clock::now() + kRun;
    while (Clock::now() < until) {
      for (int i = 0; i < 64; i++) tap.Write(frame, 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    return PerSecond(sink.count());
  }

  // a -> bridge -> b, no tap on the way: datagrams b received per second.
  double NoTap() {
    Sink sink(b, 9);
    Blast(a, "192.0.2.22");
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    return PerSecond(sink.count());
  }
};

using bench::ProgStats;
using bench::Stats;

// Empty programs on the collector's three tracepoints, in the order of its programs
// (tap_netif_receive_skb, tap_start_xmit, tap_copy_datagram).
std::vector<bpf_program*> EmptyPrograms(empty_bpf* skel) {
  return {skel->progs.netif_receive_skb_empty, skel->progs.start_xmit_empty, skel->progs.copy_datagram_empty};
}

}  // namespace

int main() {
  if (geteuid() != 0) {
    std::cerr << "tap_bench: needs root\n";
    return 1;
  }
  std::string old_stats;
  std::ifstream("/proc/sys/kernel/bpf_stats_enabled") >> old_stats;
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "0";

  Bench bench;
  config::Config cfg;
  net::SystemLinks links;
  empty_bpf* skel = empty_bpf__open_and_load();
  if (!skel) {
    std::cerr << "empty programs did not load\n";
    return 1;
  }
  struct Path {
    const char* name;
    std::function<double()> run;
    std::vector<double> off, empty, on, sampled;  // packets/s and ratios to `off`, per round
  };
  std::vector<Path> paths = {{"rx: remote -> bridge -> tap -> backend", [&] { return bench.Rx(); }, {}, {}, {}, {}},
                             {"tx: backend -> tap -> bridge -> remote", [&] { return bench.Tx(); }, {}, {}, {}, {}},
                             {"no tap: veth -> bridge -> veth", [&] { return bench.NoTap(); }, {}, {}, {}, {}}};
  collectors::TapCollector::Settings sampled;
  sampled.sample_every = kSampleEvery;
  // Each round runs the four configurations of a path back to back and keeps their ratios to
  // its own `off` run: this machine's speed drifts by 10-20% over seconds, less within a round.
  for (int round = 0; round < kRounds; round++) {
    for (auto& p : paths) {
      double off = p.run();
      p.off.push_back(off);
      {
        bench::Attached empty(EmptyPrograms(skel));
        if (!empty.attached()) {
          std::cerr << "empty programs did not attach\n";
          return 1;
        }
        p.empty.push_back(p.run() / off);
      }
      for (auto [settings, out] : {std::pair{collectors::TapCollector::Settings{}, &p.on}, {sampled, &p.sampled}}) {
        auto collector = collectors::TapCollector::Attach(cfg, settings, links);
        if (!collector->Probes()[0].attached) {
          std::cerr << "tap probe not attached: " << collector->Probes()[0].error << "\n";
          return 1;
        }
        out->push_back(p.run() / off);
      }
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("== 18-byte UDP packets/s with nothing attached, and the ratio to it with empty programs, the\n"
              "   collector timing every packet, and with sample_every: %u (medians of %d rounds of %lds runs)\n",
              kSampleEvery, kRounds, static_cast<long>(kRun.count()));
  std::printf("%-40s %9s %9s %9s %9s   %s\n", "path", "off", "empty", "on", "sampled", "on: min..max of rounds");
  for (const auto& p : paths) {
    std::printf("%-40s %9.0f %8.3fx %8.3fx %8.3fx   %.3f..%.3f\n", p.name, median(p.off), median(p.empty),
                median(p.on), median(p.sampled), *std::min_element(p.on.begin(), p.on.end()),
                *std::max_element(p.on.begin(), p.on.end()));
  }

  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "1";
  auto collector = collectors::TapCollector::Attach(cfg, {}, links);  // every packet
  bench::Attached empty(EmptyPrograms(skel));
  std::printf("\n== per-event cost (kernel.bpf_stats_enabled): the collector's program and an empty one on the\n"
              "   same tracepoint, attached together; events per packet delivered\n");
  std::printf("%-40s %-22s %9s %9s %9s %10s\n", "path", "program", "ns/event", "empty", "own", "events/pkt");
  for (auto& p : paths) {
    std::vector<ProgStats> before, before_empty;
    for (const auto& prog : collector->Programs()) before.push_back(Stats(prog.fd));
    for (auto* e : empty.Programs()) before_empty.push_back(Stats(bpf_program__fd(e)));
    double packets = p.run() * std::chrono::duration<double>(kRun).count();
    for (size_t i = 0; i < collector->Programs().size(); i++) {
      ProgStats s = Stats(collector->Programs()[i].fd), e = Stats(bpf_program__fd(empty.Programs()[i]));
      uint64_t runs = s.runs - before[i].runs, ns = s.ns - before[i].ns;
      uint64_t eruns = e.runs - before_empty[i].runs, ens = e.ns - before_empty[i].ns;
      double per = runs ? static_cast<double>(ns) / runs : 0, eper = eruns ? static_cast<double>(ens) / eruns : 0;
      std::printf("%-40s %-22s %9.1f %9.1f %9.1f %10.2f\n", p.name, collector->Programs()[i].name.c_str(), per, eper,
                  per - eper, packets > 0 ? runs / packets : 0.0);
    }
  }
  empty_bpf__destroy(skel);
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << old_stats;
  return 0;
}
