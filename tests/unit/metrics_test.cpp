// Label values are valid UTF-8 whatever the names they come from.
#include <gtest/gtest.h>

#include "metrics/family.h"

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

}  // namespace
}  // namespace vnet::metrics
