#include "app/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace vnet::app {
namespace {

// Indexed by capability number (linux/capability.h).
constexpr const char* kNames[] = {
    "cap_chown",           "cap_dac_override",  "cap_dac_read_search", "cap_fowner",         "cap_fsetid",
    "cap_kill",            "cap_setgid",        "cap_setuid",          "cap_setpcap",        "cap_linux_immutable",
    "cap_net_bind_service", "cap_net_broadcast", "cap_net_admin",       "cap_net_raw",        "cap_ipc_lock",
    "cap_ipc_owner",       "cap_sys_module",    "cap_sys_rawio",       "cap_sys_chroot",     "cap_sys_ptrace",
    "cap_sys_pacct",       "cap_sys_admin",     "cap_sys_boot",        "cap_sys_nice",       "cap_sys_resource",
    "cap_sys_time",        "cap_sys_tty_config", "cap_mknod",          "cap_lease",          "cap_audit_write",
    "cap_audit_control",   "cap_setfcap",       "cap_mac_override",    "cap_mac_admin",      "cap_syslog",
    "cap_wake_alarm",      "cap_block_suspend", "cap_audit_read",      "cap_perfmon",        "cap_bpf",
    "cap_checkpoint_restore"};
constexpr int kCount = sizeof(kNames) / sizeof(kNames[0]);

struct Sets {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
};

Capabilities Bits(const __u32 (&low_high)[2]) { return low_high[0] | static_cast<Capabilities>(low_high[1]) << 32; }

}  // namespace

const Capabilities kDefaultKeep =
    1ull << CAP_BPF | 1ull << CAP_PERFMON | 1ull << CAP_SYS_ADMIN | 1ull << CAP_SYSLOG;

Capabilities ParseCapabilities(const std::string& list) {
  if (list == "none") return 0;
  Capabilities out = 0;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name.rfind("cap_", 0) != 0) name = "cap_" + name;
    int i = 0;
    while (i < kCount && name != kNames[i]) ++i;
    if (i == kCount) throw std::invalid_argument("unknown capability \"" + name + "\"");
    out |= 1ull << i;
  }
  return out;
}

std::string CapabilityNames(Capabilities caps) {
  std::string out;
  for (int i = 0; i < kCount; ++i) {
    if (caps >> i & 1) out += (out.empty() ? "" : ",") + std::string(kNames[i]);
  }
  return out.empty() ? "none" : out;
}

Capabilities EffectiveCapabilities() {
  Sets s;
  if (syscall(SYS_capget, &s.header, s.data) != 0) throw std::system_error(errno, std::generic_category(), "capget");
  const __u32 effective[2] = {s.data[0].effective, s.data[1].effective};
  return Bits(effective);
}

void KeepOnly(Capabilities keep) {
  // Nothing dropped can come back through an exec of a set-user-ID or file-capability program.
  // An unprivileged user given capabilities (ambient, as the systemd unit does) cannot cut the
  // bounding set: this is what keeps them from being regained.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    throw std::system_error(errno, std::generic_category(), "setting no_new_privs");
  }
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes with the rest below.
  const bool setpcap = EffectiveCapabilities() >> CAP_SETPCAP & 1;
  for (int i = 0; setpcap && i <= CAP_LAST_CAP; ++i) {
    if (!(keep >> i & 1) && prctl(PR_CAPBSET_READ, i) == 1 && prctl(PR_CAPBSET_DROP, i) != 0) {
      throw std::system_error(errno, std::generic_category(), "dropping " + std::string(i < kCount ? kNames[i] : "?"));
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    throw std::system_error(errno, std::generic_category(), "clearing ambient capabilities");
  }
  Sets s;
  if (syscall(SYS_capget, &s.header, s.data) != 0) throw std::system_error(errno, std::generic_category(), "capget");
  for (int w = 0; w < 2; ++w) {
    const __u32 k = static_cast<__u32>(keep >> (32 * w));
    s.data[w].permitted &= k;
    s.data[w].effective = s.data[w].permitted;
    s.data[w].inheritable = 0;
  }
  if (syscall(SYS_capset, &s.header, s.data) != 0) throw std::system_error(errno, std::generic_category(), "capset");
}

}  // namespace vnet::app
