#include "collectors/registry.h"

#include <functional>

#include "collectors/drops_collector.h"
#include "collectors/interface_collector.h"
#include "collectors/ovs_collector.h"
#include "collectors/sched_collector.h"
#include "collectors/tap_collector.h"
#include "collectors/upcall_collector.h"
#include "config/reader.h"

namespace vnet::collectors {
namespace {

struct Registration {
  config::SectionType section;
  std::function<std::unique_ptr<Collector>(const config::Config&, net::LinkSource&)> make;
};

// C has a Settings (a config::Section with kName and Parse) and a static Make.
template <class C>
Registration Register() {
  using Settings = typename C::Settings;
  return {{Settings::kName,
           [](const config::Reader* r) {
             auto s = std::make_shared<Settings>();
             if (r) s->Parse(*r);
             return s;
           }},
          C::Make};
}

const std::vector<Registration>& Registry() {
  static const std::vector<Registration> registry = {
      Register<DropsCollector>(),
      Register<TapCollector>(),
      Register<InterfaceCollector>(),
      Register<UpcallCollector>(),
      Register<OvsCollector>(),
      Register<SchedCollector>(),
  };
  return registry;
}

}  // namespace

const std::vector<config::SectionType>& Sections() {
  static const std::vector<config::SectionType> sections = [] {
    std::vector<config::SectionType> out;
    for (const auto& r : Registry()) out.push_back(r.section);
    return out;
  }();
  return sections;
}

config::Config ParseConfig(const std::string& text, const std::string& file) {
  return config::Parse(text, file, Sections());
}

config::Config LoadConfig(const std::string& path) { return config::Load(path, Sections()); }

std::vector<std::unique_ptr<Collector>> MakeCollectors(const config::Config& cfg, net::LinkSource& links) {
  std::vector<std::unique_ptr<Collector>> out;
  for (const auto& r : Registry()) {
    if (cfg.collectors.at(r.section.name)->enabled) out.push_back(r.make(cfg, links));
  }
  return out;
}

}  // namespace vnet::collectors
