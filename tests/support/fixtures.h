// Fixed inputs for unit tests: BTF blobs built with libbpf, kallsyms files, device tables;
// and the keys of a kernel map, for root tests.
#pragma once

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ebpf/table.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "bpf/devices.h"
}

namespace vnet::testing {

// A directory under /tmp removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vnet_test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

using EnumValues = std::vector<std::pair<std::string, int64_t>>;

inline void WriteRaw(const struct btf* btf, const std::string& path) {
  uint32_t size = 0;
  const void* data = btf__raw_data(btf, &size);
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), size);
}

// A kernel BTF with `enum skb_drop_reason` and the kfree_skb tracepoint prototype
// (void *ctx, skb, location[, reason]).
inline void WriteKernelBtf(const std::string& path, const EnumValues& reasons, bool tracepoint_has_reason) {
  struct btf* btf = btf__new_empty();
  int e = btf__add_enum(btf, "skb_drop_reason", 4);
  for (const auto& [name, v] : reasons) btf__add_enum_value(btf, name.c_str(), v);
  int void_ptr = btf__add_ptr(btf, 0);
  int proto = btf__add_func_proto(btf, 0);
  btf__add_func_param(btf, "", void_ptr);
  btf__add_func_param(btf, "skb", void_ptr);
  btf__add_func_param(btf, "location", void_ptr);
  if (tracepoint_has_reason) btf__add_func_param(btf, "reason", e);
  btf__add_typedef(btf, "btf_trace_kfree_skb", btf__add_ptr(btf, proto));
  WriteRaw(btf, path);
  btf__free(btf);
}

// A module's split BTF on top of `kernel` holding one enum.
inline void WriteModuleBtf(const std::string& path, const std::string& kernel, const std::string& enum_name,
                           const EnumValues& values) {
  struct btf* base = btf__parse(kernel.c_str(), nullptr);
  struct btf* btf = btf__new_empty_split(base);
  btf__add_enum(btf, enum_name.c_str(), 4);
  for (const auto& [name, v] : values) btf__add_enum_value(btf, name.c_str(), v);
  WriteRaw(btf, path);
  btf__free(btf);
  btf__free(base);
}

// Device tables by namespace inode; a namespace missing from `tables` is gone.
class FakeLinks : public net::LinkSource {
 public:
  static constexpr uint32_t kOwn = 4026531840;

  std::map<uint32_t, std::map<uint32_t, std::string>> tables{{kOwn, {}}};
  std::map<uint32_t, std::string> names;

  std::optional<std::map<uint32_t, std::string>> Links(uint32_t netns) override {
    auto t = tables.find(netns);
    if (t == tables.end()) return std::nullopt;
    return t->second;
  }
  std::string NetnsLabel(uint32_t netns) override {
    if (netns == kOwn) return "";
    auto n = names.find(netns);
    return n == names.end() ? std::to_string(netns) : n->second;
  }
  uint32_t OwnNetns() const override { return kOwn; }
};

// The system's links, with `own` as the exporter's namespace: a test namespace plays the host's.
class OwnNetnsAs : public net::LinkSource {
 public:
  OwnNetnsAs(net::LinkSource& links, uint32_t own) : links_(links), own_(own) {}
  std::optional<std::map<uint32_t, std::string>> Links(uint32_t netns) override { return links_.Links(netns); }
  std::string NetnsLabel(uint32_t netns) override { return links_.NetnsLabel(netns); }
  uint32_t OwnNetns() const override { return own_; }

 private:
  net::LinkSource& links_;
  uint32_t own_;
};

// Fixed map contents in place of a BPF map.
template <class Key, class Value>
class FakeTable : public ebpf::CounterTable<Key, Value> {
 public:
  std::vector<std::pair<Key, Value>> rows;
  uint32_t capacity = 1024;

  std::vector<std::pair<Key, Value>> Read() const override { return rows; }
  void Erase(const std::vector<Key>& keys) override {
    for (const auto& k : keys) {
      std::erase_if(rows, [&](const auto& r) { return std::memcmp(&r.first, &k, sizeof(k)) == 0; });
    }
  }
  bool Put(const Key& key, const Value& value) override {
    Erase({key});
    if (rows.size() >= capacity) return false;
    rows.emplace_back(key, value);
    return true;
  }
  uint32_t Capacity() const override { return capacity; }
};

// A set of devices the programs would skip, in place of a BPF map.
class FakeDeviceSet : public ebpf::KeySet<device_id> {
 public:
  std::set<std::pair<uint32_t, uint32_t>> ids;  // netns, ifindex
  size_t capacity = 1024;

  bool Insert(const device_id& id) override {
    if (ids.size() >= capacity && !ids.count({id.netns, id.ifindex})) return false;
    ids.insert({id.netns, id.ifindex});
    return true;
  }
  void Erase(const device_id& id) override { ids.erase({id.netns, id.ifindex}); }
};

// The keys of the newest kernel map called `name`: the collector's under test (a map of an
// earlier load lives on until its last reference goes).
template <class Key>
std::vector<Key> MapKeys(const std::string& name) {
  uint32_t id = 0, newest = 0;
  while (bpf_map_get_next_id(id, &id) == 0) {
    int fd = bpf_map_get_fd_by_id(id);
    bpf_map_info info = {};
    uint32_t len = sizeof(info);
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && name == info.name) newest = id;
    if (fd >= 0) close(fd);
  }
  std::vector<Key> keys;
  int fd = bpf_map_get_fd_by_id(newest);
  Key cur, next;
  for (const Key* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &cur) {
    keys.push_back(next);
    cur = next;
  }
  if (fd >= 0) close(fd);
  return keys;
}

}  // namespace vnet::testing
