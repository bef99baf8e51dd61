// The exporter's own collector: scrapes of a slow source run side by side, not one behind the
// other (six concurrent scrapes of a 1 s source used to take 2, 4, ... 12 s).
#include "collectors/exporter_collector.h"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

#include "../support/fixtures.h"
#include "../support/slow_vswitchd.h"
#include "collectors/ovs_collector.h"

namespace vnet::collectors {
namespace {

TEST(ExporterCollector, ScrapesOfASlowSourceRunSideBySide) {
  testing::TempDir dir;
  testing::SlowVswitchd vs(dir.path().string(), std::chrono::milliseconds(300));
  OvsCollector::Settings settings;
  settings.rundir = dir.path().string();
  settings.timeout = std::chrono::seconds(5);
  std::vector<std::unique_ptr<Collector>> list;
  list.push_back(std::make_unique<OvsCollector>(settings));
  ExporterCollector exporter(std::move(list));

  std::vector<std::thread> scrapes;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 4; i++) {
    scrapes.emplace_back([&] {
      for (const auto& f : exporter.Collect()) {
        if (f.name == "vnet_exporter_collector_success" && f.metric[0].gauge.value == 1) ok++;
      }
    });
  }
  for (auto& t : scrapes) t.join();
  EXPECT_EQ(ok, 4);
  EXPECT_GE(vs.most_at_once(), 2) << "the scrapes ran one after the other";
}

// collectors.ovs.timeout bounds the whole collection: three calls of 250 ms do not fit in 400 ms
// (each call used to get the whole timeout, so a stuck daemon cost a scrape three of them).
TEST(ExporterCollector, TheOvsTimeoutCoversAllItsCalls) {
  testing::TempDir dir;
  testing::SlowVswitchd vs(dir.path().string(), std::chrono::milliseconds(250));
  OvsCollector::Settings settings;
  settings.rundir = dir.path().string();
  settings.timeout = std::chrono::milliseconds(400);
  OvsCollector ovs(settings);
  try {
    ovs.Collect();
    ADD_FAILURE() << "three 250 ms calls fitted in 400 ms";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("upcall/show"), std::string::npos) << e.what();
  }
  settings.timeout = std::chrono::seconds(5);
  EXPECT_NO_THROW(OvsCollector(settings).Collect());
}

// A collector that gives one gauge named after it, once `release` is set.
class Gated : public Collector {
 public:
  Gated(std::string name, std::shared_future<void> release) : name_(std::move(name)), release_(std::move(release)) {}
  const std::string& Name() const override { return name_; }
  std::vector<ProbeStatus> Probes() const override { return {}; }
  std::vector<prometheus::MetricFamily> Collect() const override {
    release_.wait();
    prometheus::MetricFamily f{name_ + "_value", "", prometheus::MetricType::Gauge, {}};
    f.metric.emplace_back().gauge.value = 1;
    return {f};
  }

 private:
  std::string name_;
  std::shared_future<void> release_;
};

double Value(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
             const std::string& collector = "") {
  for (const auto& f : families) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      if (collector.empty() || (!m.label.empty() && m.label[0].value == collector)) return m.gauge.value;
    }
  }
  return -1;
}

// A collector still busy when the scrape's budget is spent is left out of that scrape (success 0)
// while the others are served; it finishes in the background and is back at the next scrape.
TEST(ExporterCollector, ACollectorPastTheBudgetIsLeftOutAndTheOthersServed) {
  std::promise<void> now, later;
  std::vector<std::unique_ptr<Collector>> list;
  list.push_back(std::make_unique<Gated>("stuck", later.get_future().share()));
  list.push_back(std::make_unique<Gated>("quick", now.get_future().share()));
  now.set_value();
  ExporterCollector exporter(std::move(list));

  auto first = exporter.Collect(std::chrono::milliseconds(200));  // returns while "stuck" still waits
  EXPECT_EQ(Value(first, "quick_value"), 1);
  EXPECT_EQ(Value(first, "stuck_value"), -1);
  EXPECT_EQ(Value(first, "vnet_exporter_collector_success", "quick"), 1);
  EXPECT_EQ(Value(first, "vnet_exporter_collector_success", "stuck"), 0);

  later.set_value();
  auto second = exporter.Collect(std::chrono::seconds(30));
  EXPECT_EQ(Value(second, "stuck_value"), 1);
  EXPECT_EQ(Value(second, "vnet_exporter_collector_success", "stuck"), 1);
}

}  // namespace
}  // namespace vnet::collectors
