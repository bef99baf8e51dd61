#include "kernel/kallsyms.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace vnet::kernel {
namespace {

const std::string kUnknown = "unknown";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Kallsyms::Kallsyms(std::string kallsyms, std::string modules)
    : kallsyms_(std::move(kallsyms)), modules_(std::move(modules)) {}

void Kallsyms::Resolve(const std::vector<uint64_t>& addrs) {
  std::string modules = ReadAll(modules_);
  if (modules != modules_seen_) {
    names_.clear();
    modules_seen_ = std::move(modules);
  }

  std::vector<uint64_t> pending;
  for (uint64_t a : addrs) {
    if (!names_.count(a)) pending.push_back(a);
  }
  if (pending.empty()) return;
  std::sort(pending.begin(), pending.end());
  pending.erase(std::unique(pending.begin(), pending.end()), pending.end());

  // best[i]: the highest text symbol at or below pending[i] seen so far.
  std::vector<uint64_t> best(pending.size(), 0);
  std::vector<std::string> name(pending.size(), kUnknown);
  std::ifstream in(kallsyms_);
  std::string line;
  while (std::getline(in, line)) {
    // "ffffffffc0a01230 t tun_net_xmit\t[tun]"
    std::istringstream ls(line);
    std::string hex, type, sym;
    if (!(ls >> hex >> type >> sym)) continue;
    if (type != "t" && type != "T" && type != "w" && type != "W") continue;
    uint64_t addr = std::stoull(hex, nullptr, 16);
    if (addr == 0) continue;  // kptr_restrict hides addresses from this reader
    // Addresses at or above this symbol take it if it is closer than what they have. best[]
    // never decreases with the address, so the first one that has better stops the walk.
    for (auto i = std::lower_bound(pending.begin(), pending.end(), addr) - pending.begin();
         i < static_cast<long>(pending.size()) && best[i] < addr; i++) {
      best[i] = addr;
      name[i] = sym;
    }
  }
  for (std::size_t i = 0; i < pending.size(); i++) names_[pending[i]] = std::move(name[i]);
}

const std::string& Kallsyms::Name(uint64_t addr) const {
  auto it = names_.find(addr);
  return it == names_.end() ? kUnknown : it->second;
}

}  // namespace vnet::kernel
