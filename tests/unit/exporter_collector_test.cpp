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
#include "collectors/ovs_collector.h"

namespace vnet::collectors {
namespace {

// A stand-in for ovs-vswitchd's control socket that answers every command after `delay`,
// counting how many connections it serves at once.
class SlowVswitchd {
 public:
  SlowVswitchd(const std::string& rundir, std::chrono::milliseconds delay) : delay_(delay) {
    std::ofstream(rundir + "/ovs-vswitchd.pid") << "4242\n";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, (rundir + "/ovs-vswitchd.4242.ctl").c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    listen(fd_, 64);
    accept_ = std::thread([this] {
      for (int c; (c = accept(fd_, nullptr, nullptr)) >= 0;) {
        handlers_.emplace_back([this, c] { Serve(c); });
      }
    });
  }
  ~SlowVswitchd() {
    shutdown(fd_, SHUT_RDWR);
    accept_.join();
    for (auto& t : handlers_) t.join();
    close(fd_);
  }
  int most_at_once() const { return most_; }

 private:
  void Serve(int c) {
    char buf[4096];
    (void)!recv(c, buf, sizeof(buf), 0);
    const int now = ++active_;
    for (int m = most_; now > m && !most_.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(delay_);
    --active_;
    const std::string reply = R"({"id":0,"error":null,"result":"system@ovs-system:\n  flows: 1\n"})";
    (void)!send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    close(c);
  }

  std::chrono::milliseconds delay_;
  int fd_ = -1;
  std::thread accept_;
  std::vector<std::thread> handlers_;
  std::atomic<int> active_ = 0, most_ = 0;
};

TEST(ExporterCollector, ScrapesOfASlowSourceRunSideBySide) {
  testing::TempDir dir;
  SlowVswitchd vs(dir.path().string(), std::chrono::milliseconds(300));
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
  SlowVswitchd vs(dir.path().string(), std::chrono::milliseconds(250));
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
