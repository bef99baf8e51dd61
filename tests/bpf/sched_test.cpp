// The sched probe on the running kernel. A child process plays a VM's qemu (named by a libvirt
// pid file, its thread named as qemu names a vCPU); a real-time competitor of the test's own,
// pinned to the same CPU, makes the vCPU wait a known time: woken while the competitor spins,
// or preempted by it while spinning itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "../support/families.h"
#include "../support/fixtures.h"
#include "../support/netns.h"
#include "collectors/registry.h"
#include "collectors/sched_collector.h"

namespace vnet::testing {
namespace {

const std::string kVm = "vnet-sched-test";
constexpr auto kSpin = std::chrono::milliseconds(3);
// VHOST_SET_OWNER of <linux/vhost.h>, which does not compile as C++.
const unsigned long kVhostSetOwner = _IO(0xAF, 0x01);

void SpinFor(std::chrono::nanoseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

// The calling thread on CPU 0 under SCHED_FIFO `prio`.
bool PinFifo(int prio) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  sched_param p{};
  p.sched_priority = prio;
  return pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus) == 0 &&
         pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) == 0;
}

// What the child's vCPU thread is told through its pipe.
enum : char { kWake = 'w', kSpinUntilStopped = 's', kExit = 'x' };

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<bool> ready{false};
  std::atomic<pid_t> vcpu{0};  // the vCPU thread's id
};

// A process named like qemu (or `comm`) whose thread "CPU 0/KVM" (SCHED_FIFO 1 on CPU 0) reads
// commands from `cmd`; its main thread waits for the pipe to close.
pid_t StartVm(const char* comm, int cmd, Shared* shared) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_NAME, comm);
  std::thread vcpu([&] {
    pthread_setname_np(pthread_self(), "CPU 0/KVM");
    if (!PinFifo(1)) _exit(3);
    shared->vcpu = gettid();
    shared->ready = true;
    for (char c; read(cmd, &c, 1) == 1 && c != kExit;) {
      if (c != kSpinUntilStopped) continue;
      while (!shared->stop) {
      }
    }
  });
  vcpu.join();
  _exit(0);
}

class SchedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: loads BPF programs and runs real-time threads";
    // The soft-lockup detector queues a stop-class task on every CPU every 4 s, which preempts
    // the vCPU for microseconds: a wait the test did not make. Off while a test runs.
    std::ifstream(kSoftWatchdog) >> soft_watchdog_;
    if (!soft_watchdog_.empty()) std::ofstream(kSoftWatchdog) << "0";
    shared_ = static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(shared_, MAP_FAILED);
    new (shared_) Shared;
    ASSERT_EQ(pipe(cmd_), 0);
    vm_ = StartVm("qemu-system-x86", cmd_[0], shared_);
    ASSERT_GT(vm_, 0);
    ASSERT_TRUE(WaitFor([&] { return shared_->ready.load(); }));
    libvirt_.Write(kVm + ".pid", std::to_string(vm_) + "\n");
    cfg_ = collectors::ParseConfig("collectors:\n  interface: {libvirt_dir: " + libvirt_.path().string() + "}\n",
                                   "test.yaml");
    collector_ = collectors::SchedCollector::Attach(cfg_, cfg_.Get<collectors::SchedCollector::Settings>());
    for (const auto& probe : collector_->Probes()) ASSERT_TRUE(probe.attached) << probe.probe << ": " << probe.error;
  }

  void TearDown() override {
    if (vm_ > 0) {
      char c = kExit;
      shared_->stop = true;
      EXPECT_EQ(write(cmd_[1], &c, 1), 1);
      int status = 0;
      waitpid(vm_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the VM's vCPU thread could not run as SCHED_FIFO";
    }
    if (shared_ && shared_ != MAP_FAILED) munmap(shared_, sizeof(Shared));
    if (!soft_watchdog_.empty()) std::ofstream(kSoftWatchdog) << soft_watchdog_;
    for (int fd : cmd_) {
      if (fd >= 0) close(fd);
    }
  }

  Hist Delay(const Labels& want) { return HistogramOf(collector_->Collect(), "vnet_sched_delay_seconds", want); }

  // The value of `family`'s series with `want`, -1 without one.
  double Value(const std::string& family, const Labels& want) {
    for (const auto& f : collector_->Collect()) {
      if (f.name != family) continue;
      for (const auto& m : f.metric) {
        Labels l;
        for (const auto& lp : m.label) l[lp.name] = lp.value;
        if (l == want) return f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
      }
    }
    return -1;
  }

  void Tell(char c) { ASSERT_EQ(write(cmd_[1], &c, 1), 1); }

  // Whether the vCPU thread sleeps (in its read). A command written while it still runs, as
  // happens in an emulated guest, is read without a wakeup: no wait. (The competitor's tests
  // need no such check: their competitor preempts a vCPU that is late, one wait instead.)
  bool Asleep() const {
    std::ifstream f("/proc/" + std::to_string(vm_) + "/task/" + std::to_string(shared_->vcpu.load()) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t comm_end = stat.rfind(')');  // the state follows the name, which may hold spaces
    return comm_end != std::string::npos && comm_end + 2 < stat.size() && stat[comm_end + 2] == 'S';
  }

  static constexpr const char* kSoftWatchdog = "/proc/sys/kernel/soft_watchdog";
  std::string soft_watchdog_;  // its value before the test, empty without one
  TempDir libvirt_;
  Shared* shared_ = nullptr;
  int cmd_[2] = {-1, -1};
  pid_t vm_ = -1;
  config::Config cfg_;
  std::unique_ptr<collectors::SchedCollector> collector_;
};

// N wakeups while the competitor spins 3 ms, then one more to start the vCPU spinning, and M
// preemptions of the spinning vCPU for 3 ms each: exactly N + 1 + M waits, none shorter than
// 1.95 ms (2^-9 s). The competitor is a thread of the test process named like a vCPU too: not a VM's.
TEST_F(SchedTest, VcpuWaitsAreTimedWhenWokenAndWhenPreempted) {
  constexpr int kWakeups = 10, kPreemptions = 10;
  const Labels vcpu = {{"vm_name", kVm}, {"thread", "vcpu"}};
  EXPECT_EQ(Value("vnet_sched_threads", vcpu), 1);
  EXPECT_EQ(Value("vnet_sched_threads", {{"vm_name", kVm}, {"thread", "main"}}), 1);
  const Hist before = Delay(vcpu);
  const double ran_before = std::max(0.0, Value("vnet_sched_running_seconds_total", vcpu));

  std::thread competitor([&] {
    pthread_setname_np(pthread_self(), "CPU 1/KVM");
    if (!PinFifo(2)) return;
    for (int i = 0; i < kWakeups; i++) {
      Tell(kWake);  // the vCPU is runnable from here, behind a higher priority
      SpinFor(kSpin);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // it runs, and blocks again
    }
    Tell(kSpinUntilStopped);
    SpinFor(kSpin);
    for (int i = 0; i < kPreemptions; i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // it spins
      SpinFor(kSpin);  // woken by the timer: it preempted the vCPU
    }
    shared_->stop = true;
  });
  competitor.join();
  ASSERT_TRUE(shared_->stop) << "the competitor could not run as SCHED_FIFO on CPU 0";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  const Hist after = Delay(vcpu);
  const double n = kWakeups + 1 + kPreemptions;
  EXPECT_EQ(after.count - before.count, n);
  EXPECT_EQ(after.Le(0.001953125) - before.Le(0.001953125), 0) << "a wait shorter than the competitor's 3 ms spin";
  EXPECT_EQ(after.Le(0.0625) - before.Le(0.0625), n) << "a wait above 62.5 ms";
  EXPECT_GE(after.sum - before.sum, n * 0.003);
  // It spun while the competitor slept, M x 2 ms less the switches.
  EXPECT_GE(Value("vnet_sched_running_seconds_total", vcpu) - ran_before, kPreemptions * 0.0015);
  EXPECT_EQ(Value("vnet_sched_threads", {{"vm_name", kVm}, {"thread", "vcpu"}}), 1) << "the competitor was tracked";
}

// Without BTF-typed tracepoints (raw_tp, the fallback): the same waits.
TEST_F(SchedTest, RawTracepointsTimeTheSameWaits) {
  cfg_.disabled_attach_types = {"tp_btf"};
  collector_ = collectors::SchedCollector::Attach(cfg_, cfg_.Get<collectors::SchedCollector::Settings>());
  for (const auto& probe : collector_->Probes()) {
    ASSERT_TRUE(probe.attached) << probe.probe << ": " << probe.error;
    EXPECT_EQ(probe.attach_type, "raw_tp");
  }
  const Labels vcpu = {{"vm_name", kVm}, {"thread", "vcpu"}};
  ASSERT_EQ(Value("vnet_sched_threads", vcpu), 1);
  std::thread competitor([&] {
    if (!PinFifo(2)) return;
    for (int i = 0; i < 5; i++) {
      Tell(kWake);
      SpinFor(kSpin);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    shared_->stop = true;
  });
  competitor.join();
  ASSERT_TRUE(shared_->stop) << "the competitor could not run as SCHED_FIFO on CPU 0";
  const Hist h = Delay(vcpu);
  EXPECT_EQ(h.count, 5);
  EXPECT_EQ(h.Le(0.001953125), 0) << "a wait shorter than the competitor's 3 ms spin";
}

// A VM's vhost worker (what VHOST_SET_OWNER on /dev/vhost-net starts for qemu's vhost=on NICs):
// a kernel thread "vhost-<pid>" before 6.4, a thread of the VM's process since; either is the
// VM's `vhost` thread.
TEST_F(SchedTest, AVmsVhostWorkerIsItsVhostThread) {
  if (access("/dev/vhost-net", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/vhost-net (vhost_net is not loaded)";
  int done[2];
  ASSERT_EQ(pipe(done), 0);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t vm = fork();
  if (vm == 0) {
    close(done[1]);  // else the child holds the end whose closing tells it to exit
    prctl(PR_SET_NAME, "qemu-system-x86");
    const int fd = open("/dev/vhost-net", O_RDWR);
    const char ok = fd >= 0 && ioctl(fd, kVhostSetOwner) == 0 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    char c;
    (void)!read(done[0], &c, 1);
    _exit(0);
  }
  close(ready[1]);  // a child that died before answering is an end of file, not a hang
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  EXPECT_EQ(ok, 'y') << "VHOST_SET_OWNER failed";
  libvirt_.Write("vhost-vm.pid", std::to_string(vm) + "\n");
  EXPECT_EQ(Value("vnet_sched_threads", {{"vm_name", "vhost-vm"}, {"thread", "vhost"}}), 1);
  EXPECT_EQ(Value("vnet_sched_threads", {{"vm_name", "vhost-vm"}, {"thread", "main"}}), 1);
  close(done[1]);
  waitpid(vm, nullptr, 0);
  for (int fd : {done[0], ready[0]}) close(fd);
}

// A libvirt pid file whose process is not qemu (a stale file, the pid reused) names no VM.
TEST_F(SchedTest, AProcessThatIsNotQemuIsNotTimed) {
  int cmd[2];
  ASSERT_EQ(pipe(cmd), 0);
  auto* shared = static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (shared) Shared;
  pid_t other = StartVm("not-a-vm", cmd[0], shared);
  ASSERT_TRUE(WaitFor([&] { return shared->ready.load(); }));
  libvirt_.Write("stale.pid", std::to_string(other) + "\n");
  for (int i = 0; i < 5; i++) {
    char c = kWake;
    ASSERT_EQ(write(cmd[1], &c, 1), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(Value("vnet_sched_threads", {{"vm_name", "stale"}, {"thread", "vcpu"}}), -1);
  EXPECT_EQ(Delay({{"vm_name", "stale"}, {"thread", "vcpu"}}).count, 0);
  char c = kExit;
  ASSERT_EQ(write(cmd[1], &c, 1), 1);
  waitpid(other, nullptr, 0);
  close(cmd[0]);
  close(cmd[1]);
  munmap(shared, sizeof(Shared));
}

// A VM's series stay for the grace period after its qemu exits, then end.
TEST_F(SchedTest, AnExitedVmsSeriesEndAfterTheGracePeriod) {
  cfg_.devices.grace_period = std::chrono::seconds(1);
  collector_ = collectors::SchedCollector::Attach(cfg_, cfg_.Get<collectors::SchedCollector::Settings>());
  const Labels vcpu = {{"vm_name", kVm}, {"thread", "vcpu"}};
  ASSERT_EQ(Value("vnet_sched_threads", vcpu), 1);
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(WaitFor([&] { return Asleep(); }));
    Tell(kWake);
  }
  // A wait is counted once the woken thread runs: in an emulated guest that can be later.
  ASSERT_TRUE(WaitFor([&] { return Delay(vcpu).count == 3; })) << Delay(vcpu).count << " waits, not 3";
  ASSERT_TRUE(WaitFor([&] { return Asleep(); }));
  Tell(kExit);
  waitpid(vm_, nullptr, 0);
  vm_ = -1;
  EXPECT_EQ(Delay(vcpu).count, 4) << "gone before the grace period (the 4th: woken to exit)";
  EXPECT_EQ(Value("vnet_sched_threads", vcpu), -1) << "an exited thread still counted";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(Delay(vcpu).count, 0) << "still there after the grace period";
  for (const auto& m : collector_->Maps()) {
    if (m.map == "sched_stats") {
      EXPECT_EQ(m.entries, 0) << "the map keeps the exited VM's entries";
    }
    if (m.map == "sched_threads") {
      EXPECT_EQ(m.entries, 0);
    }
  }
}

}  // namespace
}  // namespace vnet::testing
