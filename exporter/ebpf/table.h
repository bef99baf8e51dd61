// Access to BPF maps behind small interfaces, so collectors can be tested with fixed contents.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vnet::ebpf {

// A hash of counters: Value is a struct of __u64 fields (per-CPU maps: summed over CPUs on read).
template <class Key, class Value>
class CounterTable {
 public:
  virtual ~CounterTable() = default;
  virtual std::vector<std::pair<Key, Value>> Read() const = 0;
  virtual void Erase(const std::vector<Key>& keys) = 0;
  virtual uint32_t Capacity() const = 0;
};

// The number of per-CPU copies of a per-CPU map's value.
inline int PossibleCpus() {
  int n = libbpf_num_possible_cpus();
  if (n <= 0) throw std::runtime_error("cannot read the number of possible CPUs: " + std::string(strerror(-n)));
  return n;
}

// Sums the u64 words of `ncpu` consecutive per-CPU copies (each padded to 8 bytes by the kernel).
template <class Value>
Value SumPerCpu(const uint64_t* words, int ncpu) {
  static_assert(sizeof(Value) % 8 == 0, "per-CPU counter values must be made of u64 fields");
  constexpr std::size_t n = sizeof(Value) / 8;
  uint64_t sum[n] = {};
  for (int c = 0; c < ncpu; c++) {
    for (std::size_t i = 0; i < n; i++) sum[i] += words[c * n + i];
  }
  Value v;
  std::memcpy(&v, sum, sizeof(v));
  return v;
}

// into += v, field by field (Value: a struct of u64 counters).
template <class Value>
void Accumulate(Value& into, const Value& v) {
  static_assert(sizeof(Value) % 8 == 0, "counter values must be made of u64 fields");
  uint64_t a[sizeof(Value) / 8], b[sizeof(Value) / 8];
  std::memcpy(a, &into, sizeof(a));
  std::memcpy(b, &v, sizeof(b));
  for (std::size_t i = 0; i < sizeof(a) / 8; i++) a[i] += b[i];
  std::memcpy(&into, a, sizeof(a));
}

template <class Key, class Value>
class HashTable : public CounterTable<Key, Value> {
 public:
  // Throws when the map's key or value is not the size of Key and Value: the shared header
  // and the loaded object disagree.
  explicit HashTable(const struct bpf_map* map)
      : fd_(bpf_map__fd(map)),
        capacity_(bpf_map__max_entries(map)),
        ncpu_(bpf_map__type(map) == BPF_MAP_TYPE_PERCPU_HASH ? PossibleCpus() : 1) {
    if (bpf_map__key_size(map) != sizeof(Key) || bpf_map__value_size(map) != sizeof(Value)) {
      throw std::runtime_error(std::string("map ") + bpf_map__name(map) + ": key/value of " +
                               std::to_string(bpf_map__key_size(map)) + "/" + std::to_string(bpf_map__value_size(map)) +
                               " bytes, the exporter expects " + std::to_string(sizeof(Key)) + "/" +
                               std::to_string(sizeof(Value)));
    }
  }

  std::vector<std::pair<Key, Value>> Read() const override {
    constexpr std::size_t words = sizeof(Value) / 8;
    std::vector<Key> keys(capacity_);
    std::vector<uint64_t> values(static_cast<std::size_t>(capacity_) * ncpu_ * words);
    uint32_t total = 0;
    if (!ReadBatch(keys, values, total)) total = ReadOneByOne(keys, values);

    std::vector<std::pair<Key, Value>> out;
    out.reserve(total);
    for (uint32_t i = 0; i < total; i++) {
      out.emplace_back(keys[i], SumPerCpu<Value>(&values[static_cast<std::size_t>(i) * ncpu_ * words], ncpu_));
    }
    return out;
  }

  void Erase(const std::vector<Key>& keys) override {
    for (const Key& k : keys) bpf_map_delete_elem(fd_, &k);
  }

  uint32_t Capacity() const override { return capacity_; }

 private:
  // Batch lookup (5.6+): one syscall per few buckets instead of two per entry. False when the
  // kernel does not support it for this map.
  bool ReadBatch(std::vector<Key>& keys, std::vector<uint64_t>& values, uint32_t& total) const {
    constexpr std::size_t words = sizeof(Value) / 8;
    uint64_t token[(sizeof(Key) + 7) / 8 + 1] = {};  // hash maps use a u32 bucket cursor
    bool first = true;
    total = 0;
    while (total < capacity_) {
      uint32_t count = capacity_ - total;
      int err = bpf_map_lookup_batch(fd_, first ? nullptr : token, token, &keys[total],
                                     &values[static_cast<std::size_t>(total) * ncpu_ * words], &count, nullptr);
      if (err && err != -ENOENT) {
        if (first && (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP)) return false;
        throw std::runtime_error("bpf_map_lookup_batch: " + std::string(strerror(-err)));
      }
      total += count;
      first = false;
      if (err == -ENOENT) break;
    }
    return true;
  }

  uint32_t ReadOneByOne(std::vector<Key>& keys, std::vector<uint64_t>& values) const {
    constexpr std::size_t words = sizeof(Value) / 8;
    uint32_t total = 0;
    Key cur, next;
    const Key* prev = nullptr;
    while (total < capacity_ && bpf_map_get_next_key(fd_, prev, &next) == 0) {
      if (bpf_map_lookup_elem(fd_, &next, &values[static_cast<std::size_t>(total) * ncpu_ * words]) == 0) {
        keys[total++] = next;
      }
      cur = next;
      prev = &cur;
    }
    return total;
  }

  int fd_;
  uint32_t capacity_;
  int ncpu_;
};

// Slot `idx` of a per-CPU array of u64, summed over CPUs.
inline uint64_t ReadPerCpuCounter(const struct bpf_map* map, uint32_t idx) {
  int ncpu = PossibleCpus();
  std::vector<uint64_t> v(ncpu);
  if (bpf_map_lookup_elem(bpf_map__fd(map), &idx, v.data())) return 0;
  return SumPerCpu<uint64_t>(v.data(), ncpu);
}

}  // namespace vnet::ebpf
