// The series of a BPF map keyed by device (a Key with `netns` and `ifindex` fields), named at
// scrape time in the device's own namespace. What a device counted stays under its own name
// when the device is deleted, renamed or its ifindex given to another device, for the grace
// period; then it disappears. It disappears at once when another device takes the name (a VM
// restarted, its tap re-created): a series must never join the identity of a VM that did not
// count it, so the new device's series starts from zero instead (a counter reset).
//
// The table does not own the map: the collector's probe does, and hands it in at each read, so
// what the table keeps (retired series) outlives a probe that is loaded again.
#pragma once

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.h"
#include "ebpf/table.h"
#include "net/devices.h"

namespace vnet::collectors {

template <class Key, class Value>
class DeviceTable {
 public:
  using Table = ebpf::CounterTable<Key, Value>;
  using Clock = net::DeviceTracker::Clock;

  // One exported series: the device's labels and the map's key with `netns` and `ifindex`
  // zeroed (the device is named instead), so a retired device's counts keep their key.
  struct Series {
    net::DeviceLabels device;
    Key key;
    bool operator<(const Series& o) const {
      if (auto c = std::tie(device.device, device.netns) <=> std::tie(o.device.device, o.device.netns); c != 0) {
        return c < 0;
      }
      return std::memcmp(&key, &o.key, sizeof(Key)) < 0;
    }
  };

  DeviceTable(net::LinkSource& links, const config::Devices& devices)
      : links_(links), tracker_(links, devices.grace_period), devices_(devices) {}

  // Every exported series of `table` at `now` (device filter applied), live and retired counts summed.
  std::map<Series, Value> Read(Table& table, Clock::time_point now) {
    auto entries = table.Read();
    std::set<net::DeviceId> ids;
    for (const auto& [k, v] : entries) {
      if (k.ifindex) ids.insert({k.netns, k.ifindex});
    }
    auto devs = tracker_.Resolve(ids, now);
    for (const auto& [id, old] : devs.changed) Retire(table, entries, id, old, now);

    std::set<net::DeviceId> expired(devs.expired.begin(), devs.expired.end());
    std::set<net::DeviceId> changed;
    for (const auto& [id, old] : devs.changed) changed.insert(id);
    std::vector<Key> erase;
    std::erase_if(entries, [&](const auto& e) {
      net::DeviceId id{e.first.netns, e.first.ifindex};
      if (expired.count(id)) {
        erase.push_back(e.first);
        return true;
      }
      return changed.count(id) > 0;  // Retire() took those
    });
    table.Erase(erase);
    std::map<uint32_t, std::set<std::string>> names;  // devices present now, per namespace
    std::erase_if(retired_, [&](const auto& r) {
      if (r.second.until <= now) return true;
      auto n = names.find(r.second.netns);
      if (n == names.end()) {
        n = names.emplace(r.second.netns, std::set<std::string>{}).first;
        if (auto links = links_.Links(r.second.netns)) {
          for (const auto& [ifindex, name] : *links) n->second.insert(name);
        }
      }
      return n->second.count(r.first.device.device) > 0;
    });
    entries_ = entries.size();

    std::map<Series, Value> series;
    for (const auto& [k, v] : entries) {
      net::DeviceLabels dev;  // no device: empty labels
      if (k.ifindex) dev = devs.labels.at({k.netns, k.ifindex});
      ebpf::Accumulate(series[Of(dev, k)], v);
    }
    for (const auto& [s, r] : retired_) ebpf::Accumulate(series[s], r.value);
    std::erase_if(series, [&](const auto& s) { return !devices_.Selected(s.first.device.device); });
    return series;
  }

  // A device of the exporter's own namespace was deleted, or announced under `name`: what it
  // counted in `table` is set aside at once, before its ifindex can name another device.
  void OnLink(Table& table, uint32_t ifindex, const std::string& name, bool deleted) {
    net::DeviceId id{tracker_.OwnNetns(), ifindex};
    auto known = tracker_.Known(id);
    if (!deleted && (!known || known->device == name)) return;  // not a rename of a device we count
    tracker_.Forget(id);
    Retire(table, table.Read(), id, known ? *known : net::DeviceLabels{name, ""}, Clock::now());
  }

  uint64_t entries() const { return entries_; }

 private:
  struct Retired {
    Value value{};
    Clock::time_point until;
    uint32_t netns = 0;
  };

  static Series Of(const net::DeviceLabels& dev, Key k) {
    k.netns = 0;
    k.ifindex = 0;
    return {dev, k};
  }

  // Moves what the map counted for `id` into retired_ under `dev` and clears it in the map.
  void Retire(Table& table, const std::vector<std::pair<Key, Value>>& entries, net::DeviceId id,
              const net::DeviceLabels& dev, Clock::time_point now) {
    std::vector<Key> erase;
    for (const auto& [k, v] : entries) {
      if (k.netns != id.netns || k.ifindex != id.ifindex) continue;
      erase.push_back(k);
      Retired& r = retired_[Of(dev, k)];
      ebpf::Accumulate(r.value, v);
      r.until = now + tracker_.grace();
      r.netns = id.netns;
    }
    table.Erase(erase);
  }

  net::LinkSource& links_;
  net::DeviceTracker tracker_;
  config::Devices devices_;
  std::map<Series, Retired> retired_;
  uint64_t entries_ = 0;
};

}  // namespace vnet::collectors
