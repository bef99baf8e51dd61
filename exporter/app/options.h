// Command-line flags, named as Prometheus exporters name them.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vnet::app {

constexpr const char* kDefaultListen = ":9748";

struct Options {
  std::string listen_address = kDefaultListen;
  std::string telemetry_path = "/metrics";
  std::string config_file;  // empty: the embedded default
  std::string web_config_file;  // empty: no authentication
  std::string btf_path;     // overrides bpf.btf_path of the config
  std::string log_level = "info";
  std::string capabilities_keep = "cap_bpf,cap_perfmon,cap_sys_admin,cap_syslog";  // or "all", "none"
  bool config_check = false;
  bool version = false;
  bool help = false;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Options ParseOptions(const std::vector<std::string>& args);
std::string Usage();

}  // namespace vnet::app
