// The series of a BPF map keyed by device (a Key with `netns` and `ifindex` fields), named at
// scrape time in the device's own namespace. What a device counted stays under its own name
// when the device is deleted, renamed or its ifindex given to another device, for the grace
// period; then it disappears. It disappears at once when another device takes the name (a VM
// restarted, its tap re-created): a series must never join the identity of a VM that did not
// count it, so the new device's series starts from zero instead (a counter reset).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bpf/table.h"
#include "config/config.h"
#include "net/devices.h"

namespace vnet::collectors {

template <class Key, class Value>
class DeviceTable {
 public:
  using Table = bpf::CounterTable<Key, Value>;
  using Labels = std::vector<std::string>;  // device, netns, then the collector's own
  using Clock = net::DeviceTracker::Clock;
  // The collector's own labels of an entry.
  using LabelFn = std::function<Labels(const Key&)>;
  // Sees every key of a read before LabelFn is asked about them (to resolve names in one pass).
  using PrepareFn = std::function<void(const std::vector<Key>&)>;

  DeviceTable(std::unique_ptr<Table> table, net::LinkSource& links, const config::Devices& devices, LabelFn labels,
              PrepareFn prepare = [](const std::vector<Key>&) {})
      : table_(std::move(table)),
        links_(links),
        tracker_(links, devices.grace_period),
        devices_(devices),
        labels_(std::move(labels)),
        prepare_(std::move(prepare)) {}

  // Every exported series at `now` (device filter applied), live and retired counts summed.
  std::map<Labels, Value> Read(Clock::time_point now) {
    auto entries = table_->Read();
    std::set<net::DeviceId> ids;
    for (const auto& [k, v] : entries) {
      if (k.ifindex) ids.insert({k.netns, k.ifindex});
    }
    auto devs = tracker_.Resolve(ids, now);
    for (const auto& [id, old] : devs.changed) Retire(entries, id, old, now);

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
    table_->Erase(erase);
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
      return n->second.count(r.first[0]) > 0;
    });
    entries_ = entries.size();

    std::vector<Key> keys;
    for (const auto& [k, v] : entries) keys.push_back(k);
    prepare_(keys);
    std::map<Labels, Value> series;
    for (const auto& [k, v] : entries) {
      net::DeviceLabels dev;  // no device: empty labels
      if (k.ifindex) dev = devs.labels.at({k.netns, k.ifindex});
      bpf::Accumulate(series[Join(dev, k)], v);
    }
    for (const auto& [labels, r] : retired_) bpf::Accumulate(series[labels], r.value);
    std::erase_if(series, [&](const auto& s) { return !devices_.Selected(s.first[0]); });
    return series;
  }

  // A device of the exporter's own namespace was deleted, or announced under `name`: what it
  // counted is set aside at once, before its ifindex can name another device.
  void OnLink(uint32_t ifindex, const std::string& name, bool deleted) {
    net::DeviceId id{tracker_.OwnNetns(), ifindex};
    auto known = tracker_.Known(id);
    if (!deleted && (!known || known->device == name)) return;  // not a rename of a device we count
    tracker_.Forget(id);
    Retire(table_->Read(), id, known ? *known : net::DeviceLabels{name, ""}, Clock::now());
  }

  uint64_t entries() const { return entries_; }
  uint32_t capacity() const { return table_->Capacity(); }

 private:
  struct Retired {
    Value value{};
    Clock::time_point until;
    uint32_t netns = 0;
  };

  Labels Join(const net::DeviceLabels& dev, const Key& k) const {
    Labels l{dev.device, dev.netns};
    for (auto& own : labels_(k)) l.push_back(std::move(own));
    return l;
  }

  // Moves what the map counted for `id` into retired_ under `dev` and clears it in the map.
  void Retire(const std::vector<std::pair<Key, Value>>& entries, net::DeviceId id, const net::DeviceLabels& dev,
              Clock::time_point now) {
    std::vector<Key> erase;
    for (const auto& [k, v] : entries) {
      if (k.netns == id.netns && k.ifindex == id.ifindex) erase.push_back(k);
    }
    prepare_(erase);
    for (const auto& [k, v] : entries) {
      if (k.netns != id.netns || k.ifindex != id.ifindex) continue;
      Retired& r = retired_[Join(dev, k)];
      bpf::Accumulate(r.value, v);
      r.until = now + tracker_.grace();
      r.netns = id.netns;
    }
    table_->Erase(erase);
  }

  std::unique_ptr<Table> table_;
  net::LinkSource& links_;
  net::DeviceTracker tracker_;
  config::Devices devices_;
  LabelFn labels_;
  PrepareFn prepare_;
  std::map<Labels, Retired> retired_;
  uint64_t entries_ = 0;
};

}  // namespace vnet::collectors
