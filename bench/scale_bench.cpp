// Benchmark of a scrape on a big hypervisor. In a network and mount namespace of its own (its
// /sys shows only its devices) it makes 1,000 taps, runs the exporter (the binary given, its
// drops, tap and interface collectors; its default configuration, then with per-queue tap
// histograms) there, fills the kernel maps directly and prints, per scenario, next to the empty
// maps: samples, bytes, scrape time over HTTP as Prometheus asks (median of 10; plain text,
// gzip, and as native histograms: protobuf with gzip), the exporter's CPU per plain scrape, its
// RSS after / peak and each collector's own time.
//
//   scale_bench EXPORTER
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <sys/mount.h>
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
#include <sstream>
#include <string>
#include <vector>

#include <thread>
#include <tuple>

#include <google/protobuf/io/coded_stream.h>

#include "../tests/support/http.h"
#include "maps.h"
#include "metrics/exposition.pb.h"
#include "net/devices.h"

extern "C" {
#include "bpf/drops.h"
#include "bpf/hist.h"
#include "bpf/tap.h"
}

namespace {

using namespace vnet;
using Clock = std::chrono::steady_clock;

constexpr int kTaps = 1000, kQueues = 4, kScrapes = 10;

void ClearMap(int fd, size_t key_size) {
  std::vector<char> next(key_size);
  while (bpf_map_get_next_key(fd, nullptr, next.data()) == 0) bpf_map_delete_elem(fd, next.data());
}

long StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return 0;
}

// User and system time of `pid`.
double CpuMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> f; i++) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  return (utime + stime) * 1e3 / sysconf(_SC_CLK_TCK);
}

// What a Prometheus with native histograms asks for.
constexpr const char* kNative =
    "Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "text/plain;version=0.0.4;q=0.5\r\n";

// One scrape over loopback as Prometheus sends it (HTTP/1.1, gzip when asked; the protobuf
// exposition when `native`): wall time, bytes of the answer.
std::pair<double, size_t> Scrape(uint16_t port, bool gzip, bool native = false) {
  const auto start = Clock::now();
  int s = testing::ConnectLoopback(port);
  const std::string req = std::string("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
                          (gzip ? "Accept-Encoding: gzip\r\n" : "") + (native ? kNative : "") + "\r\n";
  (void)!write(s, req.data(), req.size());
  size_t bytes = 0;
  char buf[1 << 16];
  for (ssize_t n; (n = read(s, buf, sizeof(buf))) > 0;) bytes += n;
  close(s);
  return {std::chrono::duration<double, std::milli>(Clock::now() - start).count(), bytes};
}

// Series in a protobuf exposition (HTTP/1.0: the body unchunked); a native histogram is one.
std::pair<size_t, size_t> NativeSeries(uint16_t port) {
  int s = testing::ConnectLoopback(port);
  const std::string req = std::string("GET /metrics HTTP/1.0\r\n") + kNative + "\r\n";
  (void)!write(s, req.data(), req.size());
  std::string raw;
  char buf[1 << 16];
  for (ssize_t n; (n = read(s, buf, sizeof(buf))) > 0;) raw.append(buf, n);
  close(s);
  const std::string body = raw.substr(raw.find("\r\n\r\n") + 4);
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(body.data()), static_cast<int>(body.size()));
  size_t series = 0;
  for (uint32_t len; in.ReadVarint32(&len);) {
    const auto limit = in.PushLimit(static_cast<int>(len));
    exposition::MetricFamily f;
    if (!f.ParseFromCodedStream(&in)) break;
    in.PopLimit(limit);
    series += f.metric_size();
  }
  return {series, body.size()};
}

struct Figures {
  size_t samples = 0, bytes = 0;
  size_t native_series = 0, native_bytes = 0;
  double native_ms = 0;
  double ms = 0, gzip_ms = 0, cpu_ms = 0;
  long rss_kib = 0, peak_kib = 0;
  std::string collectors;  // each collector's own time in the last scrape
};

