// Benchmark of the sched collector, whose programs run at every context switch of the host.
// Prints, from one run:
//  1. a context-switch-heavy workload's round trips per second (two threads on one CPU passing
//     a byte back and forth through pipes: two wakeups and two switches a round trip) with
//     nothing attached, and its ratio with empty programs on sched_switch and sched_wakeup, with
//     the collector attached while the workload is not tracked (every other thread of a host),
//     and while it is (its threads named as a VM's vCPUs); medians of rounds.
//  2. the per-event cost of each program (kernel.bpf_stats_enabled on), beside the empty program
//     on the same tracepoint attached at the same time, untracked and tracked.
//  3. the collector's scrape time (finding the threads in /proc; median of 10) on this host, and
//     with 2,000 more processes of which 200 are VMs (named by libvirt pid files) of 13 threads:
//     9 vCPUs, 3 workers and the main loop.
#include <bpf/libbpf.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "../tests/support/fixtures.h"
#include "collectors/registry.h"
#include "collectors/sched_collector.h"
#include "prog_stats.h"

extern "C" {
#include "empty.skel.h"
}

namespace vnet {
namespace {

constexpr auto kRun = std::chrono::seconds(1);
constexpr int kRounds = 9;

void PinToCpu0() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
}

// Round trips per second of two threads named `a` and `b` on CPU 0.
double PingPong(const char* a, const char* b) {
  int ab[2], ba[2];
  if (pipe(ab) != 0 || pipe(ba) != 0) return 0;
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    pthread_setname_np(pthread_self(), b);
    PinToCpu0();
    for (char c; read(ab[0], &c, 1) == 1 && c;) {
      if (write(ba[1], &c, 1) != 1) break;
    }
  });
  uint64_t trips = 0;
  std::thread self([&] {
    pthread_setname_np(pthread_self(), a);
    PinToCpu0();
    const auto end = std::chrono::steady_clock::now() + kRun;
    for (char c = 1; std::chrono::steady_clock::now() < end; trips++) {
      if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) break;
    }
    char zero = 0;
    (void)!write(ab[1], &zero, 1);
  });
  self.join();
  peer.join();
  for (int fd : {ab[0], ab[1], ba[0], ba[1]}) close(fd);
  return static_cast<double>(trips) / std::chrono::duration<double>(kRun).count();
}

// Empty programs on the collector's two tracepoints, in the order of its programs.
std::vector<bpf_program*> EmptyPrograms(empty_bpf* skel) {
  return {skel->progs.sched_switch_empty, skel->progs.sched_wakeup_empty};
}

// A child process that waits to be killed; with `vcpus`, named like qemu with that many vCPU
// threads and three others.
pid_t Child(int vcpus) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (vcpus) {
    prctl(PR_SET_NAME, "qemu-system-x86");
    for (int i = 0; i < vcpus + 3; i++) {
      std::thread([i, vcpus] {
        const std::string name = i < vcpus ? "CPU " + std::to_string(i) + "/KVM" : "worker";
        pthread_setname_np(pthread_self(), name.c_str());
        pause();
      }).detach();
    }
  }
  pause();
  _exit(0);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace vnet

