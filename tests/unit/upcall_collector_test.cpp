// The upcall collector on fixed map contents: upcalls and failures per device and errno name,
// the latency histogram, unanswered upcalls, and loading when the openvswitch module comes.
#include "collectors/upcall_collector.h"

#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "metrics/text.h"
#include "../support/fixtures.h"

namespace vnet::collectors {
namespace {

using vnet::testing::FakeLinks;
using vnet::testing::FakeTable;

upcall_key Key(uint32_t ifindex, uint32_t cmd, uint32_t err) {
  upcall_key k{};
  k.ifindex = ifindex;
  k.netns = FakeLinks::kOwn;
  std::strcpy(k.datapath, "ovs-system");
  k.cmd = cmd;
  k.err = err;
  return k;
}

upcall_packet Packet(uint8_t first, uint32_t netns = FakeLinks::kOwn) {
  upcall_packet p{};
  p.len = 60;
  p.netns = netns;
  p.head[0] = first;
  return p;
}

upcall_inflight Inflight(uint64_t ts) {
  upcall_inflight f{};
  f.ts = ts;
  std::strcpy(f.datapath, "ovs-system");
  return f;
}

class UpcallCollectorTest : public ::testing::Test {
 protected:
  UpcallCollectorTest() { links.tables[FakeLinks::kOwn] = {{7, "vnet3"}, {8, "vnet4"}}; }

  // A loader handing out fixed tables, counting its calls.
  UpcallCollector::Loader Loader() {
    return [this](std::string& error) -> std::unique_ptr<UpcallCollector::Probe> {
      loads++;
      if (!loadable) {
        error = "refused";
        return nullptr;
      }
      auto probe = std::make_unique<UpcallCollector::Probe>();
      probe->tables = {Maps(host), Maps(other), [](uint32_t) { return uint64_t{0}; }, [this] { return now_ns; }};
      probe->attach_type = "kprobe";
      return probe;
    };
  }

  // The fake tables of one set of maps, kept in `fakes` for the test to fill.
  struct Fakes {
    FakeTable<upcall_key, upcall_count>* counts = nullptr;
    FakeTable<upcall_hist_key, hist>* hists = nullptr;
    FakeTable<upcall_packet, upcall_inflight>* inflight = nullptr;
  };
  static UpcallCollector::Tables::Maps Maps(Fakes& fakes) {
    auto c = std::make_unique<FakeTable<upcall_key, upcall_count>>();
    auto h = std::make_unique<FakeTable<upcall_hist_key, hist>>();
    auto f = std::make_unique<FakeTable<upcall_packet, upcall_inflight>>();
    fakes = {c.get(), h.get(), f.get()};
    return {std::move(c), std::move(h), std::move(f)};
  }

  // The module instance: 0 when not loaded.
  UpcallCollector::ModuleInstance Module() {
    return [this] { return module; };
  }

  std::string Text(const UpcallCollector& c) {
    std::string text;
    metrics::WriteText(text, c.Collect());
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("# ", 0) != 0) out += line + "\n";
    }
    return out;
  }

  FakeLinks links;
  config::Config cfg;
  uint64_t module = 0;
  bool loadable = true;
  int loads = 0;
  uint64_t now_ns = 100'000'000'000;
  Fakes host, other;  // datapaths of the exporter's namespace; of others
};

TEST_F(UpcallCollectorTest, WaitsForTheModuleThenLoadsOnce) {
  UpcallCollector c(Loader(), Module(), links, cfg, {});
  EXPECT_EQ(loads, 0);
  for (const auto& p : c.Probes()) {
    EXPECT_FALSE(p.attached);
    EXPECT_TRUE(p.waiting);
  }
  EXPECT_EQ(Text(c), "");
  module = 1;
  c.OnLink(9, "ovs-system", false);  // the datapath's device appears
  EXPECT_EQ(loads, 1);
  for (const auto& p : c.Probes()) EXPECT_TRUE(p.attached);
  c.Collect();
  EXPECT_EQ(loads, 1);
}