// "drops 1.2, tap 80.0, ..." (ms) from the exporter's vnet_exporter_collector_scrape_duration_seconds.
std::string CollectorTimes(const std::string& text) {
  const std::string prefix = "vnet_exporter_collector_scrape_duration_seconds{collector=\"";
  std::string out;
  for (size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    const size_t name = at + prefix.size(), quote = text.find('"', name), value = text.find("} ", quote) + 2;
    char ms[32];
    std::snprintf(ms, sizeof(ms), " %.1f", std::stod(text.substr(value, text.find('\n', value) - value)) * 1e3);
    out += (out.empty() ? "" : ", ") + text.substr(name, quote - name) + ms;
  }
  return out;
}

Figures Measure(pid_t exporter, uint16_t port) {
  Figures f;
  std::ofstream("/proc/" + std::to_string(exporter) + "/clear_refs") << "5";  // peak RSS from here
  // HTTP/1.0: the body unchunked, its samples counted by line.
  const std::string text = testing::HttpGet(port, "/metrics").body;
  for (size_t at = 0; at < text.size(); at = text.find('\n', at) + 1) f.samples += text[at] != '#';
  std::vector<double> plain, packed;
  const double cpu0 = CpuMs(exporter);
  for (int i = 0; i < kScrapes; i++) {
    auto [ms, bytes] = Scrape(port, false);
    plain.push_back(ms);
    f.bytes = bytes;
  }
  f.cpu_ms = (CpuMs(exporter) - cpu0) / kScrapes;
  for (int i = 0; i < kScrapes; i++) {
    packed.push_back(Scrape(port, true).first);
  }
  std::vector<double> native;
  for (int i = 0; i < kScrapes; i++) native.push_back(Scrape(port, true, true).first);
  std::tie(f.native_series, f.native_bytes) = NativeSeries(port);
  std::sort(plain.begin(), plain.end());
  std::sort(packed.begin(), packed.end());
  std::sort(native.begin(), native.end());
  f.ms = plain[kScrapes / 2];
  f.gzip_ms = packed[kScrapes / 2];
  f.native_ms = native[kScrapes / 2];
  f.collectors = CollectorTimes(testing::HttpGet(port, "/metrics").body);
  f.rss_kib = StatusKiB(exporter, "VmRSS");
  f.peak_kib = StatusKiB(exporter, "VmHWM");
  return f;
}

void Print(const std::string& name, const Figures& f, const Figures& base) {
  std::printf("%-34s %8zu %10.1f %9.2f %9.2f %7.1fx %9.1f %8.1f %8.1f\n", name.c_str(), f.samples, f.bytes / 1e6, f.ms,
              f.gzip_ms, base.ms > 0 ? f.ms / base.ms : 0, f.cpu_ms, f.rss_kib / 1024.0, f.peak_kib / 1024.0);
  std::printf("%-34s native histograms (protobuf, gzip): %zu series, %.1f MB, %.2f ms\n", "", f.native_series,
              f.native_bytes / 1e6, f.native_ms);
  std::printf("%-34s collectors, ms: %s\n", "", f.collectors.c_str());
}

// Histograms with a few slots set, on every CPU.
std::vector<tap_hists> Values() {
  std::vector<tap_hists> v(libbpf_num_possible_cpus());
  for (auto& hists : v) {
    for (auto& h : hists.dir) {
      for (int i = 2; i < 12; i++) h.slots[i] = i * 3;
      h.sum_ns = 123456789;
    }
  }
  return v;
}

constexpr uint16_t kPort = 19748;  // loopback of the bench's own namespace: nothing else listens there

// The exporter run with the drops, tap and interface collectors (`tap` lines added to its
// configuration), serving on kPort; its maps found by name.
struct Exporter {
  pid_t pid = -1;
  int taps = -1, drops = -1;

