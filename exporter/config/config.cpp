#include "config/config.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace vnet::config {
namespace {

// Walks a YAML document keeping the file name and the dotted key path for error messages.
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

void ParseDevices(const Reader& r, Devices& d) {
  r.ExpectMap({"include", "exclude", "grace_period"});
  if (auto c = r.Child("include")) d.include = c->StringList();
  if (auto c = r.Child("exclude")) d.exclude = c->StringList();
  if (auto c = r.Child("grace_period")) d.grace_period = c->Seconds();
}

void ParseCollectors(const Reader& r, Config& cfg) {
  r.ExpectMap({"drops", "tap", "interface", "ovs", "upcall"});
  if (auto drops = r.Child("drops")) {
    drops->ExpectMap({"enabled", "max_entries"});
    if (auto c = drops->Child("enabled")) cfg.drops.enabled = c->Bool();
    if (auto c = drops->Child("max_entries")) cfg.drops.max_entries = c->Uint(64, 1u << 22);
  }
  if (auto tap = r.Child("tap")) {
    tap->ExpectMap({"enabled", "max_inflight", "max_series", "inflight_timeout", "bucket_min", "bucket_max"});
    auto& t = cfg.tap;
    if (auto c = tap->Child("enabled")) t.enabled = c->Bool();
    if (auto c = tap->Child("max_inflight")) t.max_inflight = c->Uint(64, 1u << 22);
    if (auto c = tap->Child("max_series")) t.max_series = c->Uint(16, 1u << 20);
    if (auto c = tap->Child("inflight_timeout")) {
      t.inflight_timeout = c->Seconds();
      if (t.inflight_timeout.count() < 1) c->Fail("must be at least 1s");
    }
    auto min = tap->Child("bucket_min"), max = tap->Child("bucket_max");
    if (min) {
      t.bucket_min = min->Duration();
      if (t.bucket_min < std::chrono::microseconds(1)) min->Fail("must be at least 1us");
    }
    if (max) {
      t.bucket_max = max->Duration();
      // The kernel's last bounded slot is 2^25 us.
      if (t.bucket_max > std::chrono::microseconds(1 << 25)) max->Fail("must be at most 33s");
    }
    // Checked whichever of the two was given: a range with no bucket exports only +Inf.
    if (t.bucket_max <= t.bucket_min) {
      (max ? *max : *min).Fail("bucket_max must be above bucket_min (" + std::to_string(t.bucket_min.count()) +
                               "ns, bucket_max " + std::to_string(t.bucket_max.count()) + "ns)");
    }
  }
  if (auto i = r.Child("interface")) {
    i->ExpectMap({"enabled", "libvirt_dir", "ovsdb_socket", "ovsdb_timeout"});
    auto& c = cfg.interface;
    if (auto v = i->Child("enabled")) c.enabled = v->Bool();
    if (auto v = i->Child("libvirt_dir")) c.libvirt_dir = v->String();
    if (auto v = i->Child("ovsdb_socket")) c.ovsdb_socket = v->String();
    if (auto v = i->Child("ovsdb_timeout")) {
      c.ovsdb_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(v->Duration());
      if (c.ovsdb_timeout < std::chrono::milliseconds(1) || c.ovsdb_timeout > std::chrono::seconds(10)) {
        v->Fail("must be between 1ms and 10s");
      }
    }
  }
  if (auto u = r.Child("upcall")) {
    u->ExpectMap({"enabled", "max_inflight", "max_series", "inflight_timeout"});
    auto& c = cfg.upcall;
    if (auto v = u->Child("enabled")) c.enabled = v->Bool();
    if (auto v = u->Child("max_inflight")) c.max_inflight = v->Uint(64, 1u << 22);
    if (auto v = u->Child("max_series")) c.max_series = v->Uint(16, 1u << 20);
    if (auto v = u->Child("inflight_timeout")) {
      c.inflight_timeout = v->Seconds();
      if (c.inflight_timeout.count() < 1) v->Fail("must be at least 1s");
    }
  }
  if (auto o = r.Child("ovs")) {
    o->ExpectMap({"enabled", "rundir", "timeout"});
    auto& c = cfg.ovs;
    if (auto v = o->Child("enabled")) c.enabled = v->Bool();
    if (auto v = o->Child("rundir")) c.rundir = v->String();
    if (auto v = o->Child("timeout")) {
      c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(v->Duration());
      if (c.timeout < std::chrono::milliseconds(1) || c.timeout > std::chrono::seconds(10)) {
        v->Fail("must be between 1ms and 10s");
      }
    }
  }
}

Config FromYaml(const YAML::Node& root, const std::string& file) {
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
  if (auto c = top.Child("collectors")) ParseCollectors(*c, cfg);
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

Config Parse(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    auto docs = YAML::LoadAll(text);
    // A second document would be ignored: what it says would silently not apply.
    if (docs.size() > 1) throw Error(file + ":" + std::to_string(docs[1].Mark().line + 1) + ": a second YAML document");
    if (!docs.empty()) root = docs[0];
  } catch (const YAML::ParserException& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  try {
    return FromYaml(root, file);
  } catch (const YAML::Exception& e) {  // a conversion the checks above did not foresee
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Config Load(const std::string& path) {
  // A regular file only (not a directory, FIFO or device), opened without blocking, read to a bound.
  constexpr std::size_t kMaxSize = 1 << 20;
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open the configuration file: " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw Error(path + ": the configuration file is not a regular file");
  }
  std::string text(kMaxSize + 1, '\0');
  std::size_t len = 0;
  for (ssize_t n; len < text.size() && (n = read(fd, &text[len], text.size() - len)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      throw Error(path + ": cannot read the configuration file: " + strerror(err));
    }
    len += n;
  }
  close(fd);
  if (len > kMaxSize) throw Error(path + ": the configuration file is larger than 1 MiB");
  text.resize(len);
  return Parse(text, path);
}

}  // namespace vnet::config
