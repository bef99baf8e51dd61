// vnet_ovs_datapath_*, vnet_ovs_upcall_* (flows, limit, dump duration), handler/revalidator
// threads and the upcall coverage counters of ovs-vswitchd, read at scrape time over its
// unixctl JSON-RPC socket (the one ovs-appctl uses) with a deadline.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "config/config.h"
#include "net/devices.h"

namespace vnet::collectors {

// One datapath of `ovs-appctl dpctl/show` and `upcall/show`. Values absent from the text (the
// netdev datapath has no masks or cache lines) are absent from the map.
struct OvsDatapath {
  std::string type;                      // "system", "netdev"
  std::map<std::string, double> values;  // "lookups.hit", "flows", "upcall.limit", ...
};

// Parsers of the unixctl replies, by datapath name ("ovs-system").
std::map<std::string, OvsDatapath> ParseDpctlShow(const std::string& text);
void ParseUpcallShow(const std::string& text, std::map<std::string, OvsDatapath>& into);
// Event name -> total of `coverage/show`; events never hit are not listed by OVS.
std::map<std::string, double> ParseCoverageShow(const std::string& text);

class OvsCollector : public Collector {
 public:
  struct Settings : config::Section {
    static constexpr const char* kName = "ovs";
    std::string rundir = "/run/openvswitch";  // ovs-vswitchd.pid and ovs-vswitchd.<pid>.ctl
    std::chrono::milliseconds timeout{1000};
    uint32_t max_reply_bytes = 4 << 20;  // a longer reply fails the scrape of this collector
    void Parse(const config::Reader& r);
  };

  // `proc`: where the vswitchd's threads are counted (/proc/<pid>/task).
  explicit OvsCollector(const Settings& settings, std::string proc = "/proc");
  static std::unique_ptr<Collector> Make(const config::Config& cfg, net::LinkSource& links);

  const std::string& Name() const override;
  std::vector<ProbeStatus> Probes() const override { return {}; }
  // Throws when ovs-vswitchd cannot be asked (absent, restarting, stuck past the timeout): the
  // collector's vnet_exporter_collector_success is then 0.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  Settings cfg_;
  std::string proc_;
};

}  // namespace vnet::collectors
