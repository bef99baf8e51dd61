// Benchmark of the ovs collector. Prints, from one run against a private ovs-vswitchd
// (userspace datapath, 64 datapath flows): the time of one scrape of the collector (three
// unixctl calls on one socket each) and of the baseline it replaces, the same three commands
// run as ovs-appctl processes, and their ratio.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "../tests/support/ovs.h"
#include "collectors/ovs_collector.h"

namespace {

using namespace vnet;
using Clock = std::chrono::steady_clock;
constexpr int kScrapes = 200;

template <class F>
double MeanMs(F&& f) {
  auto start = Clock::now();
  for (int i = 0; i < kScrapes; i++) f();
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / kScrapes;
}

}  // namespace

int main() {
  testing::OvsBridge hosts(testing::Prefix(), 80, "netdev");
  testing::Vswitchd& vs = hosts.vs;
  hosts.NewFlows(64, 20000);

  collectors::OvsCollector::Settings cfg;
  cfg.rundir = vs.rundir();
  collectors::OvsCollector collector(cfg);
  const double scrape = MeanMs([&] { collector.Collect(); });
  const double appctl = MeanMs([&] {
    for (const char* cmd : {"dpctl/show", "upcall/show", "coverage/show"}) vs.Appctl(cmd);
  });
  std::printf("ovs collector scrape: %.3f ms (mean of %d)\n", scrape, kScrapes);
  std::printf("baseline, ovs-appctl dpctl/show + upcall/show + coverage/show as processes: %.3f ms\n", appctl);
  std::printf("ratio collector / baseline: %.3f\n", scrape / appctl);
  return 0;
}
