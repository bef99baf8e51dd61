// Start-up: flags, configuration, BPF permission check, collectors, HTTP server, signals.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collectors/exporter_collector.h"

namespace vnet::app {

// An HTML page linking to the metrics and listing every probe's state.
std::string LandingPage(const collectors::ExporterCollector& exporter, const std::string& telemetry_path);

int Main(int argc, char** argv);

}  // namespace vnet::app
