// Walks a YAML document strictly, keeping the file name and the dotted key path so that every
// error names file, line and key. Collectors parse their own sections with it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <sstream>
#include <string>
#include <vector>

#include "config/error.h"

namespace vnet::config {

class Reader {
 public:
  Reader(std::string file, YAML::Node node, std::string path)
      : file_(std::move(file)), node_(std::move(node)), path_(std::move(path)) {}

  [[noreturn]] void Fail(const std::string& what) const {
    std::ostringstream os;
    os << file_;
    if (node_.Mark().line >= 0) os << ":" << node_.Mark().line + 1;
    os << ": " << (path_.empty() ? "(top level)" : path_) << ": " << what;
    throw Error(os.str());
  }

  // A mapping whose keys must all be in `allowed`; a null node counts as an empty mapping.
  void ExpectMap(const std::set<std::string>& allowed) const {
    if (node_.IsNull()) return;
    if (!node_.IsMap()) Fail("expected a mapping");
    std::set<std::string> seen;
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar()) Reader(file_, kv.first, path_).Fail("a key must be a plain name");
      const std::string& key = kv.first.Scalar();
      if (!allowed.count(key)) Reader(file_, kv.first, Join(key)).Fail("unknown key");
      // yaml-cpp keeps the first of two equal keys: the second would go unchecked and unused.
      if (!seen.insert(key).second) Reader(file_, kv.first, Join(key)).Fail("duplicate key");
    }
  }

  // The child `key`, or an undefined-but-safe reader when absent.
  std::optional<Reader> Child(const std::string& key) const {
    if (!node_.IsMap() || !node_[key]) return std::nullopt;
    return Reader(file_, node_[key], Join(key));
  }

  // The entries of a mapping whose keys are the user's own (user names, header names).
  std::vector<std::pair<std::string, Reader>> Entries() const {
    if (node_.IsNull()) return {};
    if (!node_.IsMap()) Fail("expected a mapping");
    std::vector<std::pair<std::string, Reader>> out;
    std::set<std::string> seen;
    for (const auto& kv : node_) {
      if (!kv.first.IsScalar()) Reader(file_, kv.first, path_).Fail("a key must be a plain name");
      const std::string& key = kv.first.Scalar();
      if (!seen.insert(key).second) Reader(file_, kv.first, Join(key)).Fail("duplicate key");
      out.emplace_back(key, Reader(file_, kv.second, Join(key)));
    }
    return out;
  }

  bool Bool() const {
    bool v;
    if (!node_.IsScalar() || !YAML::convert<bool>::decode(node_, v)) Fail("expected true or false");
    return v;
  }

  uint64_t Uint(uint64_t min, uint64_t max) const {
    if (!node_.IsScalar()) Fail("expected an integer");
    const std::string& s = node_.Scalar();
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
      Fail("expected an integer, got \"" + s + "\"");
    }
    uint64_t v;
    try {
      v = std::stoull(s);
    } catch (const std::exception&) {
      Fail("integer out of range: " + s);
    }
    if (v < min || v > max) {
      Fail("must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + s);
    }
    return v;
  }

  std::string String() const {
    if (!node_.IsScalar()) Fail("expected a string");
    return node_.Scalar();
  }

  std::vector<std::string> StringList() const {
    if (node_.IsNull()) return {};
    if (!node_.IsSequence()) Fail("expected a list of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < node_.size(); i++) {
      Reader item(file_, node_[i], path_ + "[" + std::to_string(i) + "]");
      std::string s = item.String();
      if (s.empty()) item.Fail("empty pattern");
      out.push_back(s);
    }
    return out;
  }

  // Prometheus-style duration: a whole number and a unit, us, ms, s, m or h ("30s", "5m").
  std::chrono::nanoseconds Duration() const {
    static const std::map<std::string, std::chrono::nanoseconds> units = {
        {"us", std::chrono::microseconds(1)}, {"ms", std::chrono::milliseconds(1)}, {"s", std::chrono::seconds(1)},
        {"m", std::chrono::minutes(1)},       {"h", std::chrono::hours(1)}};
    std::string s = String();
    std::size_t digits = s.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string::npos || digits > 12) {
      Fail("expected a duration such as 30s, 5m or 1h, got \"" + s + "\"");
    }
    auto unit = units.find(s.substr(digits));
    if (unit == units.end()) Fail("unknown duration unit in \"" + s + "\" (use us, ms, s, m or h)");
    const uint64_t n = std::stoull(s.substr(0, digits));
    // Nanoseconds in an int64 last 292 years; a longer duration would wrap around.
    if (n > static_cast<uint64_t>(std::chrono::nanoseconds::max() / unit->second)) Fail("duration too long: " + s);
    return static_cast<int64_t>(n) * unit->second;
  }

  std::chrono::seconds Seconds() const {
    auto d = Duration();
    if (d % std::chrono::seconds(1) != std::chrono::nanoseconds(0)) Fail("must be whole seconds");
    return std::chrono::duration_cast<std::chrono::seconds>(d);
  }

 private:
  std::string Join(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  std::string file_;
  YAML::Node node_;
  std::string path_;
};

// The one YAML document of `text` (a null node when empty); `file` names it in errors. Throws
// Error for invalid YAML and for a second document (what it said would silently not apply).
YAML::Node ParseYaml(const std::string& text, const std::string& file);

}  // namespace vnet::config
