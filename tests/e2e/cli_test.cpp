// The vnet_exporter binary as an operator runs it: flags, --config.check, exit codes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "../support/fixtures.h"
#include "../support/http.h"
#include "../support/netns.h"
#include "../support/running.h"
#include "../support/slow_vswitchd.h"
#include "app/capabilities.h"

namespace vnet::testing {
namespace {

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

// `prefix` runs it under another command (setpriv).
Result Exporter(const std::string& args, const std::string& prefix = "") {
  std::string cmd = prefix + std::string(VNET_EXPORTER_BIN) + " " + args + " 2>&1";
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
      // Found by tests/fuzz: YAML::LoadAll never ended on it and took all memory (exit 134).
      {",d<!ENTITYevices", ":1: invalid YAML"},
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
  EXPECT_EQ(r.output.find("without CAP_"), std::string::npos) << r.output;
  // The embedded default is valid; whether all of it attaches depends on the kernel.
  EXPECT_NE(Exporter("--config.check").output.find("configuration valid"), std::string::npos);
}

// Capabilities a collector can do without are named with what is lost, once, at start.
TEST(CliTest, MissingOptionalCapabilitiesAreSaid) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  Result r = Exporter("--config.check", "setpriv --bounding-set -sys_admin,-syslog -- ");
  for (const char* line : {"warn without CAP_SYS_ADMIN: collectors drops, tap and upcall cannot enter other network "
                           "namespaces (setns): their devices there are labelled by ifindex, not by name\n",
                           "warn without CAP_SYSLOG: collector drops cannot read kernel addresses in /proc/kallsyms: "
                           "its location label is \"unknown\"\n"}) {
    EXPECT_NE(r.output.find(line), std::string::npos) << r.output;
  }
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


// SIGHUP reloads and never kills; SIGTERM ends it.
TEST(CliTest, SighupReloadsAndSigtermEnds) {
  TempDir dir;
  std::string cfg = dir.Write("none.yaml", "collectors: {drops: {enabled: false}, tap: {enabled: false}, "
                                           "upcall: {enabled: false}, ovs: {enabled: false}, interface: {enabled: false}}\n");
  Running e("--web.listen-address=127.0.0.1:0 --config.file=" + cfg);
  const uint16_t port = ListeningPort(e);
  e.Signal(SIGHUP);
  ASSERT_TRUE(e.WaitForOutput("reload: configuration " + cfg + " unchanged")) << e.output();
  EXPECT_EQ(HttpGet(port, "/metrics").status, 200);
  e.Signal(SIGTERM);
  EXPECT_EQ(e.Wait(), 0) << e.output();
  EXPECT_NE(e.output().find("shutting down on Terminated"), std::string::npos) << e.output();
}

// --web.config.file with the binary: curl without, with wrong and with right credentials; a bad
// file stops it at start with file, line and key.
TEST(CliTest, WebConfigFileBasicAuth) {
  TempDir dir;
  const std::string hash = Bcrypt("s3cret");
  const std::string web = dir.Write("web.yml", "basic_auth_users:\n  prometheus: " + hash + "\n");
  std::string cfg = dir.Write("none.yaml", "collectors: {drops: {enabled: false}, tap: {enabled: false}, "
                                           "upcall: {enabled: false}, ovs: {enabled: false}, interface: {enabled: false}}\n");
  Running e("--web.listen-address=127.0.0.1:0 --config.file=" + cfg + " --web.config.file=" + web);
  const std::string url = "http://127.0.0.1:" + std::to_string(ListeningPort(e));
  auto status = [&](const std::string& curl_args) {
    return Sh("curl -s -o /dev/null -w '%{http_code}' " + curl_args + " " + url + "/metrics");
  };
  EXPECT_EQ(status(""), "401");
  EXPECT_EQ(status("-u prometheus:wrong"), "401");
  EXPECT_EQ(status("-u prometheus:s3cret"), "200");

  const std::string bad = dir.Write("bad.yml", "basic_auth_users:\n  prometheus: plain\n");
  Result r = Exporter("--config.file=" + cfg + " --web.config.file=" + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("web configuration: " + bad + ":2: basic_auth_users.prometheus: expected a bcrypt hash"),
            std::string::npos)
      << r.output;
}

// SIGHUP and POST /-/reload read both files again: the web configuration takes effect at once
// (a new password), a changed main configuration is reported as waiting for a restart, and a
// bad file leaves the previous configuration in force, said in the answer, the log and
// vnet_exporter_config_last_reload_successful.
TEST(CliTest, ReloadAppliesTheWebConfigAndReportsWhatNeedsARestart) {
  TempDir dir;
  const std::string web = dir.Write("web.yml", "basic_auth_users:\n  prometheus: " + Bcrypt("one") + "\n");
  const std::string none = "collectors: {drops: {enabled: false}, tap: {enabled: false}, upcall: {enabled: false}, "
                           "ovs: {enabled: false}, interface: {enabled: false}}\n";
  const std::string cfg = dir.Write("cfg.yaml", none);
  Running e("--web.listen-address=127.0.0.1:0 --config.file=" + cfg + " --web.config.file=" + web);
  const std::string url = "http://127.0.0.1:" + std::to_string(ListeningPort(e));
  auto curl = [&](const std::string& args, const std::string& path = "/metrics") {
    return Sh("curl -s -w ' %{http_code}' " + args + " " + url + path);
  };
  auto gauge = [&](const std::string& name) {
    const std::string body = curl("-u prometheus:two");
    const auto at = body.find("\n" + name + " ");
    return at == std::string::npos ? std::string("absent") : body.substr(at + name.size() + 2, 1);
  };
  EXPECT_EQ(curl("-o /dev/null -u prometheus:one"), " 200");

  dir.Write("web.yml", "basic_auth_users:\n  prometheus: " + Bcrypt("two") + "\n");
  e.Signal(SIGHUP);
  ASSERT_TRUE(e.WaitForOutput("web configuration " + web + " in effect")) << e.output();
  EXPECT_EQ(curl("-o /dev/null -u prometheus:one"), " 401");
  EXPECT_EQ(curl("-o /dev/null -u prometheus:two"), " 200");
  EXPECT_EQ(gauge("vnet_exporter_config_restart_pending"), "0");

  dir.Write("cfg.yaml", "collectors:\n  tap: {enabled: false, max_series: 8192}\n  drops: {enabled: false}\n"
                        "  upcall: {enabled: false}\n  ovs: {enabled: false}\n  interface: {enabled: false}\n");
  EXPECT_EQ(curl("-u prometheus:two -X POST", "/-/reload"), "reloaded\n 200");
  EXPECT_TRUE(e.WaitForOutput("collectors.tap.max_series changed; takes effect when the exporter restarts")) << e.output();
  EXPECT_EQ(gauge("vnet_exporter_config_restart_pending"), "1");
  EXPECT_EQ(gauge("vnet_exporter_config_last_reload_successful"), "1");

  dir.Write("web.yml", "basic_auth_users:\n  prometheus: plain\n");
  const std::string refused = curl("-u prometheus:two -X POST", "/-/reload");
  EXPECT_NE(refused.find("web configuration: " + web + ":2: basic_auth_users.prometheus: expected a bcrypt hash"),
            std::string::npos)
      << refused;
  EXPECT_EQ(refused.substr(refused.size() - 4), " 500");
  EXPECT_EQ(curl("-o /dev/null -u prometheus:two"), " 200");  // the previous one stays
  EXPECT_EQ(gauge("vnet_exporter_config_last_reload_successful"), "0");
  EXPECT_EQ(curl("-o /dev/null -u prometheus:two", "/-/reload"), " 405");  // GET
  EXPECT_EQ(curl("-o /dev/null -X POST", "/-/reload"), " 401");
  e.Signal(SIGHUP);
  ASSERT_TRUE(e.WaitForOutput("reload failed, the previous configuration stays in effect")) << e.output();
  EXPECT_EQ(curl("-o /dev/null -u prometheus:two"), " 200");  // SIGHUP never kills
}

// SIGTERM while a scrape waits for a slow ovs-vswitchd: the scrape is answered in full, then
// the exporter ends (it used to abort the response).
TEST(CliTest, SigtermLetsAScrapeInProgressFinish) {
  TempDir dir;
  SlowVswitchd vs(dir.path().string(), std::chrono::milliseconds(300));
  std::string cfg = dir.Write("ovs.yaml", "collectors: {drops: {enabled: false}, tap: {enabled: false}, "
                                          "upcall: {enabled: false}, interface: {enabled: false}, "
                                          "ovs: {rundir: " + dir.path().string() + ", timeout: 5s}}\n");
  Running e("--web.listen-address=127.0.0.1:0 --config.file=" + cfg);
  const uint16_t port = ListeningPort(e);
  HttpResponse r;
  std::thread scrape([&] { r = HttpGet(port, "/metrics"); });
  ASSERT_TRUE(WaitFor([&] { return vs.served() > 0; }));  // the scrape is at ovs-vswitchd now
  e.Signal(SIGTERM);
  scrape.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("vnet_exporter_collector_success{collector=\"ovs\"} 1\n"), std::string::npos) << r.body;
  EXPECT_EQ(e.Wait(), 0) << e.output();
}

// Start-up with maps of millions of entries takes seconds: SIGTERM is not held until it ends.
TEST(CliTest, SigtermDuringStartUpEndsAtOnce) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  TempDir dir;
  std::string cfg = dir.Write("big.yaml", "collectors:\n  drops: {max_entries: 2097152}\n  tap: {backlog_slots: 4194304}\n"
                                          "  upcall: {enabled: false}\n  ovs: {enabled: false}\n");
  Running e("--web.listen-address=127.0.0.1:0 --config.file=" + cfg);
  // Before that the default action ends it too, with no word: wait until the signals are its own.
  ASSERT_TRUE(WaitFor([&] { return e.Blocks(SIGTERM); }));
  e.Signal(SIGTERM);
  EXPECT_EQ(e.Wait(), 0) << e.output();
  EXPECT_NE(e.output().find("shutting down on Terminated during start-up"), std::string::npos) << e.output();
  EXPECT_EQ(e.output().find("listening on"), std::string::npos) << e.output();
}

