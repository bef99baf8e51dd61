// SIGHUP and POST /-/reload: both configuration files read again. The web configuration (TLS,
// users, headers) takes effect at once; the main configuration is checked and compared with the
// one running, and what changed is reported: collectors are built and their maps sized when
// the exporter starts, so those changes wait for a restart (vnet_exporter_config_restart_pending).
#pragma once

#include <prometheus/metric_family.h>

#include <mutex>
#include <string>
#include <vector>

#include "http/server.h"

namespace vnet::app {

class Reloader {
 public:
  // `config_file`, `web_config_file`: "" when not given (nothing to read again); `config_text`:
  // the main configuration as read at start.
  Reloader(std::string config_file, std::string config_text, std::string web_config_file);

  // Reads both files again and gives `server` the web configuration. "" when both are valid,
  // else what is wrong with them (the previous configuration stays); logged either way.
  std::string Reload(http::Server& server);

  // vnet_exporter_config_last_reload_successful, _last_reload_success_timestamp_seconds,
  // vnet_exporter_config_restart_pending.
  std::vector<prometheus::MetricFamily> Collect() const;

 private:
  std::string config_file_;
  std::string running_text_;  // the main configuration read at start
  std::string web_config_file_;
  mutable std::mutex mu_;
  bool ok_ = true;
  double success_time_ = 0;  // seconds since the epoch of the start or last good reload
  bool restart_pending_ = false;
};

// Dotted paths of the keys whose values differ between two configuration texts
// ("collectors.tap.max_series"), in document order.
std::vector<std::string> ChangedKeys(const std::string& before, const std::string& after);

}  // namespace vnet::app
