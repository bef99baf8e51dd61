// The vnet_exporter binary as an operator runs it: flags, --config.check, exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>

#include "../support/fixtures.h"
#include "../support/netns.h"

namespace vnet::testing {
namespace {

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

Result Exporter(const std::string& args) {
  std::string cmd = std::string(VNET_EXPORTER_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(CliTest, VersionAndHelp) {
  EXPECT_EQ(Exporter("--version").output, "vnet_exporter 0.1.0\n");
  Result help = Exporter("--help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.output.find("--web.listen-address=ADDR  address to serve on (default \":9748\")"), std::string::npos);
}

TEST(CliTest, UnknownFlagIsAUsageError) {
  Result r = Exporter("--web.listen=:1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("vnet_exporter: unknown flag --web.listen=:1"), std::string::npos) << r.output;
}

TEST(CliTest, ConfigCheckRejectsBrokenConfigsNamingFileLineAndKey) {
  TempDir dir;
  struct Case {
    std::string yaml, error;
  } cases[] = {
      {"collectors:\n  drop:\n    enabled: true\n", ":2: collectors.drop: unknown key"},
      {"collectors:\n  drops:\n    enabled: yes please\n", ":3: collectors.drops.enabled: expected true or false"},
      {"collectors:\n  drops:\n    max_entries: 1\n", ":3: collectors.drops.max_entries: must be between 64 and"},
      {"devices:\n  grace_period: soon\n", ":2: devices.grace_period: expected a duration"},
      {"devices: [\n", ":2: invalid YAML: end of sequence flow not found"},
  };
  for (const auto& c : cases) {
    std::string path = dir.Write("bad.yaml", c.yaml);
    Result r = Exporter("--config.check --config.file=" + path);
    EXPECT_EQ(r.code, 1) << c.yaml;
    EXPECT_NE(r.output.find("configuration: " + path + c.error), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("attached"), std::string::npos) << "nothing may be attached on a bad config";
  }
  Result missing = Exporter("--config.check --config.file=/nonexistent.yaml");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("configuration: /nonexistent.yaml: cannot open: No such file or directory"),
            std::string::npos)
      << missing.output;
  // A directory once ran on the defaults.
  Result directory = Exporter("--config.check --config.file=" + dir.path().string());
  EXPECT_EQ(directory.code, 1);
  EXPECT_NE(directory.output.find("configuration: " + dir.path().string() + ": not a regular file"),
            std::string::npos)
      << directory.output;
}

TEST(CliTest, ConfigCheckLoadsAndAttachesAGoodConfig) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  TempDir dir;
  // Without the upcall collector: it needs openvswitch's module BTF, which 5.10 lacks
  // (tests/bpf/upcall_test.cpp covers it where it exists).
  std::string path =
      dir.Write("good.yaml", "collectors:\n  drops:\n    max_entries: 1024\n  upcall:\n    enabled: false\n");
  Result r = Exporter("--config.check --config.file=" + path);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("collector drops: skb:kfree_skb attached (tp_btf)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("configuration valid, all probes attached"), std::string::npos) << r.output;
  // The embedded default is valid; whether all of it attaches depends on the kernel.
  EXPECT_NE(Exporter("--config.check").output.find("configuration valid"), std::string::npos);
}

// For kernels without /sys/kernel/btf/vmlinux: the same BTF given as a file (here, extracted from
// the running kernel; in the kernel matrix, from each guest kernel).
TEST(CliTest, ExternalBtfFileIsUsed) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  TempDir dir;
  std::string btf = (dir.path() / "vmlinux.btf").string();
  std::filesystem::copy_file("/sys/kernel/btf/vmlinux", btf);
  // Not the upcall collector: it relocates against module BTF, which only the kernel has.
  TempDir cfg_dir;
  std::string no_upcall = cfg_dir.Write("no_upcall.yaml", "collectors:\n  upcall:\n    enabled: false\n");
  Result r = Exporter("--config.check --config.file=" + no_upcall + " --bpf.btf-path=" + btf);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("collector drops: skb:kfree_skb attached"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("collector tap: skb:skb_copy_datagram_iovec attached"), std::string::npos) << r.output;
  std::string cfg =
      cfg_dir.Write("c.yaml", "bpf:\n  btf_path: " + btf + "\ncollectors:\n  upcall:\n    enabled: false\n");
  EXPECT_EQ(Exporter("--config.check --config.file=" + cfg).code, 0);
}

TEST(CliTest, UnreadableBtfIsReportedAsNotAttached) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  Result r = Exporter("--config.check --bpf.btf-path=/nonexistent.btf");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("skb:kfree_skb not attached: /nonexistent.btf: cannot read kernel BTF"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace vnet::testing
