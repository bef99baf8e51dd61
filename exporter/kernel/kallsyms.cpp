#include "kernel/kallsyms.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>

namespace vnet::kernel {
namespace {

const std::string kUnknown = "unknown";
// KSYM_NAME_LEN of the kernels since 6.1: a longer "name" is not a kernel symbol's, and would be
// a label value without end.
constexpr size_t kMaxName = 512;

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
    // "ffffffffc0a01230 t tun_net_xmit\t[tun]"; a line of another form is skipped.
    const char* end = line.data() + line.size();
    uint64_t addr = 0;
    auto [p, ec] = std::from_chars(line.data(), end, addr, 16);
    if (ec != std::errc() || end - p < 4 || p[0] != ' ' || p[2] != ' ') continue;
    if (p[1] != 't' && p[1] != 'T' && p[1] != 'w' && p[1] != 'W') continue;  // not text
    if (addr == 0) continue;  // kptr_restrict hides addresses from this reader
    std::string_view sym(p + 3, end - (p + 3));
    sym = sym.substr(0, sym.find_first_of(" \t"));
    if (sym.empty() || sym.size() > kMaxName) continue;
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
