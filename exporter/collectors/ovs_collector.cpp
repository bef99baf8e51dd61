#include "collectors/ovs_collector.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <optional>
#include <string_view>

#include "config/reader.h"
#include "io/file.h"
#include "metrics/family.h"
#include "net/jsonrpc.h"

namespace vnet::collectors {
namespace {

const std::string kName = "ovs";

// The coverage events that tell about upcall handling, and their metric names. OVS lists only
// events that happened; a listed one that never happened is 0.
const std::vector<std::pair<std::string, std::string>> kCoverage = {
    {"upcall_flow_limit_hit", "vnet_ovs_upcall_flow_limit_hits_total"},
    {"upcall_flow_limit_kill", "vnet_ovs_upcall_flow_limit_kills_total"},
    {"upcall_ukey_contention", "vnet_ovs_upcall_ukey_contentions_total"},
    {"handler_duplicate_upcall", "vnet_ovs_handler_duplicate_upcalls_total"},
    {"netlink_overflow", "vnet_ovs_netlink_overflows_total"},
};
const std::string kDropAction = "drop_action_";

}  // namespace

namespace {

// Line-by-line parsing by hand: replies are ovs-vswitchd's to write, and std::regex recurses per
// character (a long line overflowed a worker's stack).

std::string_view Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

// The number at the start of `s` ("0.00%" -> 0), or nullopt.
std::optional<double> LeadingNumber(std::string_view s) {
  double v;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  return v;
}

bool IsWord(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// "system@ovs-system:" at the start of a line: the datapath's type and name.
std::optional<std::pair<std::string, std::string>> DatapathHeader(std::string_view line) {
  if (line.empty() || line.back() != ':' || line.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
  const auto at = line.find('@');
  if (at == std::string_view::npos) return std::nullopt;
  auto type = line.substr(0, at), name = line.substr(at + 1, line.size() - at - 2);
  if (!IsWord(type) || name.empty()) return std::nullopt;
  return std::pair{std::string(type), std::string(name)};
}

// Visits each line of `text`.
template <class F>
void Lines(std::string_view text, F&& f) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    f(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

// The number after `(<name> ` in `line`: "(current 12)".
std::optional<double> Parenthesized(std::string_view line, std::string_view name) {
  const std::string open = "(" + std::string(name) + " ";
  const auto at = line.find(open);
  if (at == std::string_view::npos) return std::nullopt;
  return LeadingNumber(line.substr(at + open.size()));
}

}  // namespace

std::map<std::string, OvsDatapath> ParseDpctlShow(const std::string& text) {
  // "netdev@ovs-netdev:", then indented "lookups: hit:5 missed:9 lost:0", "flows: 9",
  // "masks: hit:0 total:0 hit/pkt:0.00", "cache: hit:0 hit-rate:0.00%", ports...
  std::map<std::string, OvsDatapath> out;
  OvsDatapath* dp = nullptr;
  Lines(text, [&](std::string_view line) {
    if (auto h = DatapathHeader(line)) {
      dp = &out[h->second];
      dp->type = h->first;
      return;
    }
    if (!dp || line.empty() || (line[0] != ' ' && line[0] != '\t')) return;
    line = Trim(line);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return;
    const std::string name(line.substr(0, colon));
    if (name != "lookups" && name != "flows" && name != "masks" && name != "cache") return;
    std::string_view rest = Trim(line.substr(colon + 1));
    if (name == "flows") {
      if (auto v = LeadingNumber(rest)) dp->values["flows"] = *v;
      return;
    }
    // "key:value" tokens separated by spaces.
    while (!rest.empty()) {
      const auto space = rest.find(' ');
      const std::string_view token = rest.substr(0, space);
      rest = space == std::string_view::npos ? std::string_view{} : Trim(rest.substr(space));
      const auto sep = token.find(':');
      if (sep == std::string_view::npos || sep == 0) continue;
      if (auto v = LeadingNumber(token.substr(sep + 1))) dp->values[name + "." + std::string(token.substr(0, sep))] = *v;
    }
  });
  return out;
}

void ParseUpcallShow(const std::string& text, std::map<std::string, OvsDatapath>& into) {
  // "system@ovs-system:", "  flows         : (current 0) (avg 0) (max 0) (limit 200000)",
  // "  dump duration : 1ms", then one "  <id>: (keys N)" line per revalidator.
  OvsDatapath* dp = nullptr;
  Lines(text, [&](std::string_view line) {
    if (auto h = DatapathHeader(line)) {
      dp = &into[h->second];
      dp->type = h->first;
      return;
    }
    if (!dp) return;
    line = Trim(line);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return;
    const std::string_view name = Trim(line.substr(0, colon)), rest = Trim(line.substr(colon + 1));
    if (name == "flows") {
      const auto current = Parenthesized(rest, "current"), avg = Parenthesized(rest, "avg"),
                 max = Parenthesized(rest, "max"), limit = Parenthesized(rest, "limit");
      if (!current || !avg || !max || !limit) return;
      dp->values["upcall.current"] = *current;
      dp->values["upcall.avg"] = *avg;
      dp->values["upcall.max"] = *max;
      dp->values["upcall.limit"] = *limit;
    } else if (name == "dump duration" && rest.ends_with("ms")) {
      if (auto v = LeadingNumber(rest)) dp->values["upcall.dump_duration"] = *v / 1000;
    }
  });
}

std::map<std::string, double> ParseCoverageShow(const std::string& text) {
  // "netlink_overflow    0.0/sec     0.000/sec        0.0003/sec   total: 12"
  std::map<std::string, double> out;
  Lines(text, [&](std::string_view line) {
    const auto space = line.find(' ');
    const auto total = line.rfind("total: ");
    if (space == std::string_view::npos || total == std::string_view::npos || total < space) return;
    const std::string_view event = line.substr(0, space), count = Trim(line.substr(total + 7));
    if (!IsWord(event) || count.empty() || !std::all_of(count.begin(), count.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return;
    }
    if (auto v = LeadingNumber(count)) out[std::string(event)] = *v;
  });
  return out;
}

void OvsCollector::Settings::Parse(const config::Reader& r) {
  r.ExpectMap({"enabled", "rundir", "timeout", "max_reply_bytes"});
  if (auto v = r.Child("enabled")) enabled = v->Bool();
  if (auto v = r.Child("rundir")) rundir = v->String();
  if (auto v = r.Child("timeout")) {
    timeout = std::chrono::duration_cast<std::chrono::milliseconds>(v->Duration());
    if (timeout < std::chrono::milliseconds(1) || timeout > std::chrono::seconds(10)) v->Fail("must be between 1ms and 10s");
  }
  if (auto v = r.Child("max_reply_bytes")) max_reply_bytes = v->Uint(4096, 1u << 28);
}

OvsCollector::OvsCollector(const Settings& settings, std::string proc) : cfg_(settings), proc_(std::move(proc)) {}

std::unique_ptr<Collector> OvsCollector::Make(const config::Config& cfg, net::LinkSource&) {
  return std::make_unique<OvsCollector>(cfg.Get<Settings>());
}

const std::string& OvsCollector::Name() const { return kName; }

std::vector<prometheus::MetricFamily> OvsCollector::Collect() const {
  using prometheus::MetricType;
  // The pid file is read at every scrape: a restarted ovs-vswitchd has a new pid and socket.
  const std::string pidfile = cfg_.rundir + "/ovs-vswitchd.pid";
  const std::string pid = io::ReadFirstLine(pidfile);
  if (pid.empty()) throw std::runtime_error(pidfile + ": no ovs-vswitchd pid (not running?)");
  // It names the socket: digits only, or a path could be made of it.
  if (pid.size() > 10 || pid.find_first_not_of("0123456789") != std::string::npos) {
    throw std::runtime_error(pidfile + ": not a pid");
  }
  const std::string socket = cfg_.rundir + "/ovs-vswitchd." + pid + ".ctl";
  // One deadline for the three calls: a stuck daemon costs a scrape `timeout`, not three.
  const auto deadline = std::chrono::steady_clock::now() + cfg_.timeout;
  auto call = [&](const std::string& method) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw net::JsonRpcError(socket + ": " + method + ": collectors.ovs.timeout used up");
    auto result = net::JsonRpcCall(socket, method, nlohmann::json::array(), left, cfg_.max_reply_bytes);
    if (!result.is_string()) throw net::JsonRpcError(socket + ": " + method + ": reply is not text");
    return result.get<std::string>();
  };
  auto dps = ParseDpctlShow(call("dpctl/show"));
  ParseUpcallShow(call("upcall/show"), dps);
  auto coverage = ParseCoverageShow(call("coverage/show"));

  struct Gauge {
    const char* key;
    const char* name;
    const char* help;
    MetricType type;
  };
  static const Gauge kDatapath[] = {
      {"flows", "vnet_ovs_datapath_flows", "Flows in the datapath (dpctl/show flows).", MetricType::Gauge},
      {"masks.hit", "vnet_ovs_datapath_mask_hits_total", "Masks visited by datapath flow lookups (dpctl/show masks hit).",
       MetricType::Counter},
      {"masks.total", "vnet_ovs_datapath_masks", "Masks in the datapath's flow table (dpctl/show masks total).",
       MetricType::Gauge},
      {"cache.hit", "vnet_ovs_datapath_cache_hits_total",
       "Lookups answered by the datapath's mask cache (dpctl/show cache hit).", MetricType::Counter},
      {"upcall.current", "vnet_ovs_upcall_flows", "Datapath flows ovs-vswitchd knows (upcall/show current).",
       MetricType::Gauge},
      {"upcall.avg", "vnet_ovs_upcall_flows_average", "Average of the flow count over dumps (upcall/show avg).",
       MetricType::Gauge},
      {"upcall.max", "vnet_ovs_upcall_flows_max", "Highest flow count seen (upcall/show max).", MetricType::Gauge},
      {"upcall.limit", "vnet_ovs_upcall_flow_limit",
       "Flows ovs-vswitchd allows in the datapath now; it shrinks when dumps are slow (upcall/show limit).",
       MetricType::Gauge},
      {"upcall.dump_duration", "vnet_ovs_upcall_dump_duration_seconds",
       "Duration of the last revalidator dump of the datapath flows (upcall/show dump duration).", MetricType::Gauge},
  };
  std::vector<prometheus::MetricFamily> out;
  auto lookups = metrics::Family("vnet_ovs_datapath_lookups_total",
                                 "Datapath flow lookups of packets: hit a flow, missed (sent to ovs-vswitchd as an "
                                 "upcall), lost (the upcall failed) (dpctl/show lookups).",
                                 MetricType::Counter);
  for (const auto& [name, dp] : dps) {
    for (const char* result : {"hit", "missed", "lost"}) {
      auto v = dp.values.find(std::string("lookups.") + result);
      if (v != dp.values.end()) metrics::AddCounter(lookups, {{"datapath", name}, {"result", result}}, v->second);
    }
  }
  out.push_back(std::move(lookups));
  for (const auto& g : kDatapath) {
    auto f = metrics::Family(g.name, g.help, g.type);
    for (const auto& [name, dp] : dps) {
      auto v = dp.values.find(g.key);
      if (v == dp.values.end()) continue;
      auto& m = metrics::Add(f, {{"datapath", name}});
      (g.type == MetricType::Counter ? m.counter.value : m.gauge.value) = v->second;
    }
    out.push_back(std::move(f));
  }

  for (const auto& [event, name] : kCoverage) {
    auto f = metrics::Family(name, "ovs-vswitchd coverage counter " + event + " (coverage/show).", MetricType::Counter);
    auto v = coverage.find(event);
    metrics::AddCounter(f, {}, v == coverage.end() ? 0 : v->second);
    out.push_back(std::move(f));
  }
  auto drops = metrics::Family("vnet_ovs_drop_actions_total",
                               "Packets ovs-vswitchd's translation dropped, by reason (coverage drop_action_<reason>; "
                               "a reason appears once it happened).",
                               MetricType::Counter);
  for (const auto& [event, v] : coverage) {
    if (event.rfind(kDropAction, 0) == 0) metrics::AddCounter(drops, {{"reason", event.substr(kDropAction.size())}}, v);
  }
  out.push_back(std::move(drops));

  // Thread names are set by ovs-vswitchd: "handler<N>", "revalidator<N>".
  int handlers = 0, revalidators = 0;
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator(proc_ + "/" + pid + "/task", ec)) {
    const std::string comm = io::ReadFirstLine(t.path() / "comm");
    handlers += comm.rfind("handler", 0) == 0;
    revalidators += comm.rfind("revalidator", 0) == 0;
  }
  auto threads = metrics::Family("vnet_ovs_threads", "ovs-vswitchd's upcall handler and revalidator threads.",
                                 MetricType::Gauge);
  metrics::AddGauge(threads, {{"kind", "handler"}}, handlers);
  metrics::AddGauge(threads, {{"kind", "revalidator"}}, revalidators);
  out.push_back(std::move(threads));
  return out;
}

}  // namespace vnet::collectors
