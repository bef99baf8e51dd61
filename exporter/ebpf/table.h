// Access to BPF maps behind small interfaces, so collectors can be tested with fixed contents.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
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
  // Sets `key` to `value` (of a map that is not per-CPU), adding it: false when the map is full.
  virtual bool Put(const Key& key, const Value& value) = 0;
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

  // Entries as they are: memory in proportion to the entries, not the capacity, and per-CPU
  // copies summed chunk by chunk as they are read.
  std::vector<std::pair<Key, Value>> Read() const override {
    std::vector<std::pair<Key, Value>> out;
    out.reserve(last_read_);  // values are big (a tap's three histograms: 672 bytes): no regrowth
    if (!ReadBatch(out)) ReadOneByOne(out);
    last_read_ = out.size();
    return out;
  }

  void Erase(const std::vector<Key>& keys) override {
    for (const Key& k : keys) bpf_map_delete_elem(fd_, &k);
  }

  bool Put(const Key& key, const Value& value) override {
    return bpf_map_update_elem(fd_, &key, &value, BPF_ANY) == 0;
  }

  uint32_t Capacity() const override { return capacity_; }

 private:
  static constexpr std::size_t kWords = sizeof(Value) / 8;

  // Batch lookup (5.6+): one syscall per chunk of buckets instead of two per entry. False when
  // the kernel does not support it for this map.
  bool ReadBatch(std::vector<std::pair<Key, Value>>& out) const {
    uint32_t chunk = std::min<uint32_t>(capacity_, 1024);
    std::vector<Key> keys(chunk);
    std::vector<uint64_t> values(static_cast<std::size_t>(chunk) * ncpu_ * kWords);
    uint64_t token[(sizeof(Key) + 7) / 8 + 1] = {};  // hash maps use a u32 bucket cursor
    bool first = true;
    while (out.size() < capacity_) {
      uint32_t count = chunk;
      int err = bpf_map_lookup_batch(fd_, first ? nullptr : token, token, keys.data(), values.data(), &count, nullptr);
      if (err == -ENOSPC && count == 0 && chunk < capacity_) {  // one bucket holds more than a chunk
        chunk = std::min<uint32_t>(capacity_, chunk * 2);
        keys.resize(chunk);
        values.resize(static_cast<std::size_t>(chunk) * ncpu_ * kWords);
        continue;
      }
      if (err && err != -ENOENT) {
        if (first && (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP)) return false;
        throw std::runtime_error("bpf_map_lookup_batch: " + std::string(strerror(-err)));
      }
      for (uint32_t i = 0; i < count; i++) {
        out.emplace_back(keys[i], SumPerCpu<Value>(&values[static_cast<std::size_t>(i) * ncpu_ * kWords], ncpu_));
      }
      first = false;
      if (err == -ENOENT) break;
    }
    return true;
  }

  void ReadOneByOne(std::vector<std::pair<Key, Value>>& out) const {
    std::vector<uint64_t> value(static_cast<std::size_t>(ncpu_) * kWords);
    Key cur, next;
    const Key* prev = nullptr;
    while (out.size() < capacity_ && bpf_map_get_next_key(fd_, prev, &next) == 0) {
      if (bpf_map_lookup_elem(fd_, &next, value.data()) == 0) out.emplace_back(next, SumPerCpu<Value>(value.data(), ncpu_));
      cur = next;
      prev = &cur;
    }
  }

  int fd_;
  uint32_t capacity_;
  int ncpu_;
  mutable std::size_t last_read_ = 0;  // entries at the last read
};

// A set of keys the programs look up (a hash whose values are not read).
template <class Key>
class KeySet {
 public:
  virtual ~KeySet() = default;
  virtual bool Insert(const Key& key) = 0;  // false when the map is full
  virtual void Erase(const Key& key) = 0;
};

template <class Key>
class HashKeySet : public KeySet<Key> {
 public:
  explicit HashKeySet(const struct bpf_map* map) : fd_(bpf_map__fd(map)) {
    if (bpf_map__key_size(map) != sizeof(Key)) {
      throw std::runtime_error(std::string("map ") + bpf_map__name(map) + ": key of " +
                               std::to_string(bpf_map__key_size(map)) + " bytes, the exporter expects " +
                               std::to_string(sizeof(Key)));
    }
  }
  bool Insert(const Key& key) override {
    const uint8_t one = 1;
    return bpf_map_update_elem(fd_, &key, &one, BPF_ANY) == 0;
  }
  void Erase(const Key& key) override { bpf_map_delete_elem(fd_, &key); }

 private:
  int fd_;
};

// Slot `idx` of a per-CPU array of u64, summed over CPUs.
inline uint64_t ReadPerCpuCounter(const struct bpf_map* map, uint32_t idx) {
  int ncpu = PossibleCpus();
  std::vector<uint64_t> v(ncpu);
  if (bpf_map_lookup_elem(bpf_map__fd(map), &idx, v.data())) return 0;
  return SumPerCpu<uint64_t>(v.data(), ncpu);
}

}  // namespace vnet::ebpf
