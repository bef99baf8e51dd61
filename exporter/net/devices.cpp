#include "net/devices.h"

namespace vnet::net {

DeviceTracker::Result DeviceTracker::Resolve(const std::set<DeviceId>& ids, Clock::time_point now) {
  Result out;
  std::map<uint32_t, std::optional<std::map<uint32_t, std::string>>> tables;  // one dump per namespace
  for (const DeviceId& id : ids) {
    auto t = tables.find(id.netns);
    if (t == tables.end()) t = tables.emplace(id.netns, links_.Links(id.netns)).first;
    std::optional<std::string> name;
    if (t->second) {
      if (auto l = t->second->find(id.ifindex); l != t->second->end()) name = l->second;
    }

    auto k = known_.find(id);
    if (name) {
      DeviceLabels labels{*name, links_.NetnsLabel(id.netns)};
      if (k != known_.end() && k->second.labels.device != *name) {
        out.changed.emplace_back(id, k->second.labels);
      }
      known_[id] = Entry{labels, std::nullopt};
      out.labels[id] = labels;
      continue;
    }
    if (k == known_.end() && t->second) {
      out.gone.push_back(id);  // its namespace's list does not have it
      continue;
    }
    if (k == known_.end()) {
      // A namespace this process cannot list (no CAP_SYS_ADMIN, or gone): only the ifindex is known.
      DeviceLabels labels{"ifindex:" + std::to_string(id.ifindex), links_.NetnsLabel(id.netns)};
      k = known_.emplace(id, Entry{labels, now}).first;
    }
    if (!k->second.gone_since) k->second.gone_since = now;
    // Another device has taken the name (a VM's tap re-created): the old one's series must not
    // merge into the new one's, so it ends now rather than after the grace period.
    bool taken = false;
    if (t->second) {
      for (const auto& [ifindex, n] : *t->second) taken = taken || n == k->second.labels.device;
    }
    if (taken || now - *k->second.gone_since >= grace_) {
      out.expired.push_back(id);
      known_.erase(k);
      continue;
    }
    out.labels[id] = k->second.labels;
  }
  std::erase_if(known_, [&](const auto& kv) { return !ids.count(kv.first); });
  return out;
}

}  // namespace vnet::net
