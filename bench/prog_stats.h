// What kernel.bpf_stats_enabled counts for a loaded program, shared by the benchmarks.
#pragma once

#include <bpf/bpf.h>

#include <cstdint>

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

}  // namespace vnet::bench
