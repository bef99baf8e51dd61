// Start-up: flags, configuration, BPF permission check, collectors, HTTP server, signals.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collectors/exporter_collector.h"
#include "config/config.h"
#include "net/devices.h"

namespace vnet::app {

// Every enabled collector, in the order they appear in /metrics. A collector whose probes
// cannot attach is still returned (it reports them as not attached).
std::vector<std::unique_ptr<collectors::Collector>> MakeCollectors(const config::Config& cfg, net::LinkSource& links);

// An HTML page linking to the metrics and listing every probe's state.
std::string LandingPage(const collectors::ExporterCollector& exporter, const std::string& telemetry_path);

int Main(int argc, char** argv);

}  // namespace vnet::app
