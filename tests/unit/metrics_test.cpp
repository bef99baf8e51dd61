// Label values are valid UTF-8 whatever the names they come from; the text exposition.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "metrics/family.h"
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

}  // namespace
}  // namespace vnet::metrics
