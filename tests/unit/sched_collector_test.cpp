// The sched collector on fixed inputs: thread discovery on a /proc of files, and the collector
// on fixed map contents (threads handed to the probe, series per VM and kind, retirement).
#include "collectors/sched_collector.h"

#include <gtest/gtest.h>

#include <string>

#include "collectors/registry.h"
#include "metrics/family.h"
#include "../support/fixtures.h"

namespace vnet::collectors {
namespace {

using vnet::testing::FakeTable;
using vnet::testing::TempDir;
using namespace std::string_literals;

TEST(QemuVmNameTest, TakesTheGuestNameOfEitherForm) {
  EXPECT_EQ(identity::QemuVmName("qemu-system-x86_64\0-name\0guest=web1,debug-threads=on\0-m\0512"s), "web1");
  EXPECT_EQ(identity::QemuVmName("qemu\0-name\0web2\0"s), "web2");
  EXPECT_EQ(identity::QemuVmName("qemu\0-name\0a,,b,process=x\0"s), "a,b");
  EXPECT_EQ(identity::QemuVmName("qemu\0-name\0debug-threads=on,guest=c\0"s), "c");
  EXPECT_EQ(identity::QemuVmName("qemu\0-m\0512\0"s), "");
  EXPECT_EQ(identity::QemuVmName("qemu\0-name"s), "");
}

TEST(QemuThreadKindTest, NamesQemuGivesItsThreads) {
  EXPECT_EQ(identity::QemuThreadKind("", true, 42), SCHED_MAIN);
  EXPECT_EQ(identity::QemuThreadKind("CPU 3/KVM", false, 42), SCHED_VCPU);
  EXPECT_EQ(identity::QemuThreadKind("CPU 0/TCG", false, 42), SCHED_VCPU);
  EXPECT_EQ(identity::QemuThreadKind("IO iothread0", false, 42), SCHED_IOTHREAD);
  EXPECT_EQ(identity::QemuThreadKind("vhost-42", false, 42), SCHED_VHOST);
  EXPECT_EQ(identity::QemuThreadKind("vhost-43", false, 42), std::nullopt);
  EXPECT_EQ(identity::QemuThreadKind("worker", false, 42), std::nullopt);
  EXPECT_EQ(identity::QemuThreadKind("CPU", false, 42), std::nullopt);
  EXPECT_EQ(identity::OvsThreadKind("handler12"), SCHED_HANDLER);
  EXPECT_EQ(identity::OvsThreadKind("revalidator3"), SCHED_REVALIDATOR);
  EXPECT_EQ(identity::OvsThreadKind("urcu2"), std::nullopt);
}

std::string Stat(int pid, const std::string& comm, int start) {
  std::string s = std::to_string(pid) + " (" + comm + ") S";
  for (int field = 4; field < 22; field++) s += " 0";
  return s + " " + std::to_string(start) + " 0 0\n";
}

// A process in a fake /proc: comm, cmdline, stat and its threads' names.
void Process(const TempDir& proc, int pid, const std::string& comm, const std::string& cmdline,
             const std::map<int, std::string>& threads) {
  const std::string dir = std::to_string(pid) + "/";
  proc.Write(dir + "comm", comm + "\n");
  proc.Write(dir + "cmdline", cmdline);
  proc.Write(dir + "stat", Stat(pid, comm, 1000 + pid));
  for (const auto& [tid, name] : threads) proc.Write(dir + "task/" + std::to_string(tid) + "/comm", name + "\n");
}

TEST(VmThreadsTest, FindsQemusThreadsVhostWorkersAndOvsHandlers) {
  TempDir proc, libvirt;
  Process(proc, 100, "qemu-system-x86", "qemu\0-name\0guest=web1,debug-threads=on\0"s,
          {{100, "qemu-system-x86"}, {101, "CPU 0/KVM"}, {102, "CPU 1/KVM"}, {103, "worker"}, {104, "IO io0"},
           {105, "vhost-100"}});
  Process(proc, 200, "vhost-100", "", {{200, "vhost-100"}});  // before 6.4: a kernel thread
  Process(proc, 201, "vhost-999", "", {{201, "vhost-999"}});  // of no qemu we know
  Process(proc, 300, "ovs-vswitchd", "ovs-vswitchd\0"s, {{300, "ovs-vswitchd"}, {301, "handler12"}, {302, "revalidator3"}, {303, "urcu2"}});
  Process(proc, 400, "qemu-system-x86", "qemu\0-m\0512\0"s, {{400, "qemu-system-x86"}, {401, "CPU 0/KVM"}});  // no name
  Process(proc, 500, "qemu-kvm", "qemu\0-name\0guest=ignored\0"s, {{500, "qemu-kvm"}, {501, "CPU 0/KVM"}});
  Process(proc, 600, "bash", "bash\0"s, {{600, "bash"}, {601, "CPU 0/KVM"}});
  libvirt.Write("db1.pid", "500");
  libvirt.Write("stale.pid", "600");  // not qemu: not a VM
  proc.Write("self/comm", "vnet_exporter\n");

  identity::VmThreads threads(proc.path().string(), libvirt.path().string());
  auto scan = threads.Scan();
  ASSERT_EQ(scan.processes.size(), 3u);
  EXPECT_EQ(scan.processes[100].vm_name, "web1");
  EXPECT_EQ(scan.processes[100].start, 1100u);
  EXPECT_EQ(scan.processes[300].vm_name, "");
  EXPECT_EQ(scan.processes[500].vm_name, "db1");
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> got;
  for (const auto& [tid, t] : scan.threads) got[tid] = {t.pid, t.kind};
  const std::map<uint32_t, std::pair<uint32_t, uint32_t>> want = {
      {100, {100, SCHED_MAIN}},  {101, {100, SCHED_VCPU}},    {102, {100, SCHED_VCPU}},
      {104, {100, SCHED_IOTHREAD}}, {105, {100, SCHED_VHOST}}, {200, {100, SCHED_VHOST}},
      {301, {300, SCHED_HANDLER}}, {302, {300, SCHED_REVALIDATOR}}, {500, {500, SCHED_MAIN}},
      {501, {500, SCHED_VCPU}}};
  EXPECT_EQ(got, want);

  // A classified thread is not read again; a new one is.
  proc.Write("100/task/101/comm", "renamed\n");
  proc.Write("100/task/106/comm", "CPU 2/KVM\n");
  scan = threads.Scan();
  EXPECT_EQ(scan.threads[101].kind, SCHED_VCPU);
  EXPECT_EQ(scan.threads[106].kind, SCHED_VCPU);
}

// A process that execs qemu after it was first seen: found within kRecheck scans, at the next
// one when libvirt's pid file names it.
TEST(VmThreadsTest, AProcessThatBecomesQemuIsFound) {
  TempDir proc, libvirt;
  Process(proc, 100, "libvirtd", "", {{100, "libvirtd"}});
  Process(proc, 200, "sh", "", {{200, "sh"}});
  identity::VmThreads threads(proc.path().string(), libvirt.path().string());
  EXPECT_TRUE(threads.Scan().processes.empty());
  Process(proc, 100, "qemu-system-x86", "qemu\0-name\0guest=late\0"s, {{100, "qemu-system-x86"}});
  Process(proc, 200, "qemu-system-x86", "qemu\0-name\0guest=named\0"s, {{200, "qemu-system-x86"}});
  libvirt.Write("named.pid", "200");
  auto scan = threads.Scan();
  EXPECT_EQ(scan.processes[200].vm_name, "named");
  int scans = 1;
  while (!scan.processes.count(100) && scans < 100) {
    scan = threads.Scan();
    scans++;
  }
  EXPECT_LE(scans, static_cast<int>(identity::VmThreads::kRecheck));
  EXPECT_EQ(scan.processes[100].vm_name, "late");
}

// Inputs others control: a name longer than any comm, a huge command line, a FIFO.
TEST(VmThreadsTest, OversizedAndOddFilesAreSkipped) {
  TempDir proc, libvirt;
  Process(proc, 100, "qemu-system-x86", "qemu\0-name\0"s + std::string(1 << 17, 'a'), {{100, "x"}});
  Process(proc, 200, std::string(100, 'q'), "", {});
  Process(proc, 300, "qemu-system-x86", "qemu\0-name\0"s + std::string(257, 'b'), {{300, "x"}});
  libvirt.Write("huge.pid", std::string(100, '1'));
  identity::VmThreads threads(proc.path().string(), libvirt.path().string());
  auto scan = threads.Scan();
  EXPECT_TRUE(scan.processes.empty());
  EXPECT_TRUE(scan.threads.empty());
}

// Any user may start a qemu (or a process named like one) calling itself after a VM libvirt runs:
// it is not timed, so it cannot mix into that VM's series.
TEST(VmThreadsTest, AQemuCallingItselfALibvirtVmIsNotTimed) {
  TempDir proc, libvirt;
  Process(proc, 100, "qemu-system-x86", "qemu\0-name\0guest=web1\0"s, {{100, "x"}});
  Process(proc, 200, "qemu-system-x86", "qemu\0-name\0guest=web1\0"s, {{200, "x"}});
  Process(proc, 300, "qemu-system-x86", "qemu\0-name\0guest=mine\0"s, {{300, "x"}});
  libvirt.Write("web1.pid", "100");
  identity::VmThreads threads(proc.path().string(), libvirt.path().string());
  auto scan = threads.Scan();
  ASSERT_EQ(scan.processes.size(), 2u);
  EXPECT_EQ(scan.processes[100].vm_name, "web1");
  EXPECT_EQ(scan.processes[300].vm_name, "mine");
}

class SchedCollectorTest : public ::testing::Test {
 protected:
  SchedCollectorTest() {
    auto probe = std::make_unique<SchedCollector::Probe>();
    auto t = std::make_unique<FakeTable<__u32, sched_thread>>();
    auto s = std::make_unique<FakeTable<sched_key, sched_stats>>();
    threads = t.get();
    stats = s.get();
    probe->tables = {std::move(t),
                     [this](uint32_t word, uint64_t bits) {
                       bitmap[word] = bits;
                       return true;
                     },
                     std::move(s), [](uint32_t) { return uint64_t{7}; }, [this] { return now_ns; }};
    probe->attach_type = "tp_btf";
    cfg.devices.grace_period = std::chrono::seconds(300);
    collector = std::make_unique<SchedCollector>(std::move(probe), "", [this] { return scan; }, cfg);
    scan.processes = {{100, {1, "web1"}}, {300, {3, ""}}};
    scan.threads = {{100, {100, SCHED_MAIN}}, {101, {100, SCHED_VCPU}}, {102, {100, SCHED_VCPU}},
                    {301, {300, SCHED_HANDLER}}};
  }