  Exporter(const char* path, const std::string& tap) {
    const std::string config = "/tmp/scale_bench.yaml";
    std::ofstream(config) << "collectors:\n" << tap
                          << "  interface: {libvirt_dir: /nonexistent, ovsdb_socket: /nonexistent.sock}\n"
                             "  upcall: {enabled: false}\n  ovs: {enabled: false}\n";
    pid = fork();
    if (pid == 0) {
      const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(kPort);
      execl(path, path, ("--config.file=" + config).c_str(), listen.c_str(), "--log.level=warn", nullptr);
      _exit(127);
    }
    // Serving once its landing page answers.
    bool up = false;
    for (int i = 0; i < 600 && !up; i++) {
      try {
        up = testing::HttpGet(kPort, "/").status == 200;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    unlink(config.c_str());
    taps = bench::FindMap("tap_hists");
    drops = bench::FindMap("drops");
    if (!up || taps < 0 || drops < 0) {
      std::cerr << "scale_bench: the exporter did not start, or its tap or drops collector did not attach\n";
      Stop();
      std::exit(1);
    }
  }
  ~Exporter() { Stop(); }

  void Stop() {
    if (pid < 0) return;
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    pid = -1;
    for (int* fd : {&taps, &drops}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: scale_bench EXPORTER\n";
    return 2;
  }
  if (geteuid() != 0) {
    std::cerr << "scale_bench: needs root\n";
    return 1;
  }
  // Its own namespaces: the taps are the exporter's own devices, and its sysfs shows only them.
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) {
    perror("scale_bench: namespaces");
    return 1;
  }
  {
    std::string batch = "link set lo up\n";
    for (int i = 0; i < kTaps; i++) batch += "tuntap add dev vnet" + std::to_string(i) + " mode tap\n";
    std::ofstream("/tmp/scale_bench.ip") << batch;
    if (std::system("ip -batch /tmp/scale_bench.ip") != 0) return 1;
    unlink("/tmp/scale_bench.ip");
  }
  Exporter exporter(argv[1], "");  // the default configuration: a histogram per tap
  struct stat st;
  stat("/proc/self/ns/net", &st);
  const uint32_t netns = static_cast<uint32_t>(st.st_ino);

  std::printf("== scrape of the tap, drops and interface collectors, %d taps present; over HTTP on loopback, median of %d\n",
              kTaps, kScrapes);
  std::printf("%-34s %8s %10s %9s %9s %8s %9s %8s %8s\n", "maps", "samples", "MB", "ms", "gzip ms", "vs empty",
              "CPU ms", "RSS MiB", "peak");
  const Figures base = Measure(exporter.pid, kPort);
  Print("empty (baseline)", base, base);

  std::vector<uint32_t> ifindexes(kTaps);
  net::SystemLinks links;
  const auto present = links.Links(netns);
  for (const auto& [ifindex, name] : present.value()) {
    if (name.rfind("vnet", 0) == 0) ifindexes.at(std::stoi(name.substr(4))) = ifindex;
  }
  const auto values = Values();
  auto fill_taps = [&](int map, int n, uint32_t queues) {
    for (int t = 0; t < n; t++) {
      for (uint32_t q = 0; q < queues; q++) {
        tap_hist_key k{ifindexes[t], netns, q};
        bpf_map_update_elem(map, &k, values.data(), BPF_ANY);
      }
    }
  };
  fill_taps(exporter.taps, kTaps, 1);
  Print("1000 taps x 3 directions (default)", Measure(exporter.pid, kPort), base);
  ClearMap(exporter.taps, sizeof(tap_hist_key));

  bench::FillDropsMap(exporter.drops, netns);
  Print("drops map full (16384 keys)", Measure(exporter.pid, kPort), base);
  exporter.Stop();

  Exporter per_queue(argv[1], "  tap: {per_queue: true, max_series: 16384}\n");
  fill_taps(per_queue.taps, 400, kQueues);
  Print("400 taps x 4 queues x 3 directions", Measure(per_queue.pid, kPort), base);
  fill_taps(per_queue.taps, kTaps, kQueues);
  Print("1000 taps x 4 queues x 3 directions", Measure(per_queue.pid, kPort), base);
  return 0;
}
