// The whole configuration: the common sections and every registered collector's.
#include "config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "../support/fixtures.h"
#include "collectors/drops_collector.h"
#include "collectors/interface_collector.h"
#include "collectors/ovs_collector.h"
#include "collectors/registry.h"
#include "collectors/tap_collector.h"
#include "collectors/upcall_collector.h"

namespace vnet::config {
namespace {

using Drops = collectors::DropsCollector::Settings;
using Tap = collectors::TapCollector::Settings;
using Interface = collectors::InterfaceCollector::Settings;
using Upcall = collectors::UpcallCollector::Settings;
using Ovs = collectors::OvsCollector::Settings;

std::string ErrorOf(const std::string& text) {
  try {
    collectors::ParseConfig(text, "test.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, EmbeddedDefaultIsValidAndMatchesBuiltInValues) {
  Config c = collectors::ParseConfig(std::string(DefaultText()), "default");
  EXPECT_TRUE(c.Get<Drops>().enabled);
  EXPECT_EQ(c.Get<Drops>().max_entries, 16384u);
  EXPECT_EQ(c.devices.include, std::vector<std::string>{"*"});
  EXPECT_TRUE(c.devices.exclude.empty());
  EXPECT_EQ(c.devices.grace_period, std::chrono::minutes(5));
  EXPECT_EQ(c.btf_path, "");
  EXPECT_TRUE(c.Get<Tap>().enabled);
  EXPECT_EQ(c.Get<Tap>().backlog_slots, 65536u);
  EXPECT_EQ(c.Get<Tap>().max_series, 4096u);
  EXPECT_EQ(c.Get<Tap>().other_netns_max_series, 1024u);
  EXPECT_EQ(c.Get<Tap>().sample_every, 1u);
  EXPECT_EQ(c.Get<Tap>().bucket_min, std::chrono::microseconds(1));
  EXPECT_EQ(c.Get<Tap>().bucket_max, std::chrono::seconds(4));
}

TEST(Config, TapKeys) {
  Config c = collectors::ParseConfig("collectors:\n  tap:\n    enabled: false\n    backlog_slots: 1024\n    max_series: 64\n"
                   "    other_netns_max_series: 32\n    sample_every: 8\n"
                   "    bucket_min: 10us\n    bucket_max: 500ms\n",
                   "t");
  EXPECT_FALSE(c.Get<Tap>().enabled);
  EXPECT_EQ(c.Get<Tap>().backlog_slots, 1024u);
  EXPECT_EQ(c.Get<Tap>().max_series, 64u);
  EXPECT_EQ(c.Get<Tap>().other_netns_max_series, 32u);
  EXPECT_EQ(c.Get<Tap>().sample_every, 8u);
  EXPECT_EQ(c.Get<Tap>().bucket_min, std::chrono::microseconds(10));
  EXPECT_EQ(c.Get<Tap>().bucket_max, std::chrono::milliseconds(500));
}

TEST(Config, EmptyDocumentGivesDefaults) {
  Config c = collectors::ParseConfig("", "empty.yaml");
  EXPECT_TRUE(c.Get<Drops>().enabled);
  EXPECT_EQ(c.devices.grace_period, std::chrono::minutes(5));
}

TEST(Config, ReadsEveryKey) {
  Config c = collectors::ParseConfig(R"(
bpf:
  btf_path: /boot/vmlinux.btf
devices:
  include: ["vnet*", "tap*"]
  exclude: [vnet0]
  grace_period: 30s
collectors:
  drops:
    enabled: false
    max_entries: 1024
)",
                   "t.yaml");
  EXPECT_EQ(c.btf_path, "/boot/vmlinux.btf");
  EXPECT_EQ(c.devices.include, (std::vector<std::string>{"vnet*", "tap*"}));
  EXPECT_EQ(c.devices.exclude, std::vector<std::string>{"vnet0"});
  EXPECT_EQ(c.devices.grace_period, std::chrono::seconds(30));
  EXPECT_FALSE(c.Get<Drops>().enabled);
  EXPECT_EQ(c.Get<Drops>().max_entries, 1024u);
}

TEST(Config, DisabledAttachTypes) {
  EXPECT_EQ(collectors::ParseConfig("bpf: {disabled_attach_types: [tp_btf, kprobe]}", "t").disabled_attach_types,
            (std::vector<std::string>{"tp_btf", "kprobe"}));
  EXPECT_EQ(ErrorOf("bpf:\n  disabled_attach_types: [tp_btf, uprobe]\n"),
            "test.yaml:2: bpf.disabled_attach_types: unknown attach type \"uprobe\" (known: tp_btf, raw_tp, "
            "kprobe)");
  // No probe has these: listing them would suggest a choice there is not.
  EXPECT_NE(ErrorOf("bpf: {disabled_attach_types: [tracepoint]}"), "");
  EXPECT_NE(ErrorOf("bpf: {disabled_attach_types: [fentry]}"), "");
}

TEST(Config, DurationsInHours) {
  EXPECT_EQ(collectors::ParseConfig("devices: {grace_period: 2h}", "t").devices.grace_period, std::chrono::hours(2));
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  EXPECT_EQ(ErrorOf("collectors:\n  drops:\n    enabled: true\n    max_entrys: 10\n"),
            "test.yaml:4: collectors.drops.max_entrys: unknown key");
  EXPECT_EQ(ErrorOf("colectors: {}\n"), "test.yaml:1: colectors: unknown key");
  EXPECT_EQ(ErrorOf("collectors:\n  dropz: {}\n"), "test.yaml:2: collectors.dropz: unknown key");
}

// Every registered collector has its section, parsed or default, and its own keys only.
TEST(Config, EveryCollectorHasItsSection) {
  Config c = collectors::ParseConfig("collectors: {ovs: {enabled: false}}", "t");
  std::vector<std::string> names;
  for (const auto& [name, section] : c.collectors) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"drops", "interface", "ovs", "sched", "tap", "upcall"}));
  EXPECT_FALSE(c.Get<Ovs>().enabled);
  EXPECT_TRUE(c.Get<Upcall>().enabled);
  EXPECT_EQ(ErrorOf("collectors:\n  ovs:\n    max_entries: 64\n"), "test.yaml:3: collectors.ovs.max_entries: unknown key");
}

