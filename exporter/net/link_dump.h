// The devices of the calling thread's network namespace, from one rtnetlink dump. It replaces a
// walk of /sys/class/net (several files per device: 100 ms per scrape with 1,000 taps).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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

// Whether the kernel announced a link change in the calling thread's namespace (RTMGRP_LINK)
// since the last call, or lost announcements. True at the first call, and always when the
// socket could not be opened.
class LinkChanges {
 public:
  LinkChanges();
  ~LinkChanges();
  LinkChanges(const LinkChanges&) = delete;
  LinkChanges& operator=(const LinkChanges&) = delete;

  bool Changed();

 private:
  int sock_ = -1;
  bool first_ = true;
};

// `dump` (DumpLinks) again only after a link change, or once the last one is `max_age` old: a
// dump of 1,000 taps costs 10-15 ms, and a tap's attached queues change unannounced.
class CachedLinks {
 public:
  explicit CachedLinks(std::chrono::seconds max_age, std::function<std::vector<Link>()> dump = DumpLinks)
      : max_age_(max_age), dump_(std::move(dump)) {}

  std::vector<Link> Get();

 private:
  std::chrono::seconds max_age_;
  std::function<std::vector<Link>()> dump_;
  LinkChanges changes_;
  std::vector<Link> links_;
  std::chrono::steady_clock::time_point dumped_{};
  bool valid_ = false;
};

}  // namespace vnet::net