// A capability set line of /proc/<pid>/status or /proc/<pid>/task/<tid>/status.
uint64_t CapabilityLine(const std::string& status_file, const std::string& key) {
  std::ifstream status(status_file);
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1), nullptr, 16);
  }
  return ~0ull;
}

// Once its probes are attached the exporter keeps only what scrapes and late attaches need,
// in every thread, and scrapes still work; --capabilities.keep chooses fewer.
TEST(CliTest, KeepsOnlyTheCapabilitiesItNeeds) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs";
  constexpr uint64_t kBpf = 1ull << 39, kPerfmon = 1ull << 38, kSysAdmin = 1ull << 21, kSyslog = 1ull << 34;
  for (auto [flag, kept] : {std::pair{std::string(), kBpf | kPerfmon | kSysAdmin | kSyslog},
                            std::pair{std::string(" --capabilities.keep=cap_bpf,PERFMON"), kBpf | kPerfmon}}) {
    Running e("--web.listen-address=127.0.0.1:0" + flag);
    const uint16_t port = ListeningPort(e);
    const std::string proc = "/proc/" + std::to_string(e.pid());
    for (const char* set : {"CapEff", "CapPrm", "CapBnd"}) EXPECT_EQ(CapabilityLine(proc + "/status", set), kept) << set;
    EXPECT_EQ(CapabilityLine(proc + "/status", "CapInh"), 0u);
    EXPECT_EQ(CapabilityLine(proc + "/status", "CapAmb"), 0u);
    for (const auto& task : std::filesystem::directory_iterator(proc + "/task")) {
      const uint64_t eff = CapabilityLine(task.path().string() + "/status", "CapEff");
      EXPECT_EQ(eff & ~kept, 0u) << task.path() << " holds more than the kept set";
    }
    HttpResponse r = HttpGet(port, "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("vnet_exporter_collector_success{collector=\"drops\"} 1\n"), std::string::npos);
    const bool warned = e.output().find("without CAP_SYS_ADMIN") != std::string::npos;
    EXPECT_EQ(warned, !(kept & kSysAdmin)) << e.output();
  }
  Result bad = Exporter("--capabilities.keep=cap_bpf,cap_flying");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("--capabilities.keep: unknown capability \"cap_flying\""), std::string::npos) << bad.output;
}

