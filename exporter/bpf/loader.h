// Loads a skeleton with the first of its alternative programs that the kernel accepts.
#pragma once

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vnet::bpf {

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

template <class Skel>
struct Loaded {
  std::unique_ptr<Skel, void (*)(Skel*)> skel{nullptr, nullptr};
  std::vector<LinkPtr> links;  // destroyed before skel (declared after it)
  std::string attach_type;
  std::string error;  // every alternative's failure, when none attached
  std::vector<struct bpf_program*> programs;
};

// Opens the skeleton once per alternative, autoloads only that alternative's program, lets
// `configure` set rodata and map sizes, loads and attaches. The first that attaches wins;
// a failed load cannot be retried on the same object, hence a fresh open each time.
// Alternatives whose attach type is in `disabled` are skipped.
template <class Skel>
Loaded<Skel> LoadFirst(const SkelOps<Skel>& ops, const std::string& btf_path, const std::vector<std::string>& disabled,
                       const std::vector<Alternative<Skel>>& alts, const std::function<void(Skel*)>& configure) {
  LIBBPF_OPTS(bpf_object_open_opts, opts);
  if (!btf_path.empty()) opts.btf_custom_path = btf_path.c_str();
  Loaded<Skel> out;
  for (const auto& alt : alts) {
    if (std::find(disabled.begin(), disabled.end(), alt.attach_type) != disabled.end()) {
      out.error += alt.attach_type + ": disabled by bpf.disabled_attach_types; ";
      continue;
    }
    std::unique_ptr<Skel, void (*)(Skel*)> skel(ops.open(&opts), ops.destroy);
    if (!skel) {
      out.error += alt.attach_type + ": open: " + std::strerror(errno) + "; ";
      continue;
    }
    // Alternatives may share a program (a kretprobe): off for all first, then on for this one.
    for (const auto& other : alts) {
      for (auto* p : other.programs(skel.get())) bpf_program__set_autoload(p, false);
    }
    for (auto* p : alt.programs(skel.get())) bpf_program__set_autoload(p, true);
    configure(skel.get());
    if (int err = ops.load(skel.get())) {
      out.error += alt.attach_type + ": load: " + std::strerror(-err) + "; ";
      continue;
    }
    std::vector<LinkPtr> links;
    std::string failed;
    for (auto* p : alt.programs(skel.get())) {
      links.emplace_back(bpf_program__attach(p), bpf_link__destroy);
      if (!links.back()) {
        failed = alt.attach_type + ": attach " + bpf_program__name(p) + ": " + std::strerror(errno) + "; ";
        break;
      }
    }
    if (!failed.empty()) {
      out.error += failed;
      continue;
    }
    out.skel = std::move(skel);
    out.links = std::move(links);
    out.attach_type = alt.attach_type;
    out.programs = alt.programs(out.skel.get());
    out.error.clear();
    return out;
  }
  if (out.error.size() >= 2) out.error.resize(out.error.size() - 2);
  return out;
}

}  // namespace vnet::bpf
