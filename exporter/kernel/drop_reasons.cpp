#include "kernel/drop_reasons.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <filesystem>
#include <memory>
#include <stdexcept>

namespace vnet::kernel {
namespace {

using BtfPtr = std::unique_ptr<struct btf, decltype(&btf__free)>;

// Subsystem drop reasons are (subsystem id << 16 | n), subsystem 0 being the core enum
// (SKB_DROP_REASON_SUBSYS_SHIFT, include/net/dropreason.h, 6.5+).
constexpr uint64_t kSubsysShift = 16;

BtfPtr Parse(const std::string& path, struct btf* base) {
  struct btf* b = base ? btf__parse_split(path.c_str(), base) : btf__parse(path.c_str(), nullptr);
  if (!b) return BtfPtr(nullptr, btf__free);
  return BtfPtr(b, btf__free);
}

std::string StripPrefix(std::string name) {
  for (const char* prefix : {"SKB_DROP_REASON_", "SKB_"}) {
    std::string p(prefix);
    if (name.compare(0, p.size(), p) == 0) return name.substr(p.size());
  }
  return name;
}

// Calls fn(name, value) for each value of every enum (or enum64) type named `enum_name`,
// or, when `suffix` is set, of every enum whose name ends in it. Only types new in `btf`
// (not those of its base) are visited.
template <class Fn>
void ForEachEnumValue(const struct btf* btf, const std::string& name, bool suffix, Fn fn) {
  const struct btf* base = btf__base_btf(btf);
  uint32_t first = base ? btf__type_cnt(base) : 1;
  for (uint32_t id = first; id < btf__type_cnt(btf); id++) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    if (!btf_is_enum(t) && !btf_is_enum64(t)) continue;
    std::string tname = btf__name_by_offset(btf, t->name_off);
    bool match = suffix ? tname.size() >= name.size() &&
                              tname.compare(tname.size() - name.size(), name.size(), name) == 0
                        : tname == name;
    if (!match) continue;
    for (uint16_t i = 0; i < btf_vlen(t); i++) {
      if (btf_is_enum(t)) {
        const struct btf_enum* e = btf_enum(t) + i;
        fn(btf__name_by_offset(btf, e->name_off), static_cast<uint64_t>(static_cast<uint32_t>(e->val)));
      } else {
        const struct btf_enum64* e = btf_enum64(t) + i;
        fn(btf__name_by_offset(btf, e->name_off), btf_enum64_value(e));
      }
    }
  }
}

std::set<std::string> ListModules(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename();
    if (name != "vmlinux") names.insert(name);
  }
  return names;
}

}  // namespace

DropReasons::DropReasons(std::string vmlinux_btf, std::string module_dir)
    : vmlinux_btf_(std::move(vmlinux_btf)), module_dir_(std::move(module_dir)) {
  BtfPtr btf = Parse(vmlinux_btf_, nullptr);
  if (!btf) throw std::runtime_error(vmlinux_btf_ + ": cannot read kernel BTF");

  // The tracepoint's BTF prototype is (void *ctx, skb, location[, reason[, rx_sk]]).
  int id = btf__find_by_name_kind(btf.get(), "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
  if (id > 0) {
    const struct btf_type* t = btf__type_by_id(btf.get(), btf__resolve_type(btf.get(), id));
    if (t && btf_is_ptr(t)) t = btf__type_by_id(btf.get(), t->type);
    has_reason_ = t && btf_is_func_proto(t) && btf_vlen(t) >= 4;
  }

  ForEachEnumValue(btf.get(), "skb_drop_reason", false,
                   [&](const char* name, uint64_t v) { core_[static_cast<uint32_t>(v)] = StripPrefix(name); });
  LoadModules();
}

void DropReasons::LoadModules() {
  modules_.clear();
  module_names_ = ListModules(module_dir_);
  if (module_names_.empty()) return;
  BtfPtr base = Parse(vmlinux_btf_, nullptr);
  if (!base) return;
  for (const auto& mod : module_names_) {
    BtfPtr btf = Parse(module_dir_ + "/" + mod, base.get());
    if (!btf) continue;
    // Module enums also hold small private values (mac80211's RX_CONTINUE) that must not
    // shadow core reasons, hence the bound. (Not the core enum's highest value: since 6.5 that
    // is SKB_DROP_REASON_SUBSYS_MASK, above every subsystem reason.)
    ForEachEnumValue(btf.get(), "_drop_reason", true, [&](const char* name, uint64_t v) {
      if (v >> kSubsysShift && v <= UINT32_MAX && name[0] != '_') modules_[static_cast<uint32_t>(v)] = name;
    });
  }
}

std::string DropReasons::Name(uint32_t value) {
  if (!has_reason_) return "NOT_SPECIFIED";
  if (auto it = core_.find(value); it != core_.end()) return it->second;
  if (auto it = modules_.find(value); it != modules_.end()) return it->second;

  if (ListModules(module_dir_) != module_names_) {
    LoadModules();
    if (auto it = modules_.find(value); it != modules_.end()) return it->second;
  }
  return "UNKNOWN_" + std::to_string(value);
}

}  // namespace vnet::kernel
