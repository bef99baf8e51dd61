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

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.h"
#include "ebpf/table.h"
#include "net/devices.h"

extern "C" {
#include <linux/types.h>

#include "bpf/devices.h"
}

namespace vnet::collectors {

template <class Key, class Value>
class DeviceTable {
 public:
  using Table = ebpf::CounterTable<Key, Value>;
  using Excluded = ebpf::KeySet<device_id>;
  using Clock = net::DeviceTracker::Clock;

  // One exported series: the device's labels and the map's key with `netns` and `ifindex`
  // zeroed (the device is named instead), so a retired device's counts keep their key.
  struct Series {
    net::DeviceLabels device;
    Key key;
    bool operator<(const Series& o) const {
      if (Before(device, o.device)) return true;
      if (Before(o.device, device)) return false;
      return KeyLess(key, o.key);
    }
  };

  DeviceTable(net::LinkSource& links, const config::Devices& devices)
      : links_(links), tracker_(links, devices.grace_period), devices_(devices) {}

  // Every exported series of `table` at `now` in series order (device filter applied), live and
  // retired counts summed. What devices the filter leaves out counted leaves the map; with
  // `excluded` (the programs' set of devices to skip) they are put there, so that they take no
  // map entry again.
  std::vector<std::pair<Series, Value>> Read(Table& table, Clock::time_point now, Excluded* excluded = nullptr) {
    auto entries = table.Read();
    std::set<net::DeviceId> ids;
    for (const auto& [k, v] : entries) {
      if (k.ifindex) ids.insert({k.netns, k.ifindex});
    }
    auto devs = tracker_.Resolve(ids, now);
    for (const auto& [id, old] : devs.changed) Retire(table, entries, id, old, now);
    // Set aside at once: their map entries are freed for devices that are there.
    for (const auto& id : devs.gone) {
      Retire(table, entries, id, {net::DeviceTracker::kGoneDevice, links_.NetnsLabel(id.netns)}, now);
    }

    std::set<net::DeviceId> expired(devs.expired.begin(), devs.expired.end());
    std::set<net::DeviceId> changed(devs.gone.begin(), devs.gone.end());
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

    // Entries are put in the order of their series and summed into `live` in that order (12,000
    // inserts into a map by comparing names took 20 ms). A device's place in that order (its
    // rank, shared by devices of the same labels) and whether the device filter selects it are
    // worked out once per device, not once per entry.
    const net::DeviceLabels none;  // of entries without a device
    std::vector<std::pair<const net::DeviceLabels*, net::DeviceId>> devices = {{&none, {0, 0}}};
    for (const auto& [id, labels] : devs.labels) devices.emplace_back(&labels, id);
    std::sort(devices.begin(), devices.end(), [](const auto& a, const auto& b) { return Before(*a.first, *b.first); });
    std::map<net::DeviceId, int> rank;  // -1: not selected
    for (size_t i = 0, r = 0; i < devices.size(); i++) {
      if (i > 0 && Before(*devices[i - 1].first, *devices[i].first)) r = i;
      rank[devices[i].second] = devices_.Selected(devices[i].first->device) ? static_cast<int>(r) : -1;
    }
    std::vector<std::pair<int, size_t>> order;  // rank, index in entries
    order.reserve(entries.size());
    std::vector<Key> left_out;
    std::set<net::DeviceId> unselected;
    for (size_t i = 0; i < entries.size(); i++) {
      auto& k = entries[i].first;
      const int r = rank.at(k.ifindex ? net::DeviceId{k.netns, k.ifindex} : net::DeviceId{0, 0});
      if (r < 0) {
        left_out.push_back(k);
        unselected.insert({k.netns, k.ifindex});
        continue;
      }
      k.netns = 0;
      k.ifindex = 0;
      order.emplace_back(r, i);
    }
    auto compare = [&](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      return KeyLess(entries[a.second].first, entries[b.second].first);
    };
    std::sort(order.begin(), order.end(), compare);
    std::vector<std::pair<Series, Value>> live;
    live.reserve(order.size());
    for (size_t i = 0; i < order.size(); i++) {
      const auto& [k, v] = entries[order[i].second];
      if (i > 0 && !compare(order[i - 1], order[i])) {
        ebpf::Accumulate(live.back().second, v);
      } else {
        live.emplace_back(Series{*devices[order[i].first].first, k}, v);
      }
    }
    table.Erase(left_out);
    if (excluded) Exclude(*excluded, std::move(unselected));
    if (retired_.empty()) return live;
    // Retired counts (in series order too) merged in, summed with a live series of their labels.
    std::vector<std::pair<Series, Value>> series;
    series.reserve(live.size() + retired_.size());
    auto l = live.begin();
    for (const auto& [s, r] : retired_) {
      if (!devices_.Selected(s.device.device)) continue;
      for (; l != live.end() && l->first < s; ++l) series.push_back(std::move(*l));
      if (l != live.end() && !(s < l->first)) {
        series.push_back(std::move(*l++));
        ebpf::Accumulate(series.back().second, r.value);
      } else {
        series.emplace_back(s, r.value);
      }
    }
    std::move(l, live.end(), std::back_inserter(series));
    return series;
  }

