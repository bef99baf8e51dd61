#include "app/options.h"

#include "app/capabilities.h"

#include <map>

namespace vnet::app {

std::string Usage() {
  return R"(usage: vnet_exporter [flags]

Exports packet drops and latency of KVM / Open vSwitch hypervisors to Prometheus, from eBPF.

  --web.listen-address=ADDR  address to serve on (default ":9748")
  --web.telemetry-path=PATH  path of the metrics (default "/metrics")
  --web.config.file=FILE     web configuration (exporter-toolkit format): tls_server_config, basic_auth_users, http_server_config.headers
  --config.file=FILE         YAML configuration (default: the built-in one, config/vnet_exporter.yaml)
  --config.check             validate the configuration, load and attach the probes, report, and exit:
                             0 when all enabled probes attached, 1 otherwise
  --bpf.btf-path=FILE        kernel BTF for kernels without /sys/kernel/btf/vmlinux (overrides bpf.btf_path)
  --log.level=LEVEL          debug, info, warn or error (default "info")
  --capabilities.keep=LIST   capabilities kept once the probes are attached, e.g. "cap_bpf,cap_perfmon";
                             "none", or "all" to drop none (default "cap_bpf,cap_perfmon,cap_sys_admin,cap_syslog")
  --version                  print the version and exit
  --help                     print this help and exit
)";
}

Options ParseOptions(const std::vector<std::string>& args) {
  Options o;
  const std::map<std::string, std::string*> values = {
      {"--web.listen-address", &o.listen_address}, {"--web.telemetry-path", &o.telemetry_path},
      {"--config.file", &o.config_file},           {"--web.config.file", &o.web_config_file},           {"--bpf.btf-path", &o.btf_path},
      {"--log.level", &o.log_level},               {"--capabilities.keep", &o.capabilities_keep},
  };
  const std::map<std::string, bool*> switches = {
      {"--config.check", &o.config_check}, {"--version", &o.version}, {"--help", &o.help}, {"-h", &o.help}};

  for (std::size_t i = 0; i < args.size(); i++) {
    std::string arg = args[i];
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    if (auto s = switches.find(arg); s != switches.end()) {
      if (value) throw UsageError(arg + " takes no value");
      *s->second = true;
      continue;
    }
    auto v = values.find(arg);
    if (v == values.end()) throw UsageError("unknown flag " + args[i]);
    if (!value) {
      if (i + 1 == args.size()) throw UsageError(arg + " needs a value");
      value = args[++i];
    }
    *v->second = *value;
  }
  if (o.telemetry_path.empty() || o.telemetry_path[0] != '/' || o.telemetry_path == "/") {
    throw UsageError("--web.telemetry-path must start with / and not be /");
  }
  if (o.log_level != "debug" && o.log_level != "info" && o.log_level != "warn" && o.log_level != "error") {
    throw UsageError("--log.level must be debug, info, warn or error");
  }
  if (o.capabilities_keep != "all") {
    try {
      ParseCapabilities(o.capabilities_keep);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--capabilities.keep: ") + e.what());
    }
  }
  return o;
}

}  // namespace vnet::app
