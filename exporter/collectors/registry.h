// The one list of collectors: each registers its name, its configuration section (parsed next
// to its settings) and its factory here, and nowhere else.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "config/config.h"
#include "net/devices.h"

namespace vnet::collectors {

// Every collector's configuration section, for config::Parse and config::Load.
const std::vector<config::SectionType>& Sections();

// The configuration in `text` / the file `path`, every collector's section parsed.
config::Config ParseConfig(const std::string& text, const std::string& file);
config::Config LoadConfig(const std::string& path);

// The collectors enabled in `cfg`, in registration order, their probes loaded and attached.
std::vector<std::unique_ptr<Collector>> MakeCollectors(const config::Config& cfg, net::LinkSource& links);

}  // namespace vnet::collectors
