// ovs-vswitchd's unixctl replies (as OVS 3.1 prints them) parsed into values, and the
// collector's failure when ovs-vswitchd is not there.
#include "collectors/ovs_collector.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <prometheus/metric_family.h>

#include <filesystem>
#include <fstream>

#include "../support/fixtures.h"
#include "../support/samples.h"

namespace vnet::collectors {
namespace {

using testing::kCoverageShow;
using testing::kDpctlShow;
using testing::kUpcallShow;

// Replies are ovs-vswitchd's to write: a long or strange line is no value, never a crash (a
// 250-character line overflowed a scrape thread's stack in std::regex).
TEST(OvsParse, LongAndMalformedLinesAreSkipped) {
  const std::string huge(1 << 20, 'x');
  auto dps = ParseDpctlShow("system@ovs-system:\n  flows: " + huge + "\n  lookups: hit:1 " + huge +
                            " missed:2 lost::3 :4 lost\n  masks: hit:" + huge + "\n" + huge + " @x:\n");
  ASSERT_EQ(dps.size(), 1u);
  EXPECT_EQ(dps.at("ovs-system").values, (std::map<std::string, double>{{"lookups.hit", 1}, {"lookups.missed", 2}}));

  std::map<std::string, OvsDatapath> up;
  ParseUpcallShow("system@ovs-system:\n  flows : (current " + huge + ") (avg 1) (max 2) (limit 3)\n  dump duration : " +
                      huge + "ms\n",
                  up);
  EXPECT_TRUE(up.at("ovs-system").values.empty());

  auto coverage = ParseCoverageShow("netlink_overflow " + huge + " total: 12\n" + huge + "- total: 3\nbad-name x total: 4\n"
                                    "upcall_flow_limit_hit x total: 5x\n");
  EXPECT_EQ(coverage, (std::map<std::string, double>{{"netlink_overflow", 12}}));
}

TEST(OvsParse, DpctlShow) {
  auto dps = ParseDpctlShow(kDpctlShow);
  ASSERT_EQ(dps.size(), 2u);
  const auto& sys = dps.at("ovs-system");
  EXPECT_EQ(sys.type, "system");
  EXPECT_EQ(sys.values, (std::map<std::string, double>{{"lookups.hit", 1523},
                                                       {"lookups.missed", 42},
                                                       {"lookups.lost", 7},
                                                       {"flows", 12},
                                                       {"masks.hit", 2871},
                                                       {"masks.total", 3},
                                                       {"masks.hit/pkt", 1.83},
                                                       {"cache.hit", 1320},
                                                       {"cache.hit-rate", 84.37}}));
  const auto& net = dps.at("ovs-netdev");
  EXPECT_EQ(net.type, "netdev");
  EXPECT_EQ(net.values,
            (std::map<std::string, double>{{"lookups.hit", 5}, {"lookups.missed", 9}, {"lookups.lost", 0}, {"flows", 9}}));
}

TEST(OvsParse, UpcallShowAddsToDatapaths) {
  auto dps = ParseDpctlShow(kDpctlShow);
  ParseUpcallShow(kUpcallShow, dps);
  const auto& v = dps.at("ovs-system").values;
  EXPECT_EQ(v.at("upcall.current"), 12);
  EXPECT_EQ(v.at("upcall.avg"), 10);
  EXPECT_EQ(v.at("upcall.max"), 40);
  EXPECT_EQ(v.at("upcall.limit"), 200000);
  EXPECT_DOUBLE_EQ(v.at("upcall.dump_duration"), 0.003);
  EXPECT_EQ(dps.at("ovs-netdev").values.at("upcall.limit"), 10000);
}

TEST(OvsParse, CoverageShow) {
  EXPECT_EQ(ParseCoverageShow(kCoverageShow), (std::map<std::string, double>{{"bridge_reconfigure", 5},
                                                                              {"upcall_flow_limit_hit", 3},
                                                                              {"netlink_overflow", 1},
                                                                              {"drop_action_of_pipeline", 2}}));
}

TEST(OvsCollector, FailsNamingThePidFileWhenVswitchdIsAbsent) {
  vnet::testing::TempDir dir;
  collectors::OvsCollector::Settings cfg;
  cfg.rundir = dir.path().string();
  OvsCollector c(cfg);
  try {
    c.Collect();
    FAIL() << "no ovs-vswitchd, yet the scrape succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path().string() + "/ovs-vswitchd.pid"), std::string::npos) << e.what();
  }
  // A pid file left behind by a dead ovs-vswitchd: its socket is not there.
  std::ofstream(dir.path().string() + "/ovs-vswitchd.pid") << "999999\n";
  try {
    c.Collect();
    FAIL() << "stale pid file, yet the scrape succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("ovs-vswitchd.999999.ctl"), std::string::npos) << e.what();
  }
}

std::string ErrorOf(const OvsCollector& c) {
  try {
    c.Collect();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// What a local user could put in place of the pid file: refused at once, no read blocks (a
// FIFO hung every scrape) or fills memory (/dev/zero), and no path is made of its content.
TEST(OvsCollector, RefusesAPidFileThatIsNotOne) {
  vnet::testing::TempDir dir;
  OvsCollector::Settings cfg;
  cfg.rundir = dir.path().string();
  OvsCollector c(cfg);
  const std::string pidfile = dir.path().string() + "/ovs-vswitchd.pid";
  std::filesystem::create_symlink("/dev/zero", pidfile);
  EXPECT_EQ(ErrorOf(c), pidfile + ": no ovs-vswitchd pid (not running?)");
  std::filesystem::remove(pidfile);
  ASSERT_EQ(mkfifo(pidfile.c_str(), 0600), 0);
  EXPECT_EQ(ErrorOf(c), pidfile + ": no ovs-vswitchd pid (not running?)");
  std::filesystem::remove(pidfile);
  std::ofstream(pidfile) << "../../../tmp/x\n";
  EXPECT_EQ(ErrorOf(c), pidfile + ": not a pid");
}

}  // namespace
}  // namespace vnet::collectors