  // The series of two reads in series order (a table's and its other namespaces' table: their
  // series differ by namespace).
  static std::vector<std::pair<Series, Value>> Merged(std::vector<std::pair<Series, Value>> a,
                                                      std::vector<std::pair<Series, Value>> b) {
    if (b.empty()) return a;
    std::vector<std::pair<Series, Value>> out;
    out.reserve(a.size() + b.size());
    std::merge(std::make_move_iterator(a.begin()), std::make_move_iterator(a.end()), std::make_move_iterator(b.begin()),
               std::make_move_iterator(b.end()), std::back_inserter(out),
               [](const auto& x, const auto& y) { return x.first < y.first; });
    return out;
  }

  // A device of the exporter's own namespace was deleted, or announced under `name`: what it
  // counted in `table` is set aside at once, before its ifindex can name another device.
  void OnLink(Table& table, uint32_t ifindex, const std::string& name, bool deleted, Excluded* excluded = nullptr) {
    net::DeviceId id{tracker_.OwnNetns(), ifindex};
    if (excluded) {  // a device made or renamed: skipped from its first packet if left out
      if (!deleted && !devices_.Selected(name)) {
        if (!excluded_.count(id) && excluded->Insert({id.netns, id.ifindex})) excluded_.insert(id);
      } else if (excluded_.erase(id)) {
        excluded->Erase({id.netns, id.ifindex});
      }
    }
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

  // An order of keys: by their 32-bit words, compared inline (memcmp calls were 9% of a scrape
  // of a full drops map).
  static bool KeyLess(const Key& a, const Key& b) {
    static_assert(sizeof(Key) % 4 == 0, "map keys are made of 32-bit words");
    uint32_t x[sizeof(Key) / 4], y[sizeof(Key) / 4];
    std::memcpy(x, &a, sizeof(Key));
    std::memcpy(y, &b, sizeof(Key));
    return std::lexicographical_compare(std::begin(x), std::end(x), std::begin(y), std::end(y));
  }

  // The order of Series by their device.
  static bool Before(const net::DeviceLabels& a, const net::DeviceLabels& b) {
    return std::tie(a.device, a.netns) < std::tie(b.device, b.netns);
  }

  // The programs skip `unselected` (seen in this read) and the devices skipped before that are
  // still there under a name the filter leaves out; no longer one that went away or was renamed
  // to a selected name. A full set leaves the rest to the scrape (their entries are erased then).
  void Exclude(Excluded& excluded, std::set<net::DeviceId> unselected) {
    std::map<uint32_t, std::optional<std::map<uint32_t, std::string>>> lists;  // one per namespace
    for (const auto& id : excluded_) {
      if (unselected.count(id)) continue;
      auto l = lists.find(id.netns);
      if (l == lists.end()) l = lists.emplace(id.netns, links_.Links(id.netns)).first;
      const auto& list = l->second;
      bool still = false;
      if (list) {
        auto d = list->find(id.ifindex);
        still = d != list->end() && !devices_.Selected(d->second);
      }
      if (still) {
        unselected.insert(id);
      } else {
        excluded.Erase({id.netns, id.ifindex});
      }
    }
    std::set<net::DeviceId> now;
    for (const auto& id : unselected) {
      if (excluded_.count(id) || excluded.Insert({id.netns, id.ifindex})) now.insert(id);
    }
    excluded_ = std::move(now);
  }

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
  std::set<net::DeviceId> excluded_;  // in the programs' set of devices to skip
  uint64_t entries_ = 0;
};

}  // namespace vnet::collectors
