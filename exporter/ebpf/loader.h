// Loads a skeleton with the first of its alternative programs that the kernel accepts.
#pragma once

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ebpf/probe.h"

namespace vnet::ebpf {

using LinkPtr = std::unique_ptr<struct bpf_link, decltype(&bpf_link__destroy)>;

template <class Skel>
struct SkelOps {
  Skel* (*open)(const struct bpf_object_open_opts*);
  int (*load)(Skel*);
  void (*destroy)(Skel*);
};

// One way to attach a probe: its programs, all attached or none.
template <class Skel>
struct Alternative {
  std::string attach_type;
  std::function<std::vector<struct bpf_program*>(Skel*)> programs;
};

// A loaded skeleton and the links of the alternative that attached.
template <class Skel>
class Loaded : public Attachment {
 public:
  Loaded(std::unique_ptr<Skel, void (*)(Skel*)> skel, std::string attach_type, std::vector<struct bpf_program*> programs)
      : skel_(std::move(skel)), attach_type_(std::move(attach_type)), programs_(std::move(programs)) {}

  Skel* skel() const { return skel_.get(); }
  const std::string& attach_type() const { return attach_type_; }

  std::vector<Program> Programs() const {
    std::vector<Program> out;
    for (auto* p : programs_) out.push_back({bpf_program__name(p), bpf_program__fd(p)});
    return out;
  }

  // Attaches every program, or none: "" or why not.
  std::string Attach() {
    links_.clear();
    for (auto* p : programs_) {
      links_.emplace_back(bpf_program__attach(p), bpf_link__destroy);
      if (!links_.back()) {
        std::string why = attach_type_ + ": attach " + bpf_program__name(p) + ": " + std::strerror(errno);
        links_.clear();
        return why;
      }
    }
    return "";
  }

 private:
  std::unique_ptr<Skel, void (*)(Skel*)> skel_;
  std::vector<LinkPtr> links_;  // destroyed before skel_ (declared after it)
  std::string attach_type_;
  std::vector<struct bpf_program*> programs_;
};

// Opens the skeleton once per alternative, autoloads only that alternative's programs, lets
// `configure` set rodata and map sizes, loads and attaches. The first that attaches wins;
// a failed load cannot be retried on the same object, hence a fresh open each time.
// Alternatives whose attach type is in `disabled` are skipped. Null, with every alternative's
// failure in `error`, when none attached.
template <class Skel>
std::unique_ptr<Loaded<Skel>> LoadFirst(const SkelOps<Skel>& ops, const std::string& btf_path,
                                        const std::vector<std::string>& disabled,
                                        const std::vector<Alternative<Skel>>& alts,
                                        const std::function<void(Skel*)>& configure, std::string& error) {
  LIBBPF_OPTS(bpf_object_open_opts, opts);
  if (!btf_path.empty()) opts.btf_custom_path = btf_path.c_str();
  error.clear();
  for (const auto& alt : alts) {
    if (std::find(disabled.begin(), disabled.end(), alt.attach_type) != disabled.end()) {
      error += alt.attach_type + ": disabled by bpf.disabled_attach_types; ";
      continue;
    }
    std::unique_ptr<Skel, void (*)(Skel*)> skel(ops.open(&opts), ops.destroy);
    if (!skel) {
      error += alt.attach_type + ": open: " + std::strerror(errno) + "; ";
      continue;
    }
    // Alternatives may share a program (a kretprobe): off for all first, then on for this one.
    for (const auto& other : alts) {
      for (auto* p : other.programs(skel.get())) bpf_program__set_autoload(p, false);
    }
    for (auto* p : alt.programs(skel.get())) bpf_program__set_autoload(p, true);
    configure(skel.get());
    if (int err = ops.load(skel.get())) {
      error += alt.attach_type + ": load: " + std::strerror(-err) + "; ";
      continue;
    }
    auto programs = alt.programs(skel.get());
    auto loaded = std::make_unique<Loaded<Skel>>(std::move(skel), alt.attach_type, std::move(programs));
    if (std::string failed = loaded->Attach(); !failed.empty()) {
      error += failed + "; ";
      continue;
    }
    error.clear();
    return loaded;
  }
  if (error.size() >= 2) error.resize(error.size() - 2);
  return nullptr;
}

// The probe set of `loaded` (null: none) with the collector's views of its maps, made by
// `tables(skel)`. Null, with the reason in `error`, when a map is not what the views expect.
template <class Tables, class Skel, class MakeTables>
std::unique_ptr<Probe<Tables>> MakeProbe(std::unique_ptr<Loaded<Skel>> loaded, const MakeTables& tables,
                                         std::string& error) {
  if (!loaded) return nullptr;
  auto p = std::make_unique<Probe<Tables>>();
  try {
    p->tables = tables(loaded->skel());
  } catch (const std::exception& e) {
    error = e.what();
    return nullptr;
  }
  p->attach_type = loaded->attach_type();
  p->programs = loaded->Programs();
  p->object = std::move(loaded);
  return p;
}

}  // namespace vnet::ebpf