TEST_F(UpcallCollectorTest, AFailedLoadIsRetriedOnlyWhenTheModuleComesBack) {
  module = 1;
  loadable = false;
  UpcallCollector c(Loader(), Module(), links, cfg, {});
  EXPECT_EQ(loads, 1);
  EXPECT_FALSE(c.Probes()[0].waiting);
  EXPECT_EQ(c.Probes()[0].error, "refused");
  c.Collect();
  c.Collect();
  EXPECT_EQ(loads, 1);  // not at every scrape
  module = 0;
  c.Collect();
  EXPECT_TRUE(c.Probes()[0].waiting);
  module = 2;
  loadable = true;
  c.Collect();
  EXPECT_EQ(loads, 2);
  EXPECT_TRUE(c.Probes()[0].attached);
}

// Unloaded while the probes are attached (an OVS upgrade's force-reload-kmod), then loaded
// again: the probes of the old instance are dropped, the new instance gets its own.
TEST_F(UpcallCollectorTest, TheModuleGoesAndComesBack) {
  module = 1;
  UpcallCollector c(Loader(), Module(), links, cfg, {});
  host.counts->rows = {{Key(7, 1, 0), {40}}};
  host.inflight->rows = {{Packet(1), Inflight(now_ns)}};
  EXPECT_NE(Text(c), "");
  module = 0;
  EXPECT_EQ(Text(c), "");
  EXPECT_TRUE(c.Maps().empty());
  for (const auto& p : c.Probes()) {
    EXPECT_FALSE(p.attached);
    EXPECT_TRUE(p.waiting);
  }
  module = 2;
  EXPECT_EQ(Text(c), "");  // a new instance, new maps
  EXPECT_EQ(loads, 2);
  for (const auto& p : c.Probes()) EXPECT_TRUE(p.attached);
  host.counts->rows = {{Key(7, 1, 0), {3}}};
  EXPECT_EQ(Text(c), "vnet_ovs_upcalls_total{datapath=\"ovs-system\",device=\"vnet3\",netns=\"\",cmd=\"miss\"} 3\n");
  // Unloaded and loaded again between two scrapes: a new instance all the same.
  module = 3;
  c.Collect();
  EXPECT_EQ(loads, 3);
}

