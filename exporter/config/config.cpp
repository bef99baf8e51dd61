#include "config/config.h"

#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

#include "config/reader.h"
#include "io/file.h"

namespace vnet::config {
namespace {

void ParseDevices(const Reader& r, Devices& d) {
  r.ExpectMap({"include", "exclude", "grace_period"});
  if (auto c = r.Child("include")) d.include = c->StringList();
  if (auto c = r.Child("exclude")) d.exclude = c->StringList();
  if (auto c = r.Child("grace_period")) d.grace_period = c->Seconds();
}

Config FromYaml(const YAML::Node& root, const std::string& file, const std::vector<SectionType>& sections) {
  Config cfg;
  Reader top(file, root, "");
  top.ExpectMap({"bpf", "devices", "collectors"});
  if (auto bpf = top.Child("bpf")) {
    bpf->ExpectMap({"btf_path", "disabled_attach_types"});
    if (auto c = bpf->Child("btf_path")) cfg.btf_path = c->String();
    if (auto c = bpf->Child("disabled_attach_types")) {
      cfg.disabled_attach_types = c->StringList();
      for (const auto& t : cfg.disabled_attach_types) {
        if (std::find(kAttachTypes.begin(), kAttachTypes.end(), t) == kAttachTypes.end()) {
          c->Fail("unknown attach type \"" + t + "\" (known: tp_btf, raw_tp, kprobe)");
        }
      }
    }
  }
  if (auto d = top.Child("devices")) ParseDevices(*d, cfg.devices);
  auto c = top.Child("collectors");
  std::set<std::string> names;
  for (const auto& t : sections) names.insert(t.name);
  if (c) c->ExpectMap(names);
  for (const auto& t : sections) {
    auto r = c ? c->Child(t.name) : std::nullopt;
    cfg.collectors[t.name] = t.parse(r ? &*r : nullptr);
  }
  return cfg;
}

}  // namespace

bool Devices::Selected(const std::string& name) const {
  auto matches = [&](const std::vector<std::string>& globs) {
    for (const auto& g : globs) {
      if (fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
    }
    return false;
  };
  return matches(include) && !matches(exclude);
}

namespace {

// Where each document starts, without building them.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

YAML::Node ParseYaml(const std::string& text, const std::string& file) {
  try {
    // Documents counted up to two, not with YAML::LoadAll, which never ends on some inputs (a
    // lone ",") and exhausts memory.
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts docs;
    while (docs.starts.size() < 2 && parser.HandleNextDocument(docs)) {
    }
    if (docs.starts.size() > 1) {
      const YAML::Mark& second = docs.starts[1];
      // yaml-cpp starts a "document" again at the same place when it cannot go on.
      throw Error(file + ":" + std::to_string(second.line + 1) +
                  (second.pos == docs.starts[0].pos ? ": invalid YAML" : ": a second YAML document"));
    }
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
}

Config Parse(const std::string& text, const std::string& file, const std::vector<SectionType>& sections) {
  YAML::Node root = ParseYaml(text, file);
  try {
    return FromYaml(root, file, sections);
  } catch (const YAML::Exception& e) {  // a conversion the checks above did not foresee
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Config Load(const std::string& path, const std::vector<SectionType>& sections) {
  try {
    return Parse(io::ReadFile(path, 1 << 20), path, sections);
  } catch (const io::FileError& e) {
    throw Error(e.what());
  }
}

}  // namespace vnet::config
