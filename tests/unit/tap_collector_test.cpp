// The tap collector on fixed map contents: histogram exposition, bucket range, discarded samples.
#include "collectors/tap_collector.h"

#include <gtest/gtest.h>


#include "metrics/text.h"
#include "../support/fixtures.h"

// The kernel's slot function, compiled here to check it against the bounds the exporter prints.
extern "C" {
#include "bpf/lib/hist.bpf.h"
}

namespace vnet::collectors {
namespace {

using vnet::testing::FakeLinks;

using vnet::testing::FakeTable;

TEST(HistSlots, SlotIndexIsItsMicrosecondBound) {
  EXPECT_EQ(log2_ceil(0), 0u);
  EXPECT_EQ(log2_ceil(1), 0u);
  EXPECT_EQ(log2_ceil(2), 1u);
  EXPECT_EQ(log2_ceil(3), 2u);
  EXPECT_EQ(log2_ceil(4), 2u);
  EXPECT_EQ(log2_ceil(5), 3u);
  EXPECT_EQ(log2_ceil(1024), 10u);
  EXPECT_EQ(log2_ceil(1025), 11u);
  EXPECT_EQ(log2_ceil(1ull << 40), 40u);
  EXPECT_EQ(log2_ceil((1ull << 40) + 1), 41u);
  struct hist h = {};
  hist_add(&h, 953);       // 0.953 us -> 2^-20 s (0.9537 us)
  hist_add(&h, 954);       // -> 2^-19 s
  hist_add(&h, 20000000);  // 20 ms -> 2^-5 s (31.25 ms)
  hist_add(&h, 100000000000ull);  // 100 s -> last slot
  EXPECT_EQ(h.slots[0], 1u);
  EXPECT_EQ(h.slots[1], 1u);
  EXPECT_EQ(h.slots[15], 1u);
  EXPECT_EQ(h.slots[HIST_SLOTS - 1], 1u);
  EXPECT_EQ(h.sum_ns, 953u + 954u + 20000000u + 100000000000ull);
}

class TapCollectorTest : public ::testing::Test {
 protected:
  void Make() {
    links.tables[FakeLinks::kOwn] = {{7, "vnet3"}};
    auto h = std::make_unique<FakeTable<tap_hist_key, tap_hists>>();
    auto o = std::make_unique<FakeTable<tap_hist_key, tap_hists>>();
    hists = h.get();
    hists_other = o.get();
    auto probe = std::make_unique<TapCollector::Probe>();
    probe->tables = {std::move(h), std::move(o), [](uint32_t i) { return uint64_t{i + 1}; },
                     [this] { forgotten++; }, nullptr};
    collector = std::make_unique<TapCollector>(std::move(probe), "", links, cfg, settings);
  }

  std::string Text() {
    std::string out;
    metrics::WriteText(out, collector->Collect());
    return out;
  }

