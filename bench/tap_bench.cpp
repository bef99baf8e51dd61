// Benchmark of the tap latency collector. Prints, from one run:
//  1. small-packet throughput remote -> bridge -> tap -> test backend with the collector
//     detached and attached (alternating, best of each), and their ratio;
//  2. the per-event cost of each of its programs (kernel.bpf_stats_enabled) during the
//     attached runs.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "../tests/support/netns.h"
#include "collectors/tap_collector.h"

namespace {

using namespace vnet;
using Clock = std::chrono::steady_clock;

constexpr auto kRun = std::chrono::seconds(2);

// Packets per second the backend read while the remote sent 18-byte UDP payloads for kRun.
double Throughput(const testing::Netns& remote, const testing::Tap& tap) {
  std::atomic<bool> stop{false};
  uint64_t frames = 0;
  std::thread backend([&] {
    while (!stop) frames += tap.ReadAll(0).size();
  });
  remote.Run([&] {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(9);
    inet_pton(AF_INET, "192.0.2.10", &a.sin_addr);
    char payload[18] = {};
    auto until = Clock::now() + kRun;
    while (Clock::now() < until) {
      for (int i = 0; i < 64; i++) sendto(s, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
    close(s);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  backend.join();
  return static_cast<double>(frames) / std::chrono::duration<double>(kRun).count();
}

}  // namespace

int main() {
  if (geteuid() != 0) {
    std::cerr << "tap_bench: needs root\n";
    return 1;
  }
  std::string old_stats;
  std::ifstream("/proc/sys/kernel/bpf_stats_enabled") >> old_stats;
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "1";

  testing::Netns hv("vnet-bench-hv"), remote("vnet-bench-remote");
  testing::Tap tap(&hv, "vm0", 1);
  testing::Sh("ip -n " + hv.name() + " link add up0 type veth peer name eth0 netns " + remote.name());
  hv.Sh("ip link add br0 type bridge stp_state 0 forward_delay 0 && ip link set vm0 master br0 && "
        "ip link set up0 master br0 && ip link set vm0 up && ip link set up0 up && ip link set br0 up && "
        "ip link set vm0 txqueuelen 10000 && bridge fdb add 02:00:00:00:00:10 dev vm0 master static");
  remote.Sh("ip addr add 192.0.2.1/24 dev eth0 && ip link set eth0 up && "
            "ip neigh add 192.0.2.10 lladdr 02:00:00:00:00:10 dev eth0 nud permanent");

  config::Config cfg;
  net::SystemLinks links;
  double off = 0, on = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> cost;  // program -> runs, ns
  for (int round = 0; round < 3; round++) {
    off = std::max(off, Throughput(remote, tap));
    auto collector = collectors::TapCollector::Attach(cfg, {}, links);
    if (!collector->Probes()[0].attached) {
      std::cerr << "tap probe not attached: " << collector->Probes()[0].error << "\n";
      return 1;
    }
    on = std::max(on, Throughput(remote, tap));
    for (const auto& p : collector->Programs()) {
      struct bpf_prog_info info = {};
      uint32_t len = sizeof(info);
      bpf_obj_get_info_by_fd(p.fd, &info, &len);
      cost[p.name].first += info.run_cnt;
      cost[p.name].second += info.run_time_ns;
    }
  }
  std::printf("== remote -> bridge -> tap -> backend, 18-byte UDP, best of 3 runs of %lds each\n",
              static_cast<long>(kRun.count()));
  std::printf("%-28s %12s %10s\n", "tap collector", "packets/s", "vs off");
  std::printf("%-28s %12.0f %10s\n", "off (baseline)", off, "1.00x");
  std::printf("%-28s %12.0f %9.2fx\n", "on", on, on / off);
  std::printf("\n== per-event cost of the tap programs while on (all packets of the host, not only taps)\n");
  std::printf("%-28s %12s %10s\n", "program", "runs", "ns/event");
  for (const auto& [name, c] : cost) {
    std::printf("%-28s %12lu %10.1f\n", name.c_str(), c.first, c.first ? static_cast<double>(c.second) / c.first : 0);
  }
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << old_stats;
  return 0;
}
