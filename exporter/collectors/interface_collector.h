// vnet_interface_info: which VM and which OVS port each vnet belongs to, for joins
// (`* on(device) group_left(vm_name) vnet_interface_info`). Sources, each optional and read
// again at every scrape: sysfs, libvirt's live domain XML, OVSDB.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <functional>
#include <string>

#include "collectors/collector.h"
#include "config/config.h"
#include "net/devices.h"
#include "net/link_dump.h"
#include "identity/libvirt.h"
#include "identity/ovsdb.h"

namespace vnet::collectors {

class InterfaceCollector : public Collector {
 public:
  struct Settings : config::Section {
    static constexpr const char* kName = "interface";
    std::string libvirt_dir = "/run/libvirt/qemu";
    std::string ovsdb_socket = "/run/openvswitch/db.sock";
    std::chrono::milliseconds ovsdb_timeout{1000};
    uint32_t libvirt_max_file_bytes = 1 << 20;  // a domain XML larger than this is skipped
    uint32_t ovsdb_max_reply_bytes = 16 << 20;  // a longer OVSDB reply fails the OVSDB source
    void Parse(const config::Reader& r);
  };

  // `links` lists the devices of the exporter's namespace; `sysfs` has the transmit queues of
  // those not of the tun driver.
  InterfaceCollector(const config::Config& cfg, const Settings& settings,
                     std::function<std::vector<net::Link>()> links = net::DumpLinks,
                     std::string sysfs = "/sys/class/net");
  static std::unique_ptr<Collector> Make(const config::Config& cfg, net::LinkSource& links);

  const std::string& Name() const override;
  std::vector<ProbeStatus> Probes() const override { return {}; }
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  config::Devices devices_;
  std::function<std::vector<net::Link>()> links_;
  std::string sysfs_;
  mutable std::mutex mu_;
  mutable identity::Libvirt libvirt_;
  identity::Ovsdb ovsdb_;
  mutable std::optional<std::string> ovsdb_error_;  // logged once per change
};

}  // namespace vnet::collectors