  void Count(uint32_t pid, uint32_t kind, uint64_t waits_2us, uint64_t run_ns) {
    sched_stats v{};
    v.delay.slots[1] = waits_2us;
    v.delay.sum_ns = waits_2us * 1500;
    v.run_ns = run_ns;
    stats->Put({pid, kind}, v);
  }

  // The value of `family`'s series with `labels` (the histogram's count), -1 without one.
  double Value(const std::string& family, const metrics::Labels& labels) {
    for (const auto& f : collector->Collect()) {
      if (f.name != family) continue;
      for (const auto& m : f.metric) {
        metrics::Labels l;
        for (const auto& lp : m.label) l.emplace_back(lp.name, lp.value);
        if (l != labels) continue;
        if (f.type == prometheus::MetricType::Histogram) return static_cast<double>(m.histogram.sample_count);
        return f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
      }
    }
    return -1;
  }

  config::Config cfg;
  identity::ThreadScan scan;
  uint64_t now_ns = 1'000'000'000;
  std::map<uint32_t, uint64_t> bitmap;  // sched_tracked's words as last written
  FakeTable<__u32, sched_thread>* threads = nullptr;
  FakeTable<sched_key, sched_stats>* stats = nullptr;
  std::unique_ptr<SchedCollector> collector;
};

TEST_F(SchedCollectorTest, HandsTheFoundThreadsToTheProbe) {
  collector->Collect();
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> got;
  for (const auto& [tid, t] : threads->rows) got[tid] = {t.pid, t.kind};
  EXPECT_EQ(got, (std::map<uint32_t, std::pair<uint32_t, uint32_t>>{{100, {100, SCHED_MAIN}},
                                                                    {101, {100, SCHED_VCPU}},
                                                                    {102, {100, SCHED_VCPU}},
                                                                    {301, {300, SCHED_HANDLER}}}));
  // The probe's timestamps of a thread still there are left alone; a gone thread is removed.
  threads->rows[0].second.queued_at = 5;
  scan.threads.erase(102);
  collector->Collect();
  EXPECT_EQ(threads->rows.size(), 3u);
  for (const auto& [tid, t] : threads->rows) {
    EXPECT_NE(tid, 102u);
    if (tid == 100) {
      EXPECT_EQ(t.queued_at, 5u);
    }
  }
  EXPECT_EQ(Value("vnet_sched_threads", {{"vm_name", "web1"}, {"thread", "vcpu"}}), 1);
  EXPECT_EQ(Value("vnet_sched_threads", {{"thread", "handler"}}), 1);
  // The probe's filter: a bit per thread in the map, 100 and 101 in word 1, 301 in word 4.
  EXPECT_EQ(bitmap, (std::map<uint32_t, uint64_t>{{1, 1ull << 36 | 1ull << 37}, {4, 1ull << 45}}));
}

TEST_F(SchedCollectorTest, SeriesPerVmAndKindWithTheRunningThreadsTimeSoFar) {
  Count(100, SCHED_VCPU, 4, 2'000'000'000);
  Count(300, SCHED_HANDLER, 2, 0);
  collector->Collect();
  // vCPU 101 on a CPU for the last 0.5 s.
  for (auto& [tid, t] : threads->rows) {
    if (tid == 101) t.running_at = now_ns - 500'000'000;
  }
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"vm_name", "web1"}, {"thread", "vcpu"}}), 4);
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"thread", "handler"}}), 2);
  EXPECT_DOUBLE_EQ(Value("vnet_sched_running_seconds_total", {{"vm_name", "web1"}, {"thread", "vcpu"}}), 2.5);
  for (const auto& m : collector->Maps()) {
    if (m.map == "sched_stats") {
      EXPECT_EQ(m.entries, 2u);
      EXPECT_EQ(m.update_failures, 7u);
    }
    if (m.map == "sched_threads") {
      EXPECT_EQ(m.entries, 4u);
    }
  }
}

