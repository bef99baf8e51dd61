// Benchmark of the tap latency collector. Prints, from one run:
//  1. small-packet throughput with nothing attached, and its ratio with nothing attached again
//     (the control), with empty programs on the collector's tracepoints (what any program there
//     costs), and with the collector timing every packet or sampling (kernel.bpf_stats_enabled
//     off), on three paths:
//       rx:     remote -> veth -> bridge -> tap -> test backend (reads the tap)
//       tx:     test backend (writes the tap) -> tap -> bridge -> veth -> remote
//       no tap: namespace a -> veth -> bridge -> veth -> namespace b, beside the tap
//     Each path's traffic runs without a pause while the configurations take turns in short
//     windows (programs loaded once, attached and detached between windows): this machine's
//     speed drifts by 10-40% over seconds, far less between neighbouring windows, so each
//     window is compared with the windows of its own cycle and the medians of the ratios are
//     printed.
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
#include <iterator>
#include <memory>
#include <string>
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

constexpr auto kWindow = std::chrono::milliseconds(200);  // one configuration's measurement
constexpr auto kSettle = std::chrono::milliseconds(20);   // after an attach, before measuring
constexpr int kCycles = 25;                                // windows of each configuration per path
constexpr uint32_t kSampleEvery[] = {1, 4, 16};  // the collector's configurations: every packet, sampled
static_assert(std::size(kSampleEvery) == 3 && kSampleEvery[0] == 1, "the tables print every packet and two samplings");
const std::string kVmMac = "02:00:00:00:00:10";

// Traffic of one path, in threads that run until this goes; `delivered` counts what arrived.
struct Flow {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> delivered{0};
  std::vector<std::thread> threads;

  ~Flow() {
    stop = true;
    for (auto& t : threads) t.join();
  }
};

