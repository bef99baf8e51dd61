// A stand-in for ovs-vswitchd's control socket in `rundir` that answers every command after
// `delay` (a pid file and ovs-vswitchd.<pid>.ctl), counting how many connections it serves at once.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace vnet::testing {

class SlowVswitchd {
 public:
  SlowVswitchd(const std::string& rundir, std::chrono::milliseconds delay) : delay_(delay) {
    std::ofstream(rundir + "/ovs-vswitchd.pid") << "4242\n";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, (rundir + "/ovs-vswitchd.4242.ctl").c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    listen(fd_, 64);
    accept_ = std::thread([this] {
      for (int c; (c = accept(fd_, nullptr, nullptr)) >= 0;) {
        handlers_.emplace_back([this, c] { Serve(c); });
      }
    });
  }
  ~SlowVswitchd() {
    shutdown(fd_, SHUT_RDWR);
    accept_.join();
    for (auto& t : handlers_) t.join();
    close(fd_);
  }
  int most_at_once() const { return most_; }
  int served() const { return served_; }  // connections that sent a request

 private:
  void Serve(int c) {
    char buf[4096];
    (void)!recv(c, buf, sizeof(buf), 0);
    ++served_;
    const int now = ++active_;
    for (int m = most_; now > m && !most_.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(delay_);
    --active_;
    const std::string reply = R"({"id":0,"error":null,"result":"system@ovs-system:\n  flows: 1\n"})";
    (void)!send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    close(c);
  }

  std::chrono::milliseconds delay_;
  int fd_ = -1;
  std::thread accept_;
  std::vector<std::thread> handlers_;
  std::atomic<int> active_ = 0, most_ = 0, served_ = 0;
};

}  // namespace vnet::testing
