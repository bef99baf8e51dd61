// Least privilege after start-up: the process keeps only the capabilities its scrapes and late
// attaches need (see README, "Privileges").
#pragma once

#include <cstdint>
#include <string>

namespace vnet::app {

// A set of capabilities as bits (1 << CAP_BPF ...).
using Capabilities = uint64_t;

// What the exporter keeps by default: CAP_BPF (maps are read with bpf(); a module that appears
// later is probed then), CAP_PERFMON (kprobes attached then), CAP_SYS_ADMIN (setns, to name
// devices in other namespaces), CAP_SYSLOG (kernel addresses in /proc/kallsyms).
extern const Capabilities kDefaultKeep;

// "cap_bpf,cap_syslog" (case-insensitive, "cap_" optional) or "none". Throws std::invalid_argument
// naming the unknown one.
Capabilities ParseCapabilities(const std::string& list);
std::string CapabilityNames(Capabilities caps);  // "cap_bpf,cap_perfmon" or "none"

// The calling thread's effective set.
Capabilities EffectiveCapabilities();

// Leaves the calling thread with `keep` (as far as it has them) in its effective and permitted
// sets, and in its bounding set when it may cut it (CAP_SETPCAP), nothing inheritable or
// ambient, and no_new_privs: threads it creates afterwards inherit exactly that, and nothing
// can be regained. Throws std::system_error.
void KeepOnly(Capabilities keep);

}  // namespace vnet::app
