// One attached probe set as its collector holds it: the BPF object and its links, and what the
// collector reads from its maps, owned together so that nothing read can outlive the object.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace vnet::ebpf {

// A loaded BPF object and the links that attach its programs (the loader's Loaded<Skel>;
// nothing in unit tests). Destroying it detaches the programs and frees the maps.
class Attachment {
 public:
  virtual ~Attachment() = default;
};

struct Program {
  std::string name;
  int fd = -1;
};

// `Tables` is the collector's own struct of map views (ebpf::CounterTable and counters). A
// collector holds a std::unique_ptr<Probe<Tables>>: null is the one "not loaded" state.
template <class Tables>
struct Probe {
  std::unique_ptr<Attachment> object;  // declared before `tables`: destroyed after them
  Tables tables;
  std::string attach_type;
  std::vector<Program> programs;
};

}  // namespace vnet::ebpf
