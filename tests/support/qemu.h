// A process named like qemu whose main loop and vCPU thread ("CPU 0/KVM") wake every millisecond
// while the object lives: with a libvirt pid file naming it, the sched collector times them.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

namespace vnet::testing {

class FakeQemu {
 public:
  FakeQemu() {
    int p[2];
    if (pipe(p) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(p[1]);
      prctl(PR_SET_NAME, "qemu-system-x86");
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      auto wake_every_ms = [fd = p[0]] {
        pollfd f{fd, POLLIN, 0};
        while (poll(&f, 1, 1) == 0) {
        }
      };
      std::thread vcpu([&] {
        pthread_setname_np(pthread_self(), "CPU 0/KVM");
        wake_every_ms();
      });
      wake_every_ms();  // the main loop
      vcpu.join();
      _exit(0);
    }
    close(p[0]);
    fd_ = p[1];
  }
  ~FakeQemu() {
    if (fd_ >= 0) close(fd_);  // the vCPU sees the end of the pipe and the process exits
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  FakeQemu(const FakeQemu&) = delete;
  FakeQemu& operator=(const FakeQemu&) = delete;

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

}  // namespace vnet::testing
