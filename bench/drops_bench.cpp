// Benchmark of the drops collector. Prints, from one run:
//  1. per-event cost (kernel.bpf_stats_enabled run_time_ns / run_cnt) of the drops program beside
//     an empty tp_btf program and bpftrace counting skb:kfree_skb by reason and location, all
//     attached at once and fed the same drops;
//  2. scrape time and exporter RSS with the drops map empty and filled to its capacity.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "maps.h"
#include "prog_stats.h"
#include "collectors/drops_collector.h"
#include "collectors/exporter_collector.h"
#include "metrics/text.h"

extern "C" {
#include "empty.skel.h"
}

namespace {

using namespace vnet;

using bench::ProgStats;
using bench::Stats;

// bpftrace's program on the tracepoint, found by name among loaded programs.
int FindProg(const std::string& prefix, uint32_t newer_than) {
  uint32_t id = newer_than;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    struct bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::string(info.name).rfind(prefix, 0) == 0) return fd;
    close(fd);
  }
  return -1;
}

uint32_t LastProgId() {
  uint32_t id = 0, next;
  while (bpf_prog_get_next_id(id, &next) == 0) id = next;
  return id;
}

long RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// Median wall time of `n` scrapes including text serialization, as the HTTP handler does.
double ScrapeMs(const collectors::ExporterCollector& exporter, int n, size_t* bytes) {
  std::vector<double> t;
  for (int i = 0; i < n; i++) {
    auto start = std::chrono::steady_clock::now();
    // As the exporter answers a scrape: series written straight from the maps' read, in 64 KiB
    // pieces (here counted and dropped instead of sent).
    std::string text;
    size_t written = 0;
    metrics::TextWriter w(text, 1 << 16, [&](std::string& piece) {
      written += piece.size();
      piece.clear();
      return true;
    });
    exporter.Scrape(collectors::ExporterCollector::kDefaultBudget)(w);
    w.Finish();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    *bytes = written;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void SendDrops(const std::string& ns, int n) {
  std::thread([&] {
    int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY);
    setns(fd, CLONE_NEWNET);
    close(fd);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(9);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char payload[64] = {};
    for (int i = 0; i < n; i++) sendto(s, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    close(s);
  }).join();
}

}  // namespace

int main(int argc, char** argv) {
  int packets = 200000;
  for (int i = 1; i + 1 < argc; i++) {
    if (std::string(argv[i]) == "--packets") packets = std::stoi(argv[++i]);
  }
  if (geteuid() != 0) {
    std::cerr << "drops_bench: needs root\n";
    return 1;
  }
  std::string old_stats;
  std::ifstream("/proc/sys/kernel/bpf_stats_enabled") >> old_stats;
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "1";
  const std::string ns = "vnet-bench";
  std::system(("ip netns add " + ns + " && ip -n " + ns + " link set lo up").c_str());

  config::Config cfg;
  net::SystemLinks links;
  auto drops = collectors::DropsCollector::Attach(cfg, {}, links);
  if (!drops->Probes()[0].attached) {
    std::cerr << "drops probe not attached: " << drops->Probes()[0].error << "\n";
    return 1;
  }
  int drops_fd = drops->Programs()[0].fd;
  std::string attach_type = drops->Probes()[0].attach_type;
  // The fallback program, measured side by side.
  config::Config raw_cfg;
  raw_cfg.disabled_attach_types = {"tp_btf"};
  auto raw = collectors::DropsCollector::Attach(raw_cfg, {}, links);
  int raw_fd = raw->Probes()[0].attached ? raw->Programs()[0].fd : -1;

  empty_bpf* empty = empty_bpf__open_and_load();
  if (!empty || !(empty->links.kfree_skb_empty = bpf_program__attach(empty->progs.kfree_skb_empty))) {
    std::cerr << "empty tp_btf program did not load\n";
    return 1;
  }

  // bpftrace doing the same aggregation as the drops program, for comparison.
  uint32_t before_bpftrace = LastProgId();
  pid_t bpftrace = -1;
  int pipefd[2];
  if (pipe(pipefd) == 0 && (bpftrace = fork()) == 0) {
    dup2(pipefd[1], 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);  // its RLIMIT_MEMLOCK complaint is harmless on memcg-accounted kernels
    execlp("bpftrace", "bpftrace", "-e", "tracepoint:skb:kfree_skb { @[args->reason, args->location] = count(); }",
           nullptr);
    _exit(127);
  }
  close(pipefd[1]);
  std::string line;
  {
    char c;
    while (read(pipefd[0], &c, 1) == 1 && c != '\n') line += c;  // "Attaching 1 probe..."
  }
  // It prints "Attaching 1 probe..." before loading: wait for its program to appear.
  int bpftrace_fd = -1;
  for (int i = 0; i < 100 && bpftrace_fd < 0 && line.rfind("Attaching", 0) == 0; i++) {
    bpftrace_fd = FindProg("kfree_skb", before_bpftrace);
    if (bpftrace_fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // attached after loading

  ProgStats r0 = raw_fd >= 0 ? Stats(raw_fd) : ProgStats{};
  ProgStats d0 = Stats(drops_fd), e0 = Stats(bpf_program__fd(empty->progs.kfree_skb_empty));
  ProgStats b0 = bpftrace_fd >= 0 ? Stats(bpftrace_fd) : ProgStats{};
  auto start = std::chrono::steady_clock::now();
  SendDrops(ns, packets);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ProgStats r1 = raw_fd >= 0 ? Stats(raw_fd) : ProgStats{};
  ProgStats d1 = Stats(drops_fd), e1 = Stats(bpf_program__fd(empty->progs.kfree_skb_empty));
  ProgStats b1 = bpftrace_fd >= 0 ? Stats(bpftrace_fd) : ProgStats{};
  if (bpftrace > 0) {
    kill(bpftrace, SIGINT);
    waitpid(bpftrace, nullptr, 0);
  }

  double dn = bench::PerEvent(d0, d1), en = bench::PerEvent(e0, e1), bn = bench::PerEvent(b0, b1),
         rn = bench::PerEvent(r0, r1);
  std::printf("== per-event cost on skb:kfree_skb (%d drops in %.2f s, all programs attached together)\n", packets, secs);
  std::printf("%-34s %12s %10s %12s\n", "program", "runs", "ns/event", "vs empty");
  std::printf("%-34s %12lu %10.1f %12s\n", "empty tp_btf (baseline)", e1.runs - e0.runs, en, "1.00x");
  std::printf("%-34s %12lu %10.1f %11.2fx\n", ("vnet drops (" + attach_type + ")").c_str(), d1.runs - d0.runs, dn,
              en > 0 ? dn / en : 0);
  if (raw_fd >= 0) {
    std::printf("%-34s %12lu %10.1f %11.2fx\n", "vnet drops (raw_tp fallback)", r1.runs - r0.runs, rn, en > 0 ? rn / en : 0);
  }
  raw.reset();
  if (bpftrace_fd >= 0) {
    std::printf("%-34s %12lu %10.1f %11.2fx\n", "bpftrace @[reason,location]=count()", b1.runs - b0.runs, bn,
                en > 0 ? bn / en : 0);
  } else {
    std::printf("%-34s (bpftrace not found or did not attach)\n", "bpftrace");
  }
  empty_bpf__destroy(empty);

  // Scrape cost with the map empty (baseline) and at capacity.
  collectors::ExporterCollector exporter([&] {
    std::vector<std::unique_ptr<collectors::Collector>> v;
    v.push_back(std::move(drops));
    return v;
  }());
  size_t bytes = 0;
  ScrapeMs(exporter, 3, &bytes);  // resolve the few real locations once
  long rss0 = RssKiB();
  double base_ms = ScrapeMs(exporter, 20, &bytes);
  size_t base_bytes = bytes;

  // Fill: lo of this namespace, every kind of drop (bench/maps.h).
  int map = bench::FindMap("drops");
  struct stat st;
  stat("/proc/self/ns/net", &st);
  const uint32_t inserted = bench::FillDropsMap(map, static_cast<uint32_t>(st.st_ino));
  auto t0 = std::chrono::steady_clock::now();
  ScrapeMs(exporter, 1, &bytes);
  double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  double full_ms = ScrapeMs(exporter, 20, &bytes);
  long rss1 = RssKiB();

  std::printf("\n== scrape (the maps read and the text written as the exporter serves it, median of 20), map capacity %u\n", collectors::DropsCollector::Settings{}.max_entries);
  std::printf("%-28s %10s %12s %10s\n", "map", "ms", "bytes", "vs empty");
  std::printf("%-28s %10.2f %12zu %10s\n", "near empty (baseline)", base_ms, base_bytes, "1.00x");
  std::printf("%-28s %10.2f %12zu %9.1fx\n", ("full (" + std::to_string(inserted) + " keys)").c_str(), full_ms, bytes,
              full_ms / base_ms);
  std::printf("%-28s %10.2f\n", "full, first scrape", first_ms);
  std::printf("\n== exporter RSS: %ld KiB with the map near empty, %ld KiB full (+%ld KiB)\n", rss0, rss1, rss1 - rss0);

  close(map);
  std::system(("ip netns del " + ns).c_str());
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << old_stats;
  return 0;
}
