// Interface names for (network namespace, ifindex) pairs seen in BPF maps, resolved at scrape
// time in the device's own namespace, with a grace period for devices that are gone.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "net/link_dump.h"

namespace vnet::net {

struct DeviceId {
  uint32_t netns = 0;  // namespace inode
  uint32_t ifindex = 0;
  auto operator<=>(const DeviceId&) const = default;
};

struct DeviceLabels {
  std::string device;
  std::string netns;  // "" for the exporter's own namespace, else its /run/netns name or inode
  bool operator==(const DeviceLabels&) const = default;
};

// Where names come from; the system implementation is in netns.cpp, tests use fixed tables.
class LinkSource {
 public:
  virtual ~LinkSource() = default;
  // ifindex -> name of every device in the namespace, or nullopt when the namespace is gone.
  virtual std::optional<std::map<uint32_t, std::string>> Links(uint32_t netns) = 0;
  virtual std::string NetnsLabel(uint32_t netns) = 0;
  virtual uint32_t OwnNetns() const = 0;
};

// The system's devices. Collectors ask from their scrape threads at once: thread-safe.
class SystemLinks : public LinkSource {
 public:
  SystemLinks();
  ~SystemLinks() override;
  SystemLinks(const SystemLinks&) = delete;
  SystemLinks& operator=(const SystemLinks&) = delete;
  std::optional<std::map<uint32_t, std::string>> Links(uint32_t netns) override;
  std::string NetnsLabel(uint32_t netns) override;
  uint32_t OwnNetns() const override { return own_; }

 private:
  std::optional<std::string> FindPath(uint32_t netns);  // with mu_ held
  std::optional<std::map<uint32_t, std::string>> OwnLinks();  // with mu_ held

  uint32_t own_;
  std::mutex mu_;
  std::map<uint32_t, std::string> paths_;  // inode -> a path that opens it, checked on use
  // The own namespace's devices are listed again only after the kernel announced a change of
  // link (or lost announcements): each collector asks at each scrape, and a list of 1,000 taps
  // costs 10 ms.
  LinkChanges changes_;
  std::optional<std::map<uint32_t, std::string>> own_links_;
};

class DeviceTracker {
 public:
  using Clock = std::chrono::steady_clock;

  DeviceTracker(LinkSource& links, std::chrono::seconds grace) : links_(links), grace_(grace) {}

  struct Result {
    std::map<DeviceId, DeviceLabels> labels;  // for every id asked, live or within grace
    // ids now naming another device (renamed, or ifindex reused) with their previous labels:
    // what was counted under them belongs to the previous device.
    std::vector<std::pair<DeviceId, DeviceLabels>> changed;
    std::vector<DeviceId> expired;  // gone for longer than the grace period, or its name taken
    // ids of devices gone before they were ever named (not in their namespace's list): what
    // they counted belongs to kGoneDevice, whatever their number (thousands of short-lived
    // devices must not make thousands of series).
    std::vector<DeviceId> gone;
  };

  // The device label of what devices gone before they were named counted. No device has it: a
  // device name cannot hold ':'.
  static constexpr const char* kGoneDevice = "gone:unnamed";

  // Resolves the ids present in a map at `now`. Ids not asked for are forgotten.
  Result Resolve(const std::set<DeviceId>& ids, Clock::time_point now);

  // `id` is gone (a link-deleted event): a new device given the same ifindex starts clean.
  void Forget(DeviceId id) { known_.erase(id); }

  // The labels `id` had at the last resolution, if any.
  std::optional<DeviceLabels> Known(DeviceId id) const {
    auto k = known_.find(id);
    return k == known_.end() ? std::nullopt : std::optional(k->second.labels);
  }

  std::chrono::seconds grace() const { return grace_; }
  uint32_t OwnNetns() const { return links_.OwnNetns(); }

 private:
  struct Entry {
    DeviceLabels labels;
    std::optional<Clock::time_point> gone_since;
  };

  LinkSource& links_;
  std::chrono::seconds grace_;
  std::map<DeviceId, Entry> known_;
};

}  // namespace vnet::net