TEST_F(UpcallCollectorTest, Exposition) {
  module = 1;
  UpcallCollector c(Loader(), Module(), links, cfg, {});
  host.counts->rows = {{Key(7, 1, 0), {40}}, {Key(7, 1, 11), {5}}, {Key(7, 2, 0), {2}}, {Key(8, 1, 107), {1}}};
  hist h{};
  h.slots[3] = 2;   // <= 2^-17 s (7.6us)
  h.slots[10] = 1;  // <= 2^-10 s (0.98ms)
  h.sum_ns = 1'000'000;
  upcall_hist_key hk{};
  std::strcpy(hk.datapath, "ovs-system");
  hk.netns = FakeLinks::kOwn;
  host.hists->rows = {{hk, h}};
  // One upcall waiting for 11 s (past the 10 s timeout), one for 1 s.
  host.inflight->rows = {{Packet(1), Inflight(now_ns - 11'000'000'000)}, {Packet(2), Inflight(now_ns - 1'000'000'000)}};

  std::string text = Text(c);
  const char* upcalls =
      "vnet_ovs_upcalls_total{datapath=\"ovs-system\",device=\"vnet3\",netns=\"\",cmd=\"action\"} 2\n"
      "vnet_ovs_upcalls_total{datapath=\"ovs-system\",device=\"vnet3\",netns=\"\",cmd=\"miss\"} 45\n"
      "vnet_ovs_upcalls_total{datapath=\"ovs-system\",device=\"vnet4\",netns=\"\",cmd=\"miss\"} 1\n"
      "vnet_ovs_upcall_failures_total{datapath=\"ovs-system\",device=\"vnet3\",netns=\"\",error=\"EAGAIN\"} 5\n"
      "vnet_ovs_upcall_failures_total{datapath=\"ovs-system\",device=\"vnet4\",netns=\"\",error=\"ENOTCONN\"} 1\n";
  EXPECT_NE(text.find(upcalls), std::string::npos) << text;
  EXPECT_NE(text.find("vnet_ovs_upcall_latency_seconds_bucket{datapath=\"ovs-system\",netns=\"\",le=\"3.814697265625e-06\"} 0\n"
                      "vnet_ovs_upcall_latency_seconds_bucket{datapath=\"ovs-system\",netns=\"\",le=\"7.62939453125e-06\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vnet_ovs_upcall_latency_seconds_sum{datapath=\"ovs-system\",netns=\"\"} 0.001\n"
                      "vnet_ovs_upcall_latency_seconds_count{datapath=\"ovs-system\",netns=\"\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vnet_ovs_upcall_latency_seconds_bucket{datapath=\"ovs-system\",netns=\"\",le=\"4\"} 3\n"
                      "vnet_ovs_upcall_latency_seconds_bucket{datapath=\"ovs-system\",netns=\"\",le=\"+Inf\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vnet_ovs_upcalls_unanswered_total{datapath=\"ovs-system\",netns=\"\"} 1\n"), std::string::npos) << text;
  ASSERT_EQ(host.inflight->rows.size(), 1u);
  EXPECT_EQ(host.inflight->rows[0].first.head[0], 2);
  auto maps = c.Maps();
  EXPECT_EQ(maps[1].map, "upcall_inflight");
  EXPECT_EQ(maps[1].entries, 1u);
  EXPECT_EQ(maps[1].evictions, 1u);
  EXPECT_EQ(maps[2].map, "upcall_hists");
  EXPECT_EQ(maps[2].entries, 1u);  // was always 0
}

// A datapath in another namespace (anyone may make one in a user namespace of their own) has
// maps of its own: its series carry the namespace, even under the host datapath's name.
TEST_F(UpcallCollectorTest, OtherNamespacesHaveTheirOwnMapsAndSeries) {
  constexpr uint32_t kOther = 4026532999;
  links.tables[kOther] = {{7, "pa"}};
  links.names[kOther] = "tenant";
  module = 1;
  UpcallCollector c(Loader(), Module(), links, cfg, {});
  host.counts->rows = {{Key(7, 1, 0), {4}}};
  auto k = Key(7, 1, 0);
  k.netns = kOther;
  other.counts->rows = {{k, {9}}};
  hist h{};
  h.slots[3] = 2;
  upcall_hist_key hk{};
  std::strcpy(hk.datapath, "ovs-system");
  hk.netns = kOther;
  other.hists->rows = {{hk, h}};
  other.inflight->rows = {{Packet(1, kOther), Inflight(now_ns - 11'000'000'000)}};

  std::string text = Text(c);
  EXPECT_NE(text.find("vnet_ovs_upcalls_total{datapath=\"ovs-system\",device=\"pa\",netns=\"tenant\",cmd=\"miss\"} 9\n"
                      "vnet_ovs_upcalls_total{datapath=\"ovs-system\",device=\"vnet3\",netns=\"\",cmd=\"miss\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vnet_ovs_upcall_latency_seconds_count{datapath=\"ovs-system\",netns=\"tenant\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vnet_ovs_upcalls_unanswered_total{datapath=\"ovs-system\",netns=\"tenant\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("latency_seconds_count{datapath=\"ovs-system\",netns=\"\"}"), std::string::npos) << text;
  std::vector<std::string> names;
  for (const auto& m : c.Maps()) names.push_back(m.map);
  EXPECT_EQ(names, (std::vector<std::string>{"upcall_counts", "upcall_inflight", "upcall_hists", "upcall_counts_other",
                                             "upcall_inflight_other", "upcall_hists_other"}));
  EXPECT_EQ(c.Maps()[3].entries, 1u);
}

}  // namespace
}  // namespace vnet::collectors
