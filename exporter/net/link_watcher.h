// Link deletions and renames in the exporter's own namespace, as they happen (rtnetlink), so
// that what a device counted is set aside before its ifindex can be given to a new device.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace vnet::net {

class LinkWatcher {
 public:
  // `on_change(ifindex, name)` runs on the watcher's thread for every link deleted, and for
  // every link announced with a name (renames included; the callback compares).
  using Callback = std::function<void(uint32_t ifindex, const std::string& name, bool deleted)>;

  explicit LinkWatcher(Callback on_change);
  ~LinkWatcher();
  LinkWatcher(const LinkWatcher&) = delete;
  LinkWatcher& operator=(const LinkWatcher&) = delete;

 private:
  void Run();

  Callback on_change_;
  int sock_ = -1;
  int stop_ = -1;  // eventfd
  std::thread thread_;
};

}  // namespace vnet::net