// Sends 18-byte UDP payloads from inside `ns` to dst:port until `flow` stops.
void Blast(Flow* flow, const testing::Netns* ns, std::string dst, uint16_t port) {
  flow->threads.emplace_back([=] {
    ns->Run([&] {
      int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      inet_pton(AF_INET, dst.c_str(), &a.sin_addr);
      char payload[18] = {};
      while (!flow->stop) {
        for (int i = 0; i < 64; i++) sendto(s, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      }
      close(s);
    });
  });
}

// Counts the datagrams a UDP socket bound to `port` inside `ns` receives until `flow` stops.
void Sink(Flow* flow, const testing::Netns* ns, uint16_t port) {
  auto socket = std::make_shared<testing::UdpSocket>(*ns, port);
  int size = 8 << 20;
  setsockopt(socket->fd(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
  flow->threads.emplace_back([flow, socket] {
    char buf[64];
    // Polls without sleeping, as the test backend does: a sleeping receiver makes the sender
    // pay wakeups (a third of the samples in a profile here), as many as timing decides, so the
    // figure would measure wakeups as much as the datapath the programs run in.
    while (!flow->stop) {
      if (recv(socket->fd(), buf, sizeof(buf), MSG_DONTWAIT) > 0) flow->delivered++;
    }
  });
}

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

  // remote -> bridge -> tap -> backend: frames the backend read.
  std::unique_ptr<Flow> Rx() {
    auto f = std::make_unique<Flow>();
    Blast(f.get(), &remote, "192.0.2.10", 9);
    Flow* flow = f.get();
    f->threads.emplace_back([this, flow] {
      while (!flow->stop) flow->delivered += tap.ReadAll(0).size();
    });
    return f;
  }

  // backend -> tap -> bridge -> remote: datagrams the remote received.
  std::unique_ptr<Flow> Tx() {
    auto f = std::make_unique<Flow>();
    Sink(f.get(), &remote, 6000);
    Flow* flow = f.get();
    f->threads.emplace_back([this, flow] {
      auto frame =
          testing::UdpFrame(testing::Mac(&remote, "eth0"), kVmMac, "192.0.2.10", "192.0.2.1", false, 5000, 6000);
      while (!flow->stop) {
        for (int i = 0; i < 64; i++) tap.Write(frame, 0);
      }
    });
    return f;
  }

  // a -> bridge -> b, no tap on the way: datagrams b received.
  std::unique_ptr<Flow> NoTap() {
    auto f = std::make_unique<Flow>();
    Sink(f.get(), &b, 9);
    Blast(f.get(), &a, "192.0.2.22", 9);
    return f;
  }
};

// Packets `flow` delivers per second over `window`.
double Rate(const Flow& flow, Clock::duration window) {
  uint64_t n0 = flow.delivered;
  auto t0 = Clock::now();
  std::this_thread::sleep_for(window);
  uint64_t n1 = flow.delivered;
  return static_cast<double>(n1 - n0) / std::chrono::duration<double>(Clock::now() - t0).count();
}

// The fds of a collector's programs, loaded as the exporter loads them, outliving the collector
// (whose links go with it): what the windows attach. Their names go to `names`.
std::vector<int> LoadedPrograms(uint32_t sample_every, std::vector<std::string>* names) {
  config::Config cfg;
  net::SystemLinks links;
  collectors::TapCollector::Settings settings;
  settings.sample_every = sample_every;
  auto collector = collectors::TapCollector::Attach(cfg, settings, links);
  if (!collector->Probes()[0].attached) {
    std::cerr << "tap probe not attached: " << collector->Probes()[0].error << "\n";
    std::exit(1);
  }
  std::vector<int> fds;
  names->clear();
  for (const auto& p : collector->Programs()) {
    fds.push_back(dup(p.fd));
    names->push_back(p.name);
  }
  return fds;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

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
  empty_bpf* skel = empty_bpf__open_and_load();
  if (!skel) {
    std::cerr << "empty programs did not load\n";
    return 1;
  }
  std::vector<std::string> names;
  const std::vector<int> empty = bench::Fds(EmptyPrograms(skel));
  std::vector<std::vector<int>> collector;  // by kSampleEvery
  for (uint32_t n : kSampleEvery) collector.push_back(LoadedPrograms(n, &names));
  // The configurations a cycle measures: `off` (nothing attached) first, then `off` again (the
  // control: its ratio shows what the method cannot tell apart), empty programs, the collector.
  std::vector<const std::vector<int>*> configs = {nullptr, nullptr, &empty};
  for (const auto& c : collector) configs.push_back(&c);
  constexpr size_t kEmpty = 2, kEvery = 3;

  struct Path {
    const char* name;
    std::function<std::unique_ptr<Flow>()> start;
  };
  const std::vector<Path> paths = {{"rx: bridge -> tap -> backend", [&] { return bench.Rx(); }},
                                   {"tx: backend -> tap -> bridge", [&] { return bench.Tx(); }},
                                   {"no tap: veth -> bridge -> veth", [&] { return bench.NoTap(); }}};

  std::printf("== 18-byte UDP packets/s with nothing attached (off), and the ratio to it with nothing attached\n"
              "   again (control: what the method cannot tell apart), with empty programs on the collector's\n"
              "   tracepoints, and with the collector timing every packet (1/1) or one in %u or %u per direction\n"
              "   and CPU (sample_every); then the collector's ratio to the empty programs (own). Medians of %d\n"
              "   cycles of %ld ms windows, each ratio to the windows of its own cycle; the quartiles of 1/1\n",
              kSampleEvery[1], kSampleEvery[2], kCycles, static_cast<long>(kWindow.count()));
  const std::string s1 = "1/" + std::to_string(kSampleEvery[1]), s2 = "1/" + std::to_string(kSampleEvery[2]);
  std::printf("%-32s %7s %7s %6s %6s %6s %6s  %-11s  %6s %6s %6s\n", "path", "off", "control", "empty", "1/1", s1.c_str(),
              s2.c_str(), "1/1 q1..q3", "own", s1.c_str(), s2.c_str());
  for (const auto& p : paths) {
    auto flow = p.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::vector<double> off;
    std::vector<std::vector<double>> ratios(configs.size()), own(configs.size());
    for (int cycle = 0; cycle < kCycles; cycle++) {
      std::vector<double> rate(configs.size());
      // The order turns each cycle, so no configuration always follows the same one.
      for (size_t k = 0; k < configs.size(); k++) {
        size_t c = (cycle + k) % configs.size();
        std::unique_ptr<bench::Attached> on;
        if (configs[c]) {
          on = std::make_unique<bench::Attached>(*configs[c]);
          if (!on->attached()) {
            std::cerr << "programs did not attach\n";
            return 1;
          }
        }
        std::this_thread::sleep_for(kSettle);
        rate[c] = Rate(*flow, kWindow);
      }
      off.push_back(rate[0]);
      for (size_t c = 1; c < configs.size(); c++) {
        ratios[c].push_back(rate[c] / rate[0]);
        own[c].push_back(rate[c] / rate[kEmpty]);
      }
    }
    auto every = ratios[kEvery];
    std::sort(every.begin(), every.end());
    std::printf("%-32.32s %7.0f %6.3fx %5.3fx %5.3fx %5.3fx %5.3fx  %.3f..%.3f  %5.3fx %5.3fx %5.3fx\n", p.name,
                Median(off), Median(ratios[1]), Median(ratios[kEmpty]), Median(ratios[kEvery]),
                Median(ratios[kEvery + 1]), Median(ratios[kEvery + 2]), every[every.size() / 4],
                every[every.size() * 3 / 4], Median(own[kEvery]), Median(own[kEvery + 1]), Median(own[kEvery + 2]));
  }

  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "1";
  std::printf("\n== per-event cost (kernel.bpf_stats_enabled): an empty program on each tracepoint, and what the\n"
              "   collector's program there costs beyond it (own) timing every packet (1/1) and one in %u or %u,\n"
              "   each attached together with the empty one; ns per event, and events per packet delivered\n",
              kSampleEvery[1], kSampleEvery[2]);
  std::printf("%-32s %-22s %6s %6s %6s %6s %10s\n", "path", "program", "empty", "1/1", s1.c_str(), s2.c_str(),
              "events/pkt");
  for (const auto& p : paths) {
    struct Cost {
      double empty = 0, own = 0, events = 0;
    };
    std::vector<std::vector<Cost>> costs;  // by kSampleEvery, by program
    for (const auto& programs : collector) {
      bench::Attached attached(programs), baseline(empty);
      auto flow = p.start();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto before = bench::Stats(programs), before_empty = bench::Stats(empty);
      uint64_t n0 = flow->delivered;
      std::this_thread::sleep_for(std::chrono::seconds(2));
      double packets = static_cast<double>(flow->delivered - n0);
      auto after = bench::Stats(programs), after_empty = bench::Stats(empty);
      costs.emplace_back();
      for (size_t i = 0; i < programs.size(); i++) {
        double per = bench::PerEvent(before[i], after[i]), eper = bench::PerEvent(before_empty[i], after_empty[i]);
        costs.back().push_back({eper, per - eper, packets > 0 ? (after[i].runs - before[i].runs) / packets : 0.0});
      }
    }
    for (size_t i = 0; i < names.size(); i++) {
      std::printf("%-32.32s %-22s %6.1f %6.1f %6.1f %6.1f %10.2f\n", p.name, names[i].c_str(), costs[0][i].empty,
                  costs[0][i].own, costs[1][i].own, costs[2][i].own, costs[0][i].events);
    }
  }
  for (const auto& programs : collector) {
    for (int fd : programs) close(fd);
  }
  empty_bpf__destroy(skel);
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << old_stats;
  return 0;
}
