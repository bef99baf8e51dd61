// Benchmark of the ovs collector. Prints, from one run against a private ovs-vswitchd
// (userspace datapath, 64 datapath flows): the time of one scrape of the collector (three
// unixctl calls on one socket each) and of the baseline it replaces, the same three commands
// run as ovs-appctl processes, and their ratio.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "../tests/support/netns.h"
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
  const std::string p = testing::Prefix();
  testing::Netns sw(p + "sw"), a(p + "a");
  testing::OvsdbServer db;
  testing::Vswitchd vs(db, sw);
  testing::Sh("ip link add pa netns " + sw.name() + " type veth peer name eth0 netns " + a.name());
  sw.Sh("ip link set pa up");
  a.Sh("ip addr add 10.80.0.1/24 dev eth0 && ip link set eth0 up && ip neigh add 10.80.0.2 lladdr 02:00:00:00:00:02 dev eth0");
  db.Vsctl("add-br br0 -- set bridge br0 datapath_type=netdev -- add-port br0 pa");
  db.Vsctl("--timeout=10 wait-until Interface pa ofport!=-1");
  vs.Appctl("upcall/disable-megaflows");
  for (int i = 0; i < 64; i++) testing::SendUdp(a, "10.80.0.2", 9, 1, static_cast<uint16_t>(20000 + i));

  config::OvsCollector cfg;
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
