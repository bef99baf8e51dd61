#include "ovs.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "netns.h"

namespace vnet::testing {

OvsdbServer::OvsdbServer() {
  Sh("ovsdb-tool create " + Path("conf.db") + " /usr/share/openvswitch/vswitch.ovsschema");
  // A child of the test (not --detach), so that it is reaped when stopped.
  pid_ = fork();
  if (pid_ == 0) {
    execlp("ovsdb-server", "ovsdb-server", Path("conf.db").c_str(), ("--remote=punix:" + socket()).c_str(),
           ("--unixctl=" + Path("ovsdb-server.ctl")).c_str(), ("--log-file=" + Path("ovsdb-server.log")).c_str(),
           "--no-chdir", "-vconsole:off", nullptr);
    _exit(127);
  }
  if (!WaitFor([&] { return std::filesystem::exists(socket()); })) throw std::runtime_error("ovsdb-server did not start");
  Vsctl("init");
}

void OvsdbServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string OvsdbServer::Vsctl(const std::string& args) const {
  return Sh("ovs-vsctl --db=unix:" + socket() + " --no-wait " + args);
}

Vswitchd::Vswitchd(const OvsdbServer& db, const Netns& ns) : db_(db), ns_(ns) { Start(); }

void Vswitchd::Start() {
  const std::string pidfile = db_.Path("ovs-vswitchd.pid");
  std::filesystem::remove(pidfile);
  pid_ = fork();
  if (pid_ == 0) {
    // `ip netns exec` execs ovs-vswitchd in place: same pid, so its socket is ovs-vswitchd.<pid>.ctl.
    const std::string ctl = db_.Path("ovs-vswitchd." + std::to_string(getpid()) + ".ctl");
    // Bridge management sockets go to the rundir: the test's, never the system's.
    setenv("OVS_RUNDIR", db_.dir().c_str(), 1);
    execlp("ip", "ip", "netns", "exec", ns_.name().c_str(), "ovs-vswitchd", ("unix:" + db_.socket()).c_str(),
           ("--pidfile=" + pidfile).c_str(), ("--unixctl=" + ctl).c_str(),
           ("--log-file=" + db_.Path("ovs-vswitchd.log")).c_str(), "--no-chdir", "-vconsole:off", nullptr);
    _exit(127);
  }
  // Up when its control socket answers.
  if (!WaitFor([&] {
        try {
          Appctl("version");
          return true;
        } catch (const std::exception&) {
          return false;
        }
      })) {
    Stop(SIGKILL);
    throw std::runtime_error("ovs-vswitchd did not start (see " + db_.Path("ovs-vswitchd.log") + ")");
  }
}

void Vswitchd::Stop(int sig) {
  if (pid_ <= 0) return;
  kill(pid_, SIGCONT);
  kill(pid_, sig);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void Vswitchd::Signal(int sig) { kill(pid_, sig); }

std::string Vswitchd::Appctl(const std::string& cmd) const {
  return Sh("ovs-appctl -t " + db_.Path("ovs-vswitchd." + std::to_string(pid_) + ".ctl") + " " + cmd);
}

}  // namespace vnet::testing
