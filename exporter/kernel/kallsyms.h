// Kernel address -> function name, from /proc/kallsyms.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace vnet::kernel {

class Kallsyms {
 public:
  explicit Kallsyms(std::string kallsyms = "/proc/kallsyms", std::string modules = "/proc/modules");

  // Resolves the addresses not resolved yet with one pass over kallsyms. The table is not kept
  // in memory (it is ~120k symbols); only the names of addresses seen are. When the loaded
  // modules changed since the last call, all names are resolved again, since module text
  // addresses are reused by the next module loaded.
  void Resolve(const std::vector<uint64_t>& addrs);

  // The function containing `addr` ("unknown" when kallsyms hides addresses or has no
  // text symbol below it). Resolve() must have been called with `addr`.
  const std::string& Name(uint64_t addr) const;

 private:
  std::string kallsyms_;
  std::string modules_;
  std::string modules_seen_;
  std::unordered_map<uint64_t, std::string> names_;
};

}  // namespace vnet::kernel
