// The vnet_exporter binary (VNET_EXPORTER_BIN, defined by the test target) running in the
// background, its stdout and stderr read as they come.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>

namespace vnet::testing {

class Running {
 public:
  // `wrapper`: a command the binary runs under ("setpriv ... --"); `binary`: another copy of it.
  explicit Running(const std::string& args, const std::string& wrapper = "",
                   const std::string& binary = VNET_EXPORTER_BIN) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      execl("/bin/sh", "sh", "-c", ("exec " + wrapper + " " + binary + " " + args).c_str(), nullptr);
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }
  ~Running() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }
  // Reads output until it holds `text` (true), or the exporter closed it or said nothing more
  // for `quiet` (false): a line that never comes fails the test instead of hanging it.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds quiet = std::chrono::seconds(60)) {
    char buf[4096];
    while (output_.find(text) == std::string::npos) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(quiet.count())) <= 0) return false;
      ssize_t n = read(out_, buf, sizeof(buf));
      if (n <= 0) return false;
      output_.append(buf, n);
    }
    return true;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // True once the exporter's main thread blocks `sig` (it then waits for it on a thread of its own).
  bool Blocks(int sig) const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigBlk:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
    }
    return false;
  }
  // Waits for the exit; its code, -1 when killed by a signal.
  int Wait() {
    WaitForOutput("\x01");  // everything until it closes its output
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  const std::string& output() const { return output_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string output_;
};

// The port of an exporter started with --web.listen-address=...:0, from its start-up line.
inline uint16_t ListeningPort(Running& e) {
  if (!e.WaitForOutput(" (port ") || !e.WaitForOutput(")\n")) throw std::runtime_error("no port: " + e.output());
  return static_cast<uint16_t>(std::stoi(e.output().substr(e.output().find(" (port ") + 7)));
}

}  // namespace vnet::testing