TEST_F(SchedCollectorTest, AnExitedVmStaysForTheGracePeriodUnlessItRunsAgain) {
  Count(100, SCHED_VCPU, 4, 0);
  collector->Collect();
  scan.processes.erase(100);
  std::erase_if(scan.threads, [](const auto& t) { return t.second.pid == 100; });
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"vm_name", "web1"}, {"thread", "vcpu"}}), 4) << "in its grace period";
  EXPECT_EQ(Value("vnet_sched_threads", {{"vm_name", "web1"}, {"thread", "vcpu"}}), -1);
  // web1 started again: the old process's series go at once, the new one starts from zero.
  scan.processes[150] = {5, "web1"};
  scan.threads[151] = {150, SCHED_VCPU};
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"vm_name", "web1"}, {"thread", "vcpu"}}), -1);
  EXPECT_EQ(stats->rows.size(), 0u);
}

// A restarted ovs-vswitchd starts its series from zero: the old one's end at once.
TEST_F(SchedCollectorTest, ARestartedOvsVswitchdStartsAgain) {
  Count(300, SCHED_HANDLER, 2, 0);
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"thread", "handler"}}), 2);
  scan.processes.erase(300);
  scan.threads.erase(301);
  scan.processes[350] = {9, ""};
  scan.threads[351] = {350, SCHED_HANDLER};
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"thread", "handler"}}), -1);
  EXPECT_EQ(Value("vnet_sched_threads", {{"thread", "handler"}}), 1);
}

