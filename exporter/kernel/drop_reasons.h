// Names of the kernel's drop reasons, read from BTF: the numbers differ between kernels.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace vnet::kernel {

class DropReasons {
 public:
  // `vmlinux_btf`: the kernel's BTF file. `module_dir`: the directory of module BTF files
  // (/sys/kernel/btf), whose enums named *_drop_reason carry the subsystem reasons (OVS, mac80211).
  // Throws std::runtime_error when the kernel BTF cannot be read.
  DropReasons(std::string vmlinux_btf, std::string module_dir);

  // Whether skb:kfree_skb passes a reason (5.17+), from the tracepoint's BTF prototype.
  bool tracepoint_has_reason() const { return has_reason_; }

  // The reason's name without the SKB_DROP_REASON_ prefix ("NO_SOCKET"). A value this kernel
  // does not name yet re-reads module BTF once the set of modules changed (a module loaded
  // after start-up), then falls back to "UNKNOWN_<value>".
  std::string Name(uint32_t value);

 private:
  void LoadModules();

  std::string vmlinux_btf_;
  std::string module_dir_;
  bool has_reason_ = false;
  std::map<uint32_t, std::string> core_;
  std::map<uint32_t, std::string> modules_;
  std::set<std::string> module_names_;
};

}  // namespace vnet::kernel
