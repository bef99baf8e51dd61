// Kernel maps of a collector as the benchmarks find and fill them, shared by the benchmarks.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

extern "C" {
#include "bpf/drops.h"
}

namespace vnet::bench {

// The newest map called `name`: the one the collector made last (in this process or the
// exporter the benchmark runs).
inline int FindMap(const std::string& name) {
  uint32_t id = 0;
  int found = -1;
  while (bpf_map_get_next_id(id, &id) == 0) {
    int fd = bpf_map_get_fd_by_id(id);
    bpf_map_info info = {};
    uint32_t len = sizeof(info);
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && name == info.name) {
      if (found >= 0) close(found);
      found = fd;
    } else if (fd >= 0) {
      close(fd);
    }
  }
  return found;
}

// Fills the drops map `fd` as a host with every kind of drop would: lo (ifindex 1) of namespace
// `netns`, 128 reasons x 8 protocols x 16 kernel functions = 16384 keys. Returns the keys taken.
inline uint32_t FillDropsMap(int fd, uint32_t netns) {
  std::vector<uint64_t> text;  // addresses inside the first 16 kernel functions
  std::ifstream ks("/proc/kallsyms");
  std::string addr, type, name;
  while (text.size() < 16 && ks >> addr >> type >> name) {
    if (type == "T") text.push_back(std::stoull(addr, nullptr, 16) + 1);
    std::getline(ks, name);
  }
  std::vector<drop_value> values(libbpf_num_possible_cpus(), drop_value{1, 100});
  uint32_t inserted = 0;
  for (uint32_t r = 0; r < 128; r++) {
    for (uint32_t p = 0; p < 8; p++) {
      for (uint64_t loc : text) {
        drop_key k{loc, r, 1, netns, p};
        if (bpf_map_update_elem(fd, &k, values.data(), BPF_ANY) == 0) inserted++;
      }
    }
  }
  return inserted;
}

}  // namespace vnet::bench
