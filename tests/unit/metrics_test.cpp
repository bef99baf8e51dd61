// Label values are valid UTF-8 whatever the names they come from; the text and protobuf
// expositions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "metrics/exposition.pb.h"
#include "metrics/family.h"
#include "metrics/histogram.h"
#include "metrics/proto.h"
#include "metrics/text.h"

namespace vnet::metrics {
namespace {

const std::string kReplacement = "\xEF\xBF\xBD";

TEST(ValidUtf8, KeepsValidText) {
  for (const std::string s : {"", "vnet0", "caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80", "a\x7F"}) {
    EXPECT_EQ(ValidUtf8(s), s);
  }
}

TEST(ValidUtf8, ReplacesEachInvalidByte) {
  EXPECT_EQ(ValidUtf8("vnet\xFF"), "vnet" + kReplacement);
  EXPECT_EQ(ValidUtf8("a\xC3"), "a" + kReplacement);                        // truncated
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), kReplacement + kReplacement);            // overlong '/'
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), kReplacement + kReplacement + kReplacement);  // surrogate
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80x"), kReplacement + kReplacement + kReplacement + kReplacement + "x");
  EXPECT_EQ(ValidUtf8("\xE2\x82\xAC\x80\xE2\x82\xAC"), "\xE2\x82\xAC" + kReplacement + "\xE2\x82\xAC");
}

TEST(ValidUtf8, EveryLabelValueOfAFamily) {
  auto f = Family("x", "help", prometheus::MetricType::Gauge);
  AddGauge(f, {{"device", "t\xFF"}}, 1);
  EXPECT_EQ(f.metric[0].label[0].value, "t" + kReplacement);
}

std::string Text(const std::vector<prometheus::MetricFamily>& families) {
  std::string out;
  WriteText(out, families);
  return out;
}

TEST(WriteText, EscapesHelpAndLabelValues) {
  auto f = Family("vnet_x_total", "a \\ b\nc \"q\"", prometheus::MetricType::Counter);
  AddCounter(f, {{"device", "a\"b\\c\nd"}, {"netns", ""}}, 3);
  EXPECT_EQ(Text({f}),
            "# HELP vnet_x_total a \\\\ b\\nc \"q\"\n"
            "# TYPE vnet_x_total counter\n"
            "vnet_x_total{device=\"a\\\"b\\\\c\\nd\",netns=\"\"} 3\n");
}

TEST(WriteText, NumbersReadBackExactly) {
  auto f = Family("g", "", prometheus::MetricType::Gauge);
  for (double v : {0.0, -2.5, 0.1 + 0.2, 1e-06, 123456789012.0, 1.8446744073709552e19,
                   std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity()}) {
    AddGauge(f, {}, v);
  }
  EXPECT_EQ(Text({f}),
            "# TYPE g gauge\n"
            "g 0\ng -2.5\ng 0.30000000000000004\ng 1e-06\ng 123456789012\ng 18446744073709551616\n"
            "g NaN\ng +Inf\ng -Inf\n");
}

TEST(WriteText, HistogramsAndSummaries) {
  auto h = Family("h_seconds", "h", prometheus::MetricType::Histogram);
  auto& m = Add(h, {{"device", "vnet0"}});
  m.histogram.bucket = {{1, 1e-06}, {5, 2e-06}, {7, std::numeric_limits<double>::infinity()}};
  m.histogram.sample_sum = 0.25;
  m.histogram.sample_count = 7;
  auto s = Family("s", "", prometheus::MetricType::Summary);
  auto& q = Add(s, {}).summary;
  q.quantile = {{0.5, 3}, {0.99, 9}};
  q.sample_sum = 30;
  q.sample_count = 6;
  auto empty = Family("e", "nothing yet", prometheus::MetricType::Untyped);
  EXPECT_EQ(Text({h, s, empty}),
            "# HELP h_seconds h\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{device=\"vnet0\",le=\"1e-06\"} 1\n"
            "h_seconds_bucket{device=\"vnet0\",le=\"2e-06\"} 5\n"
            "h_seconds_bucket{device=\"vnet0\",le=\"+Inf\"} 7\n"
            "h_seconds_sum{device=\"vnet0\"} 0.25\n"
            "h_seconds_count{device=\"vnet0\"} 7\n"
            "# TYPE s summary\n"
            "s{quantile=\"0.5\"} 3\n"
            "s{quantile=\"0.99\"} 9\n"
            "s_sum 30\n"
            "s_count 6\n"
            "# HELP e nothing yet\n"
            "# TYPE e untyped\n");
}

