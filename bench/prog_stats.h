// What kernel.bpf_stats_enabled counts for a loaded program, and programs attached for a while,
// shared by the benchmarks.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

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

// `programs` attached while this lives (the empty baselines beside a collector's programs).
class Attached {
 public:
  explicit Attached(std::vector<bpf_program*> programs) : programs_(std::move(programs)) {
    for (auto* p : programs_) links_.push_back(bpf_program__attach(p));
  }
  ~Attached() {
    for (auto* l : links_) bpf_link__destroy(l);
  }
  Attached(const Attached&) = delete;
  Attached& operator=(const Attached&) = delete;

  bool attached() const {
    return std::all_of(links_.begin(), links_.end(), [](bpf_link* l) { return l != nullptr; });
  }
  const std::vector<bpf_program*>& Programs() const { return programs_; }

 private:
  std::vector<bpf_program*> programs_;
  std::vector<bpf_link*> links_;
};

}  // namespace vnet::bench