TEST_F(SchedCollectorTest, AReusedPidIsAnotherProcess) {
  Count(100, SCHED_VCPU, 4, 0);
  collector->Collect();
  scan.processes[100] = {2, "web9"};  // another start time
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"vm_name", "web9"}, {"thread", "vcpu"}}), -1);
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"vm_name", "web1"}, {"thread", "vcpu"}}), -1);
}

TEST_F(SchedCollectorTest, WithoutGraceAnExitedVmGoesAtOnce) {
  cfg.devices.grace_period = std::chrono::seconds(0);
  auto probe = std::make_unique<SchedCollector::Probe>();
  auto t = std::make_unique<FakeTable<__u32, sched_thread>>();
  auto s = std::make_unique<FakeTable<sched_key, sched_stats>>();
  stats = s.get();
  probe->tables = {std::move(t), [](uint32_t, uint64_t) { return true; }, std::move(s),
                   [](uint32_t) { return uint64_t{0}; }, [this] { return now_ns; }};
  collector = std::make_unique<SchedCollector>(std::move(probe), "", [this] { return scan; }, cfg);
  Count(100, SCHED_VCPU, 4, 0);
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"vm_name", "web1"}, {"thread", "vcpu"}}), 4);
  scan.processes.erase(100);
  std::erase_if(scan.threads, [](const auto& t) { return t.second.pid == 100; });
  EXPECT_EQ(Value("vnet_sched_delay_seconds", {{"vm_name", "web1"}, {"thread", "vcpu"}}), -1);
  EXPECT_EQ(stats->rows.size(), 0u);
}

TEST_F(SchedCollectorTest, ThreadsNotTakenByAFullMapAreCounted) {
  threads->capacity = 2;
  collector->Collect();
  for (const auto& m : collector->Maps()) {
    if (m.map == "sched_threads") {
      EXPECT_EQ(m.entries, 2u);
      EXPECT_EQ(m.update_failures, 2u);
    }
  }
}

TEST(SchedConfigTest, DefaultsAndBounds) {
  auto cfg = ParseConfig("collectors:\n  sched: {max_threads: 100, max_series: 50}\n", "test.yaml");
  EXPECT_EQ(cfg.Get<SchedCollector::Settings>().max_threads, 100u);
  EXPECT_EQ(cfg.Get<SchedCollector::Settings>().max_series, 50u);
  EXPECT_TRUE(ParseConfig("", "test.yaml").Get<SchedCollector::Settings>().enabled);
  EXPECT_ANY_THROW(ParseConfig("collectors:\n  sched: {max_threads: 1}\n", "test.yaml"));
  EXPECT_ANY_THROW(ParseConfig("collectors:\n  sched: {pids: 1}\n", "test.yaml"));
}

}  // namespace
}  // namespace vnet::collectors