// slots 0, 2, 3, 7 and the last (above 32 s), the others empty.
hist Kernel() {
  hist h{};
  h.slots[0] = 1;
  h.slots[2] = 2;
  h.slots[3] = 5;
  h.slots[7] = 4;
  h.slots[HIST_SLOTS - 1] = 1;
  h.sum_ns = 40'000'000'000;
  return h;
}

// A writer's series as they come, and the same built whole, give the same text.
TEST(TextWriter, WrittenSeriesAndFamiliesBuiltWholeAreTheSameText) {
  auto emit = [](Writer& w) {
    w.Family("h_seconds", "kernel", prometheus::MetricType::Histogram);
    const Label dev[] = {{"device", "vnet\xFF\"0\""}};
    w.Histogram(dev, Kernel(), 2, 4);
    w.Family("c_total", "", prometheus::MetricType::Counter);
    w.Value(dev, 3);
    w.Family("g", "", prometheus::MetricType::Gauge);
    w.Value({}, 0.5);
  };
  std::string streamed;
  TextWriter w(streamed, SIZE_MAX, [](std::string&) { return true; });
  emit(w);
  ASSERT_TRUE(w.Finish());
  const std::string dev = "device=\"vnet" + kReplacement + "\\\"0\\\"\"";
  EXPECT_EQ(streamed, "# HELP h_seconds kernel\n# TYPE h_seconds histogram\n"
                      "h_seconds_bucket{" + dev + ",le=\"3.814697265625e-06\"} 3\n"
                      "h_seconds_bucket{" + dev + ",le=\"7.62939453125e-06\"} 8\n"
                      "h_seconds_bucket{" + dev + ",le=\"1.52587890625e-05\"} 8\n"
                      "h_seconds_bucket{" + dev + ",le=\"+Inf\"} 13\n"
                      "h_seconds_sum{" + dev + "} 40\n"
                      "h_seconds_count{" + dev + "} 13\n"
                      "# TYPE c_total counter\nc_total{" + dev + "} 3\n"
                      "# TYPE g gauge\ng 0.5\n");
  std::string whole;
  WriteText(whole, Collected(emit));
  EXPECT_EQ(whole, streamed);
}

// Delimited messages back from `bytes`.
std::vector<exposition::MetricFamily> Decode(const std::string& bytes) {
  std::vector<exposition::MetricFamily> out;
  size_t at = 0;
  while (at < bytes.size()) {
    uint64_t len = 0;
    for (int shift = 0;; shift += 7) {
      const auto b = static_cast<unsigned char>(bytes.at(at++));
      len |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (b < 0x80) break;
    }
    EXPECT_TRUE(out.emplace_back().ParseFromString(bytes.substr(at, len)));
    at += len;
  }
  return out;
}

// The kernel's slots are the buckets of a native histogram of schema 0: slot 0 the zero bucket
// (whose width also marks an empty histogram as native), slot i bucket i-20, the last one (above
// 32 s) in bucket 6; runs of empty buckets left out.
TEST(ProtoWriter, KernelHistogramsAreNativeOfSchemaZero) {
  std::string bytes;
  ProtoWriter w(bytes, SIZE_MAX, [](std::string&) { return true; });
  w.Family("h_seconds", "kernel", prometheus::MetricType::Histogram);
  const Label dev[] = {{"device", "vnet\xFF"}};
  w.Histogram(dev, Kernel(), 2, 4);
  w.Histogram({}, hist{}, 2, 4);
  w.Family("c_total", "", prometheus::MetricType::Counter);
  w.Value(dev, 3);
  ASSERT_TRUE(w.Finish());
  auto families = Decode(bytes);
  ASSERT_EQ(families.size(), 2u);
  const auto& f = families[0];
  EXPECT_EQ(f.name(), "h_seconds");
  EXPECT_EQ(f.help(), "kernel");
  EXPECT_EQ(f.type(), exposition::HISTOGRAM);
  ASSERT_EQ(f.metric_size(), 2);
  ASSERT_EQ(f.metric(0).label_size(), 1);
  EXPECT_EQ(f.metric(0).label(0).name(), "device");
  EXPECT_EQ(f.metric(0).label(0).value(), "vnet" + kReplacement);
  const auto& h = f.metric(0).histogram();
  EXPECT_EQ(h.bucket_size(), 0) << "no classic buckets";
  EXPECT_TRUE(h.has_schema());
  EXPECT_EQ(h.schema(), 0);
  EXPECT_EQ(h.zero_threshold(), std::ldexp(1.0, -20));
  EXPECT_EQ(h.zero_count(), 1u);
  EXPECT_EQ(h.sample_count(), 13u);
  EXPECT_EQ(h.sample_sum(), 40);
  ASSERT_EQ(h.positive_span_size(), 3);
  EXPECT_EQ(h.positive_span(0).offset(), -18);  // slots 2, 3
  EXPECT_EQ(h.positive_span(0).length(), 2u);
  EXPECT_EQ(h.positive_span(1).offset(), 3);  // slot 7: after empty slots 4, 5, 6
  EXPECT_EQ(h.positive_span(1).length(), 1u);
  EXPECT_EQ(h.positive_span(2).offset(), 18);  // the last slot, bucket 6
  EXPECT_EQ(h.positive_span(2).length(), 1u);
  ASSERT_EQ(h.positive_delta_size(), 4);
  EXPECT_EQ(h.positive_delta(0), 2);
  EXPECT_EQ(h.positive_delta(1), 3);
  EXPECT_EQ(h.positive_delta(2), -1);
  EXPECT_EQ(h.positive_delta(3), -3);
  const auto& empty = f.metric(1).histogram();
  EXPECT_EQ(empty.sample_count(), 0u);
  EXPECT_GT(empty.zero_threshold(), 0);
  EXPECT_EQ(empty.positive_span_size(), 0);
  EXPECT_EQ(families[1].type(), exposition::COUNTER);
  EXPECT_EQ(families[1].metric(0).counter().value(), 3);
}