  FakeLinks links;
  config::Config cfg;
  TapCollector::Settings settings;
  FakeTable<tap_hist_key, tap_hists>* hists = nullptr;
  FakeTable<tap_hist_key, tap_hists>* hists_other = nullptr;
  int forgotten = 0;
  std::unique_ptr<TapCollector> collector;
};

TEST_F(TapCollectorTest, HistogramGoldenText) {
  settings.per_queue = true;
  settings.bucket_min = std::chrono::microseconds(3);  // rounds up to 2^-18 s (3.8us)
  settings.bucket_max = std::chrono::microseconds(20);  // rounds up to 2^-15 s (30.5us)
  Make();
  hist h = {};
  h.slots[0] = 1;  // <= 2^-20 s
  h.slots[2] = 2;  // <= 2^-18 s
  h.slots[4] = 3;  // <= 2^-16 s
  h.slots[7] = 4;  // <= 2^-13 s: only in +Inf
  h.sum_ns = 1500000;
  tap_hists v = {};
  v.dir[TAP_RX_BACKLOG] = h;  // the other directions never had a sample: no series
  hists->rows = {{{7, FakeLinks::kOwn, 1}, v}};
  EXPECT_EQ(Text(),
            "# HELP vnet_tap_rx_backlog_seconds Host to guest: from a packet handed to the tap until the VM's backend "
            "(vhost, qemu) read it.\n"
            "# TYPE vnet_tap_rx_backlog_seconds histogram\n"
            "vnet_tap_rx_backlog_seconds_bucket{device=\"vnet3\",netns=\"\",queue=\"1\",le=\"3.814697265625e-06\"} 3\n"
            "vnet_tap_rx_backlog_seconds_bucket{device=\"vnet3\",netns=\"\",queue=\"1\",le=\"7.62939453125e-06\"} 3\n"
            "vnet_tap_rx_backlog_seconds_bucket{device=\"vnet3\",netns=\"\",queue=\"1\",le=\"1.52587890625e-05\"} 6\n"
            "vnet_tap_rx_backlog_seconds_bucket{device=\"vnet3\",netns=\"\",queue=\"1\",le=\"3.0517578125e-05\"} 6\n"
            "vnet_tap_rx_backlog_seconds_bucket{device=\"vnet3\",netns=\"\",queue=\"1\",le=\"+Inf\"} 10\n"
            "vnet_tap_rx_backlog_seconds_sum{device=\"vnet3\",netns=\"\",queue=\"1\"} 0.0015\n"
            "vnet_tap_rx_backlog_seconds_count{device=\"vnet3\",netns=\"\",queue=\"1\"} 10\n"
            "# HELP vnet_tap_tx_transit_seconds Guest to host: from a packet received from the tap until the host sent "
            "it on its egress device.\n"
            "# TYPE vnet_tap_tx_transit_seconds histogram\n"
            "# HELP vnet_tap_rx_transit_seconds Uplink to guest: from a packet's arrival on a non-tap device until it "
            "was handed to the tap.\n"
            "# TYPE vnet_tap_rx_transit_seconds histogram\n"
            "# HELP vnet_tap_samples_discarded_total Latency samples not recorded: `evicted` packets read from a tap "
            "whose stamp another packet had taken, `identity` ends whose packet was not the one stamped.\n"
            "# TYPE vnet_tap_samples_discarded_total counter\n"
            "vnet_tap_samples_discarded_total{reason=\"evicted\"} 3\n"
            "vnet_tap_samples_discarded_total{reason=\"identity\"} 4\n");
}

TEST_F(TapCollectorTest, DefaultRangeIsTwoMicrosecondsToFourSeconds) {
  Make();
  tap_hists v = {};
  v.dir[TAP_TX_TRANSIT].slots[HIST_SLOTS - 1] = 1;  // above 32 s: counted in +Inf only
  hists->rows = {{{7, FakeLinks::kOwn, 0}, v}};
  std::string text = Text();
  EXPECT_NE(text.find("vnet_tap_tx_transit_seconds_bucket{device=\"vnet3\",netns=\"\",le=\"1.9073486328125e-06\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("le=\"4\"} 0"), std::string::npos);
  EXPECT_EQ(text.find("le=\"8\""), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2 * 4 + 22 + 1 + 2 + 2);  // 22 bounds, +Inf, count, sum; discarded
}

TEST_F(TapCollectorTest, DiscardedSamplesByReasonAndTunLearnedAgainAtEachScrape) {
  Make();
  std::string text = Text();
  EXPECT_NE(text.find("# TYPE vnet_tap_samples_discarded_total counter\n"
                      "vnet_tap_samples_discarded_total{reason=\"evicted\"} " +
                      std::to_string(TAP_STAT_EVICTED + 1) + "\n"
                      "vnet_tap_samples_discarded_total{reason=\"identity\"} " +
                      std::to_string(TAP_STAT_IDENTITY + 1) + "\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(forgotten, 1);
  Text();
  EXPECT_EQ(forgotten, 2);
  auto maps = collector->Maps();
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].map, "tap_hists");
  EXPECT_EQ(maps[0].update_failures, TAP_STAT_HIST_FULL + 1u);
  EXPECT_EQ(maps[1].map, "tap_hists_other");
  EXPECT_EQ(maps[1].update_failures, TAP_STAT_OTHER_HIST_FULL + 1u);
}

}  // namespace
}  // namespace vnet::collectors