// The systemd unit's way: a user of its own, given the unit's capabilities as ambient ones
// (read from packaging/vnet_exporter.service). Every probe attaches, scrapes work, and the
// exporter keeps the unit's --capabilities.keep; it cannot cut its bounding set without
// CAP_SETPCAP, so no_new_privs keeps anything dropped from coming back.
TEST(CliTest, RunsAsAnUnprivilegedUserWithTheUnitsCapabilities) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: switches user";
  std::ifstream unit(std::string(VNET_SOURCE_DIR) + "/packaging/vnet_exporter.service");
  std::string text((std::istreambuf_iterator<char>(unit)), std::istreambuf_iterator<char>());
  std::smatch ambient, keep;
  ASSERT_NE(text.find("\nLimitMEMLOCK=infinity\n"), std::string::npos);
  ASSERT_TRUE(std::regex_search(text, ambient, std::regex("\nAmbientCapabilities=([^\n]*)")));
  ASSERT_TRUE(std::regex_search(text, keep, std::regex("--capabilities\\.keep=([a-z_,]+)")));
  std::string caps;  // setpriv's form: +bpf,+perfmon,...
  std::stringstream in(ambient[1].str());
  for (std::string c; in >> c;) {
    for (char& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    caps += (caps.empty() ? "+" : ",+") + c.substr(4);
  }
  // A copy nobody may run (the build tree may be private to root).
  TempDir dir;
  const std::string bin = (dir.path() / "vnet_exporter").string();
  std::filesystem::copy_file(VNET_EXPORTER_BIN, bin);
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  std::filesystem::permissions(bin, std::filesystem::perms(0755));

  Running e("--web.listen-address=127.0.0.1:0 --capabilities.keep=" + keep[1].str(),
            // LimitMEMLOCK=infinity as in the unit, where the test may raise it: kernels before
            // 5.11 charge maps to it (a container may not, its kernel is newer).
            "sh -c 'ulimit -l unlimited 2>/dev/null; exec \"$0\" \"$@\"' setpriv --reuid=65534 --regid=65534 "
            "--clear-groups --inh-caps=" + caps + " --ambient-caps=" + caps + " --",
            bin);
  const uint16_t port = ListeningPort(e);
  HttpResponse r = HttpGet(port, "/metrics");
  ASSERT_EQ(r.status, 200) << e.output();
  // Every probe attached, but the upcall ones, which wait for the openvswitch module.
  int attached = 0;
  std::smatch m;
  const std::regex line("\nvnet_exporter_probe_attached\\{collector=\"([a-z]+)\",probe=\"([^\"]*)\"[^}]*\\} (\\d)");
  for (auto it = r.body.cbegin(); std::regex_search(it, r.body.cend(), m, line); it = m[0].second) {
    if (m[1] == "upcall") continue;
    EXPECT_EQ(m[3], "1") << m[1] << " " << m[2] << "\n" << e.output();
    attached++;
  }
  EXPECT_EQ(attached, 6);  // drops: kfree_skb; tap: its three; sched: sched_switch, sched_wakeup
  EXPECT_NE(r.body.find("vnet_exporter_collector_success{collector=\"drops\"} 1\n"), std::string::npos);
  EXPECT_EQ(e.output().find(" error "), std::string::npos) << e.output();
  const std::string status = "/proc/" + std::to_string(e.pid()) + "/status";
  EXPECT_EQ(CapabilityLine(status, "CapEff"), app::ParseCapabilities(keep[1].str()));
  EXPECT_EQ(CapabilityLine(status, "CapAmb"), 0u);
  EXPECT_EQ(Sh("awk '/^Uid:/{print $2} /^NoNewPrivs:/{print $2}' " + status), "65534\n1\n");
}

// A port in use is said first, before any probe is attached.
TEST(CliTest, AnAddressInUseIsReportedBeforeAttaching) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  listen(s, 1);
  socklen_t len = sizeof(addr);
  getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string listen = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Result r = Exporter("--web.listen-address=" + listen);
  close(s);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("cannot listen on " + listen + ": Address already in use"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("attached"), std::string::npos) << r.output;
  EXPECT_EQ(Exporter("--web.listen-address=127.0.0.1:99999").code, 1);
}

}  // namespace
}  // namespace vnet::testing
