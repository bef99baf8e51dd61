// What kernel.bpf_stats_enabled counts for a loaded program, and programs attached for a while,
// shared by the benchmarks.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace vnet::bench {

struct ProgStats {
  uint64_t runs = 0, ns = 0;
};

inline ProgStats Stats(int fd) {
  struct bpf_prog_info info = {};
  uint32_t len = sizeof(info);
  bpf_obj_get_info_by_fd(fd, &info, &len);
  return {info.run_cnt, info.run_time_ns};
}

inline std::vector<ProgStats> Stats(const std::vector<int>& fds) {
  std::vector<ProgStats> out;
  for (int fd : fds) out.push_back(Stats(fd));
  return out;
}

// Nanoseconds per run between two readings of one program; 0 when it did not run.
inline double PerEvent(ProgStats before, ProgStats after) {
  return after.runs > before.runs
             ? static_cast<double>(after.ns - before.ns) / static_cast<double>(after.runs - before.runs)
             : 0.0;
}

// Programs (by fd) attached to their tracepoints while this lives: the empty baselines beside a
// collector's programs, and a collector's programs switched on and off between measurements
// (an attach takes microseconds; loading them again would take a second).
class Attached {
 public:
  explicit Attached(std::vector<int> fds) : fds_(std::move(fds)) {
    // tp_btf programs know their tracepoint: no name.
    for (int fd : fds_) links_.push_back(bpf_raw_tracepoint_open(nullptr, fd));
  }
  ~Attached() {
    for (int l : links_) {
      if (l >= 0) close(l);
    }
  }
  Attached(const Attached&) = delete;
  Attached& operator=(const Attached&) = delete;

  bool attached() const {
    return std::all_of(links_.begin(), links_.end(), [](int l) { return l >= 0; });
  }
  const std::vector<int>& Programs() const { return fds_; }

 private:
  std::vector<int> fds_;
  std::vector<int> links_;
};

// The fds of `programs`.
inline std::vector<int> Fds(const std::vector<bpf_program*>& programs) {
  std::vector<int> fds;
  for (auto* p : programs) fds.push_back(bpf_program__fd(p));
  return fds;
}

}  // namespace vnet::bench
