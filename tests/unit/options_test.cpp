#include "app/options.h"

#include <gtest/gtest.h>

namespace vnet::app {
namespace {

TEST(Options, Defaults) {
  Options o = ParseOptions({});
  EXPECT_EQ(o.listen_address, ":9748");
  EXPECT_EQ(o.telemetry_path, "/metrics");
  EXPECT_EQ(o.config_file, "");
  EXPECT_FALSE(o.config_check);
}

TEST(Options, BothValueForms) {
  Options o = ParseOptions({"--web.listen-address=127.0.0.1:0", "--config.file", "/etc/x.yaml", "--config.check",
                            "--web.telemetry-path=/m", "--bpf.btf-path=/b", "--log.level=debug"});
  EXPECT_EQ(o.listen_address, "127.0.0.1:0");
  EXPECT_EQ(o.config_file, "/etc/x.yaml");
  EXPECT_TRUE(o.config_check);
  EXPECT_EQ(o.telemetry_path, "/m");
  EXPECT_EQ(o.btf_path, "/b");
  EXPECT_EQ(o.log_level, "debug");
}

TEST(Options, Errors) {
  EXPECT_THROW(ParseOptions({"--web.listen"}), UsageError);
  EXPECT_THROW(ParseOptions({"--config.file"}), UsageError);
  EXPECT_THROW(ParseOptions({"--version=1"}), UsageError);
  EXPECT_THROW(ParseOptions({"--web.telemetry-path=metrics"}), UsageError);
  EXPECT_THROW(ParseOptions({"--web.telemetry-path=/"}), UsageError);
  EXPECT_THROW(ParseOptions({"--log.level=loud"}), UsageError);
}

}  // namespace
}  // namespace vnet::app
