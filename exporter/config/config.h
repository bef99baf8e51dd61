// Exporter configuration: parsed strictly from YAML, every error names file, line and key.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace vnet::config {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Devices {
  std::vector<std::string> include{"*"};  // shell globs matched against the interface name
  std::vector<std::string> exclude;
  std::chrono::seconds grace_period{std::chrono::minutes(5)};

  // True when a device of this name is reported.
  bool Selected(const std::string& name) const;
};

struct DropsCollector {
  bool enabled = true;
  uint32_t max_entries = 16384;
};

// Ways a program can be attached; each probe tries its own alternatives in its order.
inline const std::vector<std::string> kAttachTypes = {"tp_btf", "raw_tp", "kprobe"};

struct TapCollector {
  bool enabled = true;
  uint32_t max_inflight = 65536;  // packets timed at once
  uint32_t max_series = 4096;     // (tap, queue, direction) histograms
  std::chrono::seconds inflight_timeout{10};
  std::chrono::nanoseconds bucket_min{std::chrono::microseconds(1)};
  std::chrono::nanoseconds bucket_max{std::chrono::seconds(4)};
};

struct InterfaceCollector {
  bool enabled = true;
  std::string libvirt_dir = "/run/libvirt/qemu";
  std::string ovsdb_socket = "/run/openvswitch/db.sock";
  std::chrono::milliseconds ovsdb_timeout{1000};
};

struct UpcallCollector {
  bool enabled = true;
  uint32_t max_inflight = 16384;  // upcalls awaiting their execute at once
  uint32_t max_series = 4096;     // (device, datapath, cmd, error) counters
  std::chrono::seconds inflight_timeout{10};
};

struct OvsCollector {
  bool enabled = true;
  std::string rundir = "/run/openvswitch";  // ovs-vswitchd.pid and ovs-vswitchd.<pid>.ctl
  std::chrono::milliseconds timeout{1000};
};

struct Config {
  std::string btf_path;  // empty: the running kernel's /sys/kernel/btf/vmlinux
  std::vector<std::string> disabled_attach_types;  // never used, e.g. to avoid a broken kernel feature
  Devices devices;
  DropsCollector drops;
  TapCollector tap;
  InterfaceCollector interface;
  OvsCollector ovs;
  UpcallCollector upcall;
};

// The default configuration, embedded in the binary (config/vnet_exporter.yaml).
std::string_view DefaultText();

// Parses `text`; `file` is only used in error messages.
Config Parse(const std::string& text, const std::string& file);

// Reads and parses a file.
Config Load(const std::string& path);

}  // namespace vnet::config
