// Exporter configuration: parsed strictly from YAML, every error names file, line and key.
// This floor knows the common sections (bpf, devices); each collector defines and parses its
// own section (collectors.<name>) next to its code, and hands the parser in (collectors/registry.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/error.h"

namespace vnet::config {

class Reader;

struct Devices {
  std::vector<std::string> include{"*"};  // shell globs matched against the interface name
  std::vector<std::string> exclude;
  std::chrono::seconds grace_period{std::chrono::minutes(5)};

  // True when a device of this name is reported.
  bool Selected(const std::string& name) const;
  // True when some device can be left out (include is not just "*", or exclude is not empty).
  bool Filters() const { return include != std::vector<std::string>{"*"} || !exclude.empty(); }
};

// Ways a program can be attached; each probe tries its own alternatives in its order.
inline const std::vector<std::string> kAttachTypes = {"tp_btf", "raw_tp", "kprobe"};

// A collector's section, collectors.<name>: a collector derives its settings from it, with a
// `static constexpr const char* kName` and a `void Parse(const Reader&)`.
struct Section {
  virtual ~Section() = default;
  bool enabled = true;
};

// How to read one collector's section; `reader` is null when the file has none (defaults).
struct SectionType {
  std::string name;
  std::function<std::shared_ptr<Section>(const Reader* reader)> parse;
};

struct Config {
  std::string btf_path;  // empty: the running kernel's /sys/kernel/btf/vmlinux
  std::vector<std::string> disabled_attach_types;  // never used, e.g. to avoid a broken kernel feature
  Devices devices;
  std::map<std::string, std::shared_ptr<const Section>> collectors;  // every known collector's, by name

  // The settings of collector S; its defaults when the configuration has none (in tests).
  template <class S>
  const S& Get() const {
    auto it = collectors.find(S::kName);
    if (it == collectors.end()) {
      static const S defaults;
      return defaults;
    }
    return dynamic_cast<const S&>(*it->second);
  }
};

// The default configuration, embedded in the binary (config/vnet_exporter.yaml).
std::string_view DefaultText();

// Parses `text`, the collectors' sections with `sections`; `file` is only used in error messages.
Config Parse(const std::string& text, const std::string& file, const std::vector<SectionType>& sections);

// Reads and parses a file: a regular file of at most 1 MiB.
Config Load(const std::string& path, const std::vector<SectionType>& sections);

}  // namespace vnet::config
