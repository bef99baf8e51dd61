// A map of packets being timed (key: the packet, value: a struct with the start `ts` from
// bpf_ktime_get_ns()). An entry whose end hook never came (the packet was freed where no hook
// saw it, or never answered) would hold its place for ever: entries older than the timeout are
// erased at scrape time and counted.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "ebpf/table.h"

namespace vnet::ebpf {

// The clock of bpf_ktime_get_ns().
inline uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

template <class Key, class Value>
class Inflight {
 public:
  explicit Inflight(std::chrono::nanoseconds timeout) : timeout_ns_(timeout.count()) {}

  // Erases the entries of `table` older than the timeout at `now_ns` and returns them.
  std::vector<std::pair<Key, Value>> Expire(CounterTable<Key, Value>& table, uint64_t now_ns) {
    auto entries = table.Read();
    std::vector<std::pair<Key, Value>> old;
    std::vector<Key> keys;
    for (const auto& e : entries) {
      if (now_ns > e.second.ts && now_ns - e.second.ts > timeout_ns_) {
        old.push_back(e);
        keys.push_back(e.first);
      }
    }
    table.Erase(keys);
    expired_ += old.size();
    entries_ = entries.size() - old.size();
    return old;
  }

  uint64_t entries() const { return entries_; }  // as of the last Expire()
  uint64_t expired() const { return expired_; }  // in all

 private:
  uint64_t timeout_ns_;
  uint64_t entries_ = 0;
  uint64_t expired_ = 0;
};

}  // namespace vnet::ebpf
