// The threads a VM's network depends on, found in /proc by their names: each qemu process's
// vCPUs, main loop, I/O threads and vhost workers, and ovs-vswitchd's handlers and
// revalidators. A qemu process is named by libvirt (its <name>.pid file) or by its own
// `-name`; one with neither is not tracked (no name to give its series), nor one whose own name
// is a libvirt VM's or longer than 256 bytes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include <linux/types.h>

#include "bpf/sched.h"
}

namespace vnet::identity {

struct TrackedProcess {
  uint64_t start = 0;   // start time (/proc/<pid>/stat): tells a reused pid apart
  std::string vm_name;  // "" for ovs-vswitchd
};

struct TrackedThread {
  uint32_t pid = 0;  // the process it works for
  uint32_t kind = 0;  // enum sched_thread_kind
};

struct ThreadScan {
  std::map<uint32_t, TrackedProcess> processes;  // by pid
  std::map<uint32_t, TrackedThread> threads;     // by thread id
};

class VmThreads {
 public:
  VmThreads(std::string proc_dir, std::string libvirt_dir)
      : proc_(std::move(proc_dir)), libvirt_(std::move(libvirt_dir)) {}

  // One pass over /proc. Threads once classified are not read again while they live: qemu
  // names its threads as they start and never renames them. The name of a process that is none
  // of ours, or of a thread of no kind, is read again only every kRecheck scans (a scan reads a name in 5-12 us, 25 ms for
  // 2,000 processes here): a process that becomes qemu by exec after it was first seen is found
  // within kRecheck scans, at once when a libvirt pid file names it.
  ThreadScan Scan();

  static constexpr uint64_t kRecheck = 8;

 private:
  std::map<std::string, uint32_t> LibvirtPids() const;
  // Whether a process or thread of none of ours, id `id`, has its name read again in this scan.
  bool Recheck(uint32_t id) const { return (id + scans_) % kRecheck == 0; }

  std::string proc_, libvirt_;
  std::map<uint32_t, TrackedThread> known_;  // classified threads of the last scan
  std::set<uint32_t> others_;                // processes that were none of ours at their last read
  std::set<uint32_t> untracked_;             // threads of our processes that were of no kind at their last read
  uint64_t scans_ = 0;
};

// Exposed for tests.
// The kind of a qemu thread by its name (`main`: its id is the process id); none for threads
// not tracked (workers, RCU, VNC).
std::optional<uint32_t> QemuThreadKind(std::string_view comm, bool main, uint32_t qemu_pid);
std::optional<uint32_t> OvsThreadKind(std::string_view comm);
// The guest name in a qemu command line (NUL-separated arguments): `-name guest=NAME,...` or
// `-name NAME[,...]`, ",," standing for a comma; "" without one.
std::string QemuVmName(std::string_view cmdline);

}  // namespace vnet::identity
