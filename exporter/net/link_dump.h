// The devices of the calling thread's network namespace, from one rtnetlink dump. It replaces a
// walk of /sys/class/net (several files per device: 100 ms per scrape with 1,000 taps).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vnet::net {

struct Link {
  uint32_t ifindex = 0;
  std::string name;
  std::string mac;     // "fe:54:00:12:34:56"; empty for devices without a hardware address
  std::string master;  // the bridge (or ovs-system) the device is enslaved to
  bool tun = false;    // a device of the tun driver
  bool tap = false;    // ... and an Ethernet one (a tap, not a tun)
  uint32_t tun_queues = 0;  // tun: the queues attached (multi-queue devices; 0 when none is open), else 1
};

// Throws std::runtime_error when the kernel refuses or does not answer within a second.
std::vector<Link> DumpLinks();

}  // namespace vnet::net