// Families built whole keep their kind; a family is one message, flushed once the chunk is full,
// and nothing is written once the client went away.
TEST(ProtoWriter, FamiliesBuiltWholeAreFlushedAsTheyFillAChunk) {
  auto g = Family("g", "", prometheus::MetricType::Gauge);
  AddGauge(g, {{"a", "b"}}, 1.5);
  auto c = Family("h", "", prometheus::MetricType::Histogram);
  auto& m = Add(c, {});
  m.histogram.bucket = {{1, 0.5}, {4, std::numeric_limits<double>::infinity()}};
  m.histogram.sample_count = 4;
  std::string bytes, sent;
  int flushes = 0;
  ProtoWriter w(bytes, 1, [&](std::string& chunk) {
    flushes++;
    sent += chunk;
    chunk.clear();
    return flushes < 2;
  });
  w.Write(g);
  w.Write(c);
  w.Write(g);
  EXPECT_FALSE(w.Finish());
  EXPECT_EQ(flushes, 2);
  auto families = Decode(sent);
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].metric(0).gauge().value(), 1.5);
  EXPECT_EQ(families[0].metric(0).label(0).value(), "b");
  const auto& h = families[1].metric(0).histogram();
  ASSERT_EQ(h.bucket_size(), 2);
  EXPECT_EQ(h.bucket(0).upper_bound(), 0.5);
  EXPECT_EQ(h.bucket(1).cumulative_count(), 4u);
  EXPECT_FALSE(h.has_schema()) << "a classic histogram";
}

TEST(ProtoWriter, SummariesAndUntypedFamilies) {
  auto s = Family("s", "quantiles", prometheus::MetricType::Summary);
  auto& q = Add(s, {{"k", "v"}}).summary;
  q.quantile = {{0.5, 3}, {0.99, 9}};
  q.sample_sum = 30;
  q.sample_count = 6;
  auto u = Family("u", "", prometheus::MetricType::Untyped);
  Add(u, {}).untyped.value = -2.5;
  std::string bytes;
  ProtoWriter w(bytes, SIZE_MAX, [](std::string&) { return true; });
  w.Write(s);
  w.Write(u);
  ASSERT_TRUE(w.Finish());
  auto families = Decode(bytes);
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].type(), exposition::SUMMARY);
  const auto& summary = families[0].metric(0).summary();
  EXPECT_EQ(summary.sample_count(), 6u);
  EXPECT_EQ(summary.sample_sum(), 30);
  ASSERT_EQ(summary.quantile_size(), 2);
  EXPECT_EQ(summary.quantile(1).quantile(), 0.99);
  EXPECT_EQ(summary.quantile(1).value(), 9);
  EXPECT_EQ(families[1].type(), exposition::UNTYPED);
  EXPECT_FALSE(families[1].has_help());
  EXPECT_EQ(families[1].metric(0).untyped().value(), -2.5);
}

}  // namespace
}  // namespace vnet::metrics
