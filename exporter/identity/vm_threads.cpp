#include "identity/vm_threads.h"

#include <dirent.h>

#include <charconv>
#include <memory>

#include "io/file.h"

namespace vnet::identity {
namespace {

constexpr std::size_t kCommBytes = 64;         // TASK_COMM_LEN is 16
constexpr std::size_t kCmdlineBytes = 1 << 16;  // qemu's command lines are a few kilobytes
constexpr std::size_t kStatBytes = 4096;
constexpr std::size_t kMaxNameBytes = 256;  // of a VM named by its own command line

struct CloseDir {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, CloseDir>;

std::optional<uint32_t> ParseId(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v == 0) return std::nullopt;
  return v;
}

// Numeric entries of a /proc directory (processes or a process's tasks).
std::vector<uint32_t> Ids(const std::string& dir) {
  std::vector<uint32_t> out;
  DirPtr d(opendir(dir.c_str()));
  if (!d) return out;
  while (const dirent* e = readdir(d.get())) {
    if (auto id = ParseId(e->d_name)) out.push_back(*id);
  }
  return out;
}

std::string Read(const std::string& path, std::size_t max_bytes) {
  try {
    return io::ReadFile(path, max_bytes);
  } catch (const io::FileError&) {
    return "";  // gone since it was listed, or not readable
  }
}

std::string Comm(const std::string& path) {
  std::string s = Read(path, kCommBytes);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces and ')').
uint64_t StartTime(const std::string& stat) {
  std::size_t p = stat.rfind(')');
  if (p == std::string::npos) return 0;
  std::string_view rest(stat);
  rest.remove_prefix(p + 1);
  for (int field = 2; field < 22; field++) {
    std::size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) return 0;
    rest.remove_prefix(sp + 1);
  }
  uint64_t v = 0;
  std::from_chars(rest.data(), rest.data() + rest.size(), v);
  return v;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// A qemu binary's process name ("qemu-system-x86", "qemu-kvm", "kvm").
bool IsQemu(std::string_view comm) { return StartsWith(comm, "qemu-") || comm == "kvm"; }

}  // namespace


std::optional<uint32_t> QemuThreadKind(std::string_view comm, bool main, uint32_t qemu_pid) {
  if (main) return SCHED_MAIN;
  // "CPU 0/KVM", "CPU 1/TCG": qemu names its threads with -name ...,debug-threads=on, which
  // libvirt always passes.
  if (StartsWith(comm, "CPU ") && comm.find('/') != std::string_view::npos) return SCHED_VCPU;
  if (StartsWith(comm, "IO ")) return SCHED_IOTHREAD;
  if (comm == "vhost-" + std::to_string(qemu_pid)) return SCHED_VHOST;
  return std::nullopt;
}

std::optional<uint32_t> OvsThreadKind(std::string_view comm) {
  if (StartsWith(comm, "handler")) return SCHED_HANDLER;
  if (StartsWith(comm, "revalidator")) return SCHED_REVALIDATOR;
  return std::nullopt;
}

std::string QemuVmName(std::string_view cmdline) {
  std::vector<std::string_view> args;
  for (std::size_t p = 0; p < cmdline.size();) {
    std::size_t end = cmdline.find('\0', p);
    if (end == std::string_view::npos) end = cmdline.size();
    args.push_back(cmdline.substr(p, end - p));
    p = end + 1;
  }
  for (std::size_t i = 0; i + 1 < args.size(); i++) {
    if (args[i] != "-name" && args[i] != "--name") continue;
    // Split on single commas; ",," is a comma inside a value.
    std::vector<std::string> parts(1);
    const std::string_view v = args[i + 1];
    for (std::size_t j = 0; j < v.size(); j++) {
      if (v[j] != ',') {
        parts.back() += v[j];
      } else if (j + 1 < v.size() && v[j + 1] == ',') {
        parts.back() += ',';
        j++;
      } else {
        parts.emplace_back();
      }
    }
    for (std::size_t k = 0; k < parts.size(); k++) {
      if (StartsWith(parts[k], "guest=")) return parts[k].substr(6);
      if (k == 0 && parts[k].find('=') == std::string::npos) return parts[k];  // the implied guest=
    }
    return "";
  }
  return "";
}

std::map<std::string, uint32_t> VmThreads::LibvirtPids() const {
  std::map<std::string, uint32_t> out;
  DirPtr d(opendir(libvirt_.c_str()));
  if (!d) return out;
  while (const dirent* e = readdir(d.get())) {
    std::string_view name = e->d_name;
    if (name.size() <= 4 || name.substr(name.size() - 4) != ".pid") continue;
    if (auto pid = ParseId(io::ReadFirstLine(libvirt_ + "/" + std::string(name), 32))) {
      out[std::string(name.substr(0, name.size() - 4))] = *pid;
    }
  }
  return out;
}

ThreadScan VmThreads::Scan() {
  ThreadScan out;
  std::map<uint32_t, std::string> libvirt;  // pid -> domain name
  std::set<std::string> libvirt_names;
  for (const auto& [name, pid] : LibvirtPids()) {
    libvirt[pid] = name;
    libvirt_names.insert(name);
  }

  std::map<uint32_t, bool> tracked;  // pid -> is ovs-vswitchd
  std::vector<std::pair<uint32_t, uint32_t>> vhost_kthreads;  // (thread, qemu pid)
  std::set<uint32_t> others;
  scans_++;
  for (uint32_t pid : Ids(proc_)) {
    const std::string dir = proc_ + "/" + std::to_string(pid);
    if (others_.count(pid) && !libvirt.count(pid) && !Recheck(pid)) {
      others.insert(pid);
      continue;
    }
    const std::string comm = Comm(dir + "/comm");
    if (IsQemu(comm)) {
      auto l = libvirt.find(pid);
      std::string name;
      if (l != libvirt.end()) {
        name = l->second;
      } else {
        // The process chose its command line: a name of a VM libvirt runs would mix into that
        // VM's series, an endless one into every label.
        name = QemuVmName(Read(dir + "/cmdline", kCmdlineBytes));
      }
      if (name.empty() || (l == libvirt.end() && (name.size() > kMaxNameBytes || libvirt_names.count(name)))) {
        others.insert(pid);  // like any other process: its command line is not read at every scan
        continue;
      }
      out.processes[pid] = {StartTime(Read(dir + "/stat", kStatBytes)), name};
      tracked[pid] = false;
    } else if (comm == "ovs-vswitchd") {
      out.processes[pid] = {StartTime(Read(dir + "/stat", kStatBytes)), ""};
      tracked[pid] = true;
    } else if (StartsWith(comm, "vhost-")) {
      // Before 6.4 a vhost worker is a kernel thread of its own, named after its qemu.
      if (auto qemu = ParseId(std::string_view(comm).substr(6))) vhost_kthreads.emplace_back(pid, *qemu);
    } else {
      others.insert(pid);
    }
  }
  others_ = std::move(others);
  for (const auto& [tid, qemu] : vhost_kthreads) {
    if (tracked.count(qemu) && !tracked[qemu]) out.threads[tid] = {qemu, SCHED_VHOST};
  }
  std::set<uint32_t> untracked;
  for (const auto& [pid, ovs] : tracked) {
    const std::string tasks = proc_ + "/" + std::to_string(pid) + "/task/";
    for (uint32_t tid : Ids(tasks)) {
      if (auto k = known_.find(tid); k != known_.end() && k->second.pid == pid) {
        out.threads[tid] = k->second;
        continue;
      }
      if (untracked_.count(tid) && !Recheck(tid)) {
        untracked.insert(tid);
        continue;
      }
      std::optional<uint32_t> kind;
      if (ovs) {
        kind = OvsThreadKind(Comm(tasks + std::to_string(tid) + "/comm"));
      } else {
        kind = tid == pid ? QemuThreadKind("", true, pid)
                          : QemuThreadKind(Comm(tasks + std::to_string(tid) + "/comm"), false, pid);
      }
      if (kind) {
        out.threads[tid] = {pid, *kind};
      } else {
        untracked.insert(tid);
      }
    }
  }
  known_ = out.threads;
  untracked_ = std::move(untracked);
  return out;
}

}  // namespace vnet::identity