TEST(Config, WrongTypes) {
  EXPECT_EQ(ErrorOf("collectors:\n  drops:\n    enabled: maybe\n"),
            "test.yaml:3: collectors.drops.enabled: expected true or false");
  EXPECT_EQ(ErrorOf("collectors:\n  drops:\n    max_entries: lots\n"),
            "test.yaml:3: collectors.drops.max_entries: expected an integer, got \"lots\"");
  EXPECT_EQ(ErrorOf("devices:\n  include: vnet*\n"), "test.yaml:2: devices.include: expected a list of strings");
  EXPECT_EQ(ErrorOf("devices:\n  include: [[a]]\n"), "test.yaml:2: devices.include[0]: expected a string");
  EXPECT_EQ(ErrorOf("devices: [a]\n"), "test.yaml:1: devices: expected a mapping");
  EXPECT_EQ(ErrorOf("- a\n"), "test.yaml:1: (top level): expected a mapping");
}

TEST(Config, InvalidValues) {
  EXPECT_EQ(ErrorOf("collectors:\n  drops:\n    max_entries: 10\n"),
            "test.yaml:3: collectors.drops.max_entries: must be between 64 and 4194304, got 10");
  EXPECT_EQ(ErrorOf("collectors:\n  drops:\n    max_entries: -5\n"),
            "test.yaml:3: collectors.drops.max_entries: expected an integer, got \"-5\"");
  EXPECT_EQ(ErrorOf("devices:\n  grace_period: 5 minutes\n"),
            "test.yaml:2: devices.grace_period: unknown duration unit in \"5 minutes\" (use us, ms, s, m or h)");
  EXPECT_EQ(ErrorOf("devices:\n  grace_period: 5d\n"),
            "test.yaml:2: devices.grace_period: unknown duration unit in \"5d\" (use us, ms, s, m or h)");
  EXPECT_EQ(ErrorOf("devices:\n  grace_period: 1500ms\n"), "test.yaml:2: devices.grace_period: must be whole seconds");
  EXPECT_EQ(ErrorOf("collectors:\n  tap:\n    bucket_max: 60s\n"),
            "test.yaml:3: collectors.tap.bucket_max: must be at most 32s");
  EXPECT_EQ(ErrorOf("collectors:\n  tap:\n    bucket_min: 1ms\n    bucket_max: 1ms\n"),
            "test.yaml:4: collectors.tap.bucket_max: bucket_max must be above bucket_min (1000000ns, bucket_max "
            "1000000ns)");
  // One bound alone is checked against the other's default.
  EXPECT_EQ(ErrorOf("collectors:\n  tap:\n    bucket_min: 10s\n"),
            "test.yaml:3: collectors.tap.bucket_min: bucket_max must be above bucket_min (10000000000ns, bucket_max "
            "4000000000ns)");
  EXPECT_EQ(ErrorOf("devices:\n  grace_period: 598099807921h\n"),
            "test.yaml:2: devices.grace_period: duration too long: 598099807921h");
  EXPECT_EQ(ErrorOf("collectors:\n  upcall:\n    inflight_timeout: 999999999999m\n"),
            "test.yaml:3: collectors.upcall.inflight_timeout: duration too long: 999999999999m");
  EXPECT_EQ(ErrorOf("collectors:\n  tap:\n    backlog_slots: 10\n"),
            "test.yaml:3: collectors.tap.backlog_slots: must be between 1024 and 4194304, got 10");
  EXPECT_EQ(ErrorOf("collectors:\n  tap:\n    backlog_slots: 5000\n"),
            "test.yaml:3: collectors.tap.backlog_slots: must be a power of two, got 5000");
  EXPECT_EQ(ErrorOf("devices:\n  exclude: [\"\"]\n"), "test.yaml:2: devices.exclude[0]: empty pattern");
}

