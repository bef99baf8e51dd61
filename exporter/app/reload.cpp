#include "app/reload.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <set>

#include "collectors/registry.h"
#include "io/file.h"
#include "log/log.h"
#include "metrics/family.h"

namespace vnet::app {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Both documents were validated against the configuration's schema first: their depth is the
// schema's, a handful of levels.
void Diff(const YAML::Node& a, const YAML::Node& b, const std::string& path, std::vector<std::string>& out) {
  // A key one side lacks is an undefined node there (false), on which IsMap() would throw.
  if (a && b && a.IsMap() && b.IsMap()) {
    std::vector<std::string> keys;
    std::set<std::string> seen;
    for (const YAML::Node& doc : {a, b}) {
      for (const auto& kv : doc) {
        if (seen.insert(kv.first.Scalar()).second) keys.push_back(kv.first.Scalar());
      }
    }
    for (const auto& k : keys) Diff(a[k], b[k], path.empty() ? k : path + "." + k, out);
    return;
  }
  const std::string x = a ? YAML::Dump(a) : "", y = b ? YAML::Dump(b) : "";
  if (x != y) out.push_back(path.empty() ? "(top level)" : path);
}

}  // namespace

std::vector<std::string> ChangedKeys(const std::string& before, const std::string& after) {
  // An empty file is a configuration of defaults: no keys.
  auto load = [](const std::string& text) {
    YAML::Node n = YAML::Load(text);
    return n.IsNull() ? YAML::Node(YAML::NodeType::Map) : n;
  };
  std::vector<std::string> out;
  Diff(load(before), load(after), "", out);
  return out;
}

Reloader::Reloader(std::string config_file, std::string config_text, std::string web_config_file)
    : config_file_(std::move(config_file)),
      running_text_(std::move(config_text)),
      web_config_file_(std::move(web_config_file)),
      success_time_(Now()) {}

std::string Reloader::Reload(http::Server& server) {
  std::lock_guard lock(mu_);
  std::string errors;
  if (!web_config_file_.empty()) {
    try {
      server.SetWebConfig(http::LoadWebConfig(web_config_file_));
      log::Log(log::Level::kInfo, "reload: web configuration " + web_config_file_ + " in effect");
    } catch (const std::exception& e) {
      errors += std::string("web configuration: ") + e.what() + "\n";
    }
  }
  if (!config_file_.empty()) {
    try {
      const std::string text = io::ReadFile(config_file_, 1 << 20);
      collectors::ParseConfig(text, config_file_);  // throws config::Error naming file, line and key
      const auto changed = ChangedKeys(running_text_, text);
      restart_pending_ = !changed.empty();
      if (changed.empty()) {
        log::Log(log::Level::kInfo, "reload: configuration " + config_file_ + " unchanged");
      } else {
        std::string keys;
        for (const auto& k : changed) keys += (keys.empty() ? "" : ", ") + k;
        log::Log(log::Level::kWarn, "reload: configuration " + config_file_ + ": " + keys +
                                        " changed; takes effect when the exporter restarts (collectors are built "
                                        "and their maps sized at start)");
      }
    } catch (const std::exception& e) {
      errors += std::string("configuration: ") + e.what() + "\n";
    }
  }
  ok_ = errors.empty();
  if (ok_) {
    success_time_ = Now();
  } else {
    errors.pop_back();
    log::Log(log::Level::kError, "reload failed, the previous configuration stays in effect: " + errors);
  }
  return errors;
}

std::vector<prometheus::MetricFamily> Reloader::Collect() const {
  using prometheus::MetricType;
  auto ok = metrics::Family("vnet_exporter_config_last_reload_successful",
                            "1 when the last reload (SIGHUP, POST /-/reload) read valid configuration files.",
                            MetricType::Gauge);
  auto time = metrics::Family("vnet_exporter_config_last_reload_success_timestamp_seconds",
                              "When the configuration was last loaded successfully (start or reload).",
                              MetricType::Gauge);
  auto pending = metrics::Family("vnet_exporter_config_restart_pending",
                                 "1 when the configuration file differs from the one running: a restart applies it.",
                                 MetricType::Gauge);
  std::lock_guard lock(mu_);
  metrics::AddGauge(ok, {}, ok_ ? 1 : 0);
  metrics::AddGauge(time, {}, success_time_);
  metrics::AddGauge(pending, {}, restart_pending_ ? 1 : 0);
  return metrics::Families(std::move(ok), std::move(time), std::move(pending));
}

}  // namespace vnet::app
