// SystemLinks: device tables of any network namespace, entered from a short-lived thread so
// the exporter's own threads never change namespace.
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "net/devices.h"
#include "net/link_dump.h"

namespace vnet::net {
namespace {

constexpr const char* kNamedNetns = "/run/netns";  // where `ip netns add` mounts namespaces

std::optional<uint32_t> Inode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint32_t>(st.st_ino);
}

// Names of the calling thread's namespace's devices, from a dump without statistics (if_nameindex()
// asks for them: several times the cost with 1,000 taps); nullopt when the kernel does not answer.
std::optional<std::map<uint32_t, std::string>> DumpNames() {
  std::map<uint32_t, std::string> out;
  try {
    for (auto& l : DumpLinks()) out[l.ifindex] = std::move(l.name);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

SystemLinks::SystemLinks() {
  auto own = Inode("/proc/self/ns/net");
  if (!own) throw std::runtime_error("/proc/self/ns/net: cannot stat own network namespace");
  own_ = *own;
}

SystemLinks::~SystemLinks() = default;

std::optional<std::map<uint32_t, std::string>> SystemLinks::OwnLinks() {
  if (changes_.Changed() || !own_links_) own_links_ = DumpNames();
  return own_links_;
}

std::optional<std::string> SystemLinks::FindPath(uint32_t netns) {
  if (auto p = paths_.find(netns); p != paths_.end()) {
    if (Inode(p->second) == netns) return p->second;
    paths_.erase(p);
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kNamedNetns, ec)) {
    if (Inode(e.path()) == netns) return paths_[netns] = e.path();
  }
  // Unnamed namespaces (containers, some VMs' helpers) are only reachable through a process.
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string path = "/proc/" + pid + "/ns/net";
    if (Inode(path) == netns) return paths_[netns] = path;
  }
  return std::nullopt;
}

std::optional<std::map<uint32_t, std::string>> SystemLinks::Links(uint32_t netns) {
  std::lock_guard lock(mu_);
  if (netns == own_) return OwnLinks();
  auto path = FindPath(netns);
  if (!path) return std::nullopt;
  int fd = open(path->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::map<uint32_t, std::string>> out;
  // setns() for CLONE_NEWNET applies to the calling thread only.
  std::thread([&] {
    if (setns(fd, CLONE_NEWNET) == 0) out = DumpNames();
  }).join();
  close(fd);
  return out;
}

std::string SystemLinks::NetnsLabel(uint32_t netns) {
  if (netns == own_) return "";
  std::lock_guard lock(mu_);
  auto path = FindPath(netns);
  std::string prefix = std::string(kNamedNetns) + "/";
  if (path && path->compare(0, prefix.size(), prefix) == 0) return path->substr(prefix.size());
  return std::to_string(netns);
}

}  // namespace vnet::net