TEST(Config, KeysThatWouldBeIgnored) {
  EXPECT_EQ(ErrorOf("collectors:\n  drops:\n    max_entries: 128\n    max_entries: 10\n"),
            "test.yaml:4: collectors.drops.max_entries: duplicate key");
  EXPECT_EQ(ErrorOf("devices: {}\ndevices: {grace_period: 5d}\n"), "test.yaml:2: devices: duplicate key");
  EXPECT_EQ(ErrorOf("? [a, b]\n: 1\n"), "test.yaml:1: (top level): a key must be a plain name");
  EXPECT_EQ(ErrorOf("collectors:\n  ? {drops: 1}\n  : 1\n"), "test.yaml:2: collectors: a key must be a plain name");
  EXPECT_EQ(ErrorOf("devices: {grace_period: 1m}\n---\ndevices: {grace_period: 2m}\n"),
            "test.yaml:2: a second YAML document");
}

TEST(Config, InvalidYamlNamesLine) {
  EXPECT_EQ(ErrorOf("devices:\n  include: [a\n"), "test.yaml:3: invalid YAML: end of sequence flow not found");
}

std::string LoadError(const std::string& path) {
  try {
    collectors::LoadConfig(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, LoadNamesUnreadableFile) {
  EXPECT_EQ(LoadError("/nonexistent/vnet.yaml"),
            "/nonexistent/vnet.yaml: cannot open: No such file or directory");
}

// What is not a regular file is refused without reading: a directory would give the defaults,
// a FIFO would block for ever, /dev/zero would fill memory.
TEST(Config, LoadRefusesWhatIsNotARegularFile) {
  testing::TempDir dir;
  EXPECT_EQ(LoadError(dir.path().string()), dir.path().string() + ": not a regular file");
  std::string fifo = (dir.path() / "fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(LoadError(fifo), fifo + ": not a regular file");
  EXPECT_EQ(LoadError("/dev/zero"), "/dev/zero: not a regular file");
  std::string big = dir.Write("big.yaml", "# " + std::string(1 << 20, 'x') + "\n");
  EXPECT_EQ(LoadError(big), big + ": larger than 1048576 bytes");
}

TEST(Config, LoadReadsFile) {
  testing::TempDir dir;
  std::string path = dir.Write("c.yaml", "collectors: {drops: {max_entries: 128}}\n");
  EXPECT_EQ(collectors::LoadConfig(path).Get<Drops>().max_entries, 128u);
  std::string bad = dir.Write("bad.yaml", "bpf:\n  btf: x\n");
  try {
    collectors::LoadConfig(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), bad + ":2: bpf.btf: unknown key");
  }
}

TEST(Config, DeviceSelection) {
  Devices d;
  d.include = {"vnet*", "tap?"};
  d.exclude = {"vnet9*"};
  EXPECT_TRUE(d.Selected("vnet0"));
  EXPECT_TRUE(d.Selected("tap1"));
  EXPECT_FALSE(d.Selected("tap12"));
  EXPECT_FALSE(d.Selected("vnet91"));
  EXPECT_FALSE(d.Selected("eth0"));
  EXPECT_FALSE(d.Selected(""));
  EXPECT_TRUE(Devices{}.Selected(""));  // the default "*" also keeps drops without a device
}

}  // namespace
}  // namespace vnet::config
