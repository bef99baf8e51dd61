// The ovs collector against a real ovs-vswitchd (userspace datapath, so it runs on any kernel):
// its values equal what ovs-appctl prints, new flows move them, and it survives the daemon's
// death, restart and a hang.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <regex>

#include "../support/netns.h"
#include "../support/ovs.h"
#include "collectors/exporter_collector.h"
#include "collectors/ovs_collector.h"

namespace vnet::testing {
namespace {

// The independent reference: ovs-appctl's own text, read with regexes of the test's own.
std::map<std::string, double> AppctlValues(const Vswitchd& vs, const std::string& dp) {
  std::map<std::string, double> out;
  std::smatch m;
  const std::string show = vs.Appctl("dpctl/show");
  if (std::regex_search(show, m, std::regex("lookups: hit:(\\d+) missed:(\\d+) lost:(\\d+)\\n  flows: (\\d+)"))) {
    out["vnet_ovs_datapath_lookups_total{result=hit}"] = std::stod(m[1]);
    out["vnet_ovs_datapath_lookups_total{result=missed}"] = std::stod(m[2]);
    out["vnet_ovs_datapath_lookups_total{result=lost}"] = std::stod(m[3]);
    out["vnet_ovs_datapath_flows"] = std::stod(m[4]);
  }
  const std::string upcall = vs.Appctl("upcall/show");
  if (std::regex_search(upcall, m, std::regex(dp + ":\\n.*\\(current (\\d+)\\) \\(avg (\\d+)\\) \\(max (\\d+)\\) "
                                                    "\\(limit (\\d+)\\)\\n  dump duration : (\\d+)ms"))) {
    out["vnet_ovs_upcall_flows"] = std::stod(m[1]);
    out["vnet_ovs_upcall_flows_average"] = std::stod(m[2]);
    out["vnet_ovs_upcall_flows_max"] = std::stod(m[3]);
    out["vnet_ovs_upcall_flow_limit"] = std::stod(m[4]);
    out["vnet_ovs_upcall_dump_duration_seconds"] = std::stod(m[5]) / 1000;
  }
  return out;
}

// The same values as the collector exports them for datapath `dp`.
std::map<std::string, double> ExporterValues(const std::vector<prometheus::MetricFamily>& families,
                                             const std::string& dp) {
  std::map<std::string, double> out;
  for (const auto& f : families) {
    for (const auto& m : f.metric) {
      std::string key = f.name, extra;
      bool ours = false;
      for (const auto& l : m.label) {
        if (l.name == "datapath") ours = l.value == dp;
        if (l.name == "result") extra = "{result=" + l.value + "}";
      }
      if (ours) out[key + extra] = f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return out;
}

double Success(const collectors::ExporterCollector& exporter) {
  return Value(exporter.Collect(), "vnet_exporter_collector_success", {{"collector", "ovs"}});
}

TEST(OvsTest, MatchesOvsAppctlAndSurvivesVswitchd) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: network namespaces";
  OvsBridge hosts(Prefix(), 77, "netdev");
  Vswitchd& vs = hosts.vs;

  collectors::OvsCollector::Settings cfg;
  cfg.rundir = vs.rundir();
  // Long enough for an emulated guest's ovs-vswitchd; a hang still costs only this per scrape.
  cfg.timeout = std::chrono::seconds(2);
  std::vector<std::unique_ptr<collectors::Collector>> list;
  list.push_back(std::make_unique<collectors::OvsCollector>(cfg));
  collectors::ExporterCollector exporter(std::move(list));
  const std::string dp = "ovs-netdev";

  // ovs-appctl, the exporter, ovs-appctl again: when both reference reads agree, nothing moved
  // in between and the exporter must have read exactly that. Except the dump duration: each
  // revalidator dump sets it anew and it can go 1 ms, 2 ms, 1 ms between the three reads (seen
  // under emulation), so it is only checked to be one ovs-vswitchd could report.
  const std::string dump = "vnet_ovs_upcall_dump_duration_seconds";
  // Bounded in time, not in tries: in an emulated guest a try takes seconds, and flows expiring
  // or ARP refreshes can keep the values moving for a minute.
  auto matching = [&] {
    std::string moved;  // what changed during the last try, for the failure message
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
         std::chrono::steady_clock::now() < deadline;) {
      auto before = AppctlValues(vs, dp);
      auto families = exporter.Collect();
      if (Value(families, "vnet_exporter_collector_success", {{"collector", "ovs"}}) != 1) {
        moved = "(the collector failed)";
        continue;
      }
      auto got = ExporterValues(families, dp);
      auto again = AppctlValues(vs, dp);
      if (again != before) {
        moved.clear();
        for (const auto& [k, v] : again) {
          if (before[k] != v) moved += " " + k + ": " + std::to_string(before[k]) + " -> " + std::to_string(v);
        }
        continue;
      }
      EXPECT_EQ(before.size(), 9u);
      for (const auto& [k, v] : before) {
        if (k == dump) continue;
        EXPECT_EQ(got[k], v) << k;
      }
      EXPECT_EQ(got.count(dump), 1u);
      EXPECT_GE(got[dump], 0);
      EXPECT_LT(got[dump], 60);
      return got;
    }
    ADD_FAILURE() << "ovs-vswitchd's values never held still; last moved:" << moved;
    return std::map<std::string, double>{};
  };

  // ovs-vswitchd answers once it has set up (seconds in an emulated guest).
  ASSERT_TRUE(WaitFor([&] { return Success(exporter) == 1; }, std::chrono::seconds(30)));
  auto first = matching();
  constexpr int kFlows = 25;
  hosts.NewFlows(kFlows, 41000);
  const std::string missed = "vnet_ovs_datapath_lookups_total{result=missed}";
  ASSERT_TRUE(WaitFor([&] { return AppctlValues(vs, dp)[missed] >= first[missed] + kFlows; }));
  auto after = matching();
  EXPECT_EQ(after[missed] - first[missed], kFlows);
  EXPECT_EQ(after["vnet_ovs_datapath_lookups_total{result=lost}"], first["vnet_ovs_datapath_lookups_total{result=lost}"]);
  auto families = exporter.Collect();
  EXPECT_EQ(Value(families, "vnet_ovs_threads", {{"kind", "handler"}}) >= 1, true);
  EXPECT_EQ(Value(families, "vnet_ovs_threads", {{"kind", "revalidator"}}) >= 1, true);

  // Hung: the scrape gives up after the timeout and says so; it recovers when the daemon does.
  vs.Signal(SIGSTOP);
  EXPECT_EQ(Success(exporter), 0);
  vs.Signal(SIGCONT);
  EXPECT_TRUE(WaitFor([&] { return Success(exporter) == 1; }, std::chrono::seconds(30)));

  // Killed (pid file and socket left behind), then restarted with the same database.
  vs.Stop(SIGKILL);
  EXPECT_EQ(Success(exporter), 0);
  EXPECT_EQ(Value(exporter.Collect(), "vnet_exporter_collector_success", {{"collector", "ovs"}}), 0);
  vs.Start();
  hosts.Ready();
  ASSERT_TRUE(WaitFor([&] { return Success(exporter) == 1; }, std::chrono::seconds(30)));
  hosts.NewFlows(3, 42000);
  // A new process: its counters start again from zero.
  ASSERT_TRUE(WaitFor([&] { return AppctlValues(vs, dp)[missed] >= 3; }));
  EXPECT_EQ(matching()[missed], 3);
}

}  // namespace
}  // namespace vnet::testing