int main() {
  using namespace vnet;
  if (geteuid() != 0) {
    std::cerr << "sched_bench: needs root\n";
    return 1;
  }
  std::string old_stats;
  std::ifstream("/proc/sys/kernel/bpf_stats_enabled") >> old_stats;
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "0";
  empty_bpf* skel = empty_bpf__open_and_load();
  if (!skel) {
    std::cerr << "empty programs did not load\n";
    return 1;
  }
  // This process plays a VM's qemu when its pid file is in `libvirt`: its threads named "CPU n/KVM"
  // are then tracked.
  testing::TempDir libvirt;
  prctl(PR_SET_NAME, "qemu-system-x86");
  config::Config cfg = collectors::ParseConfig(
      "collectors:\n  interface: {libvirt_dir: " + libvirt.path().string() + "}\n", "bench.yaml");
  const auto& settings = cfg.Get<collectors::SchedCollector::Settings>();
  auto attach = [&](bool tracked) {
    std::filesystem::remove(libvirt.path() / "bench.pid");
    if (tracked) libvirt.Write("bench.pid", std::to_string(getpid()));
    auto c = collectors::SchedCollector::Attach(cfg, settings);
    if (!c->Probes()[0].attached) {
      std::cerr << "sched probe not attached: " << c->Probes()[0].error << "\n";
      std::exit(1);
    }
    return c;
  };
  // Threads are found by a scrape: the workload's are made first, named, and found while they wait.
  auto run = [&](collectors::SchedCollector* c) {
    if (!c) return PingPong("bench-a", "bench-b");
    std::atomic<bool> started{false};
    double r = 0;
    std::thread t([&] {
      started = true;
      r = PingPong("CPU 0/KVM", "CPU 1/KVM");
    });
    while (!started) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c->Collect();  // finds them (when this process is a VM)
    t.join();
    return r;
  };

  std::vector<double> off, empty, untracked, tracked;
  for (int round = 0; round < kRounds; round++) {
    const double base = PingPong("bench-a", "bench-b");
    off.push_back(base);
    {
      bench::Attached e(bench::Fds(EmptyPrograms(skel)));
      if (!e.attached()) {
        std::cerr << "empty programs did not attach\n";
        return 1;
      }
      empty.push_back(PingPong("bench-a", "bench-b") / base);
    }
    {
      auto c = attach(false);
      untracked.push_back(PingPong("bench-a", "bench-b") / base);
    }
    auto c = attach(true);
    tracked.push_back(run(c.get()) / base);
  }
  std::printf("== context switches: round trips/s of two threads on one CPU through pipes with nothing attached,\n"
              "   and the ratio to it with empty programs on sched_switch and sched_wakeup, with the collector\n"
              "   while the threads are not tracked (a host's other threads) and while they are (a VM's vCPUs)\n"
              "   (medians of %d rounds of %lds runs)\n",
              kRounds, static_cast<long>(kRun.count()));
  std::printf("%12s %9s %10s %9s   %s\n", "off", "empty", "untracked", "tracked", "untracked: min..max of rounds");
  std::printf("%12.0f %8.3fx %9.3fx %8.3fx   %.3f..%.3f\n", Median(off), Median(empty), Median(untracked),
              Median(tracked), *std::min_element(untracked.begin(), untracked.end()),
              *std::max_element(untracked.begin(), untracked.end()));

  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "1";
  std::printf("\n== per-event cost (kernel.bpf_stats_enabled): the collector's program and an empty one on the\n"
              "   same tracepoint, attached together\n");
  std::printf("%-10s %-18s %9s %9s %9s\n", "threads", "program", "ns/event", "empty", "own");
  for (bool t : {false, true}) {
    auto c = attach(t);
    bench::Attached e(bench::Fds(EmptyPrograms(skel)));
    std::vector<int> programs;
    for (const auto& p : c->Programs()) programs.push_back(p.fd);
    auto before = bench::Stats(programs), before_empty = bench::Stats(e.Programs());
    run(t ? c.get() : nullptr);
    auto after = bench::Stats(programs), after_empty = bench::Stats(e.Programs());
    for (size_t i = 0; i < programs.size(); i++) {
      double per = bench::PerEvent(before[i], after[i]), eper = bench::PerEvent(before_empty[i], after_empty[i]);
      std::printf("%-10s %-18s %9.1f %9.1f %9.1f\n", t ? "tracked" : "untracked", c->Programs()[i].name.c_str(), per,
                  eper, per - eper);
    }
  }

  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << old_stats;
  std::filesystem::remove(libvirt.path() / "bench.pid");
  auto scrape_ms = [&] {
    auto c = attach(false);
    std::vector<double> ms;
    for (int i = 0; i < 10; i++) {
      const auto t0 = std::chrono::steady_clock::now();
      c->Collect();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return Median(ms);
  };
  auto processes = [] {
    return std::distance(std::filesystem::directory_iterator("/proc"), std::filesystem::directory_iterator{});
  };
  std::printf("\n== scrape of the sched collector (threads found in /proc), median of 10\n");
  std::printf("%-45s %9ld entries %8.2f ms\n", "this host", static_cast<long>(processes()), scrape_ms());
  std::vector<pid_t> children;
  for (int i = 0; i < 2000; i++) {
    children.push_back(Child(i % 10 == 0 ? 9 : 0));
    if (i % 10 == 0) libvirt.Write("vm" + std::to_string(i) + ".pid", std::to_string(children.back()));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::printf("%-45s %9ld entries %8.2f ms\n", "+1,800 processes, +200 VMs of 9 vCPUs + 3 others",
              static_cast<long>(processes()), scrape_ms());
  for (pid_t c : children) kill(c, SIGKILL);
  for (pid_t c : children) waitpid(c, nullptr, 0);
  empty_bpf__destroy(skel);
  return 0;
}
