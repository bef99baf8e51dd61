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

OvsHosts::OvsHosts(const std::string& prefix, int net)
    : sw(prefix + "sw"), a(prefix + "a"), b(prefix + "b"), target_("10." + std::to_string(net) + ".0.3") {
  for (const auto* ns : {&a, &b}) {
    const std::string port = ns == &a ? "pa" : "pb";
    Sh("ip link add " + port + " netns " + sw.name() + " type veth peer name eth0 netns " + ns->name());
    sw.Sh("ip link set " + port + " up");
    ns->Sh("ip addr add 10." + std::to_string(net) + ".0." + (ns == &a ? "1" : "2") +
           "/24 dev eth0 && ip link set eth0 up");
  }
  a.Sh("ip neigh add " + target_ + " lladdr " + Mac(&b, "eth0") + " dev eth0");
}

OvsBridge::OvsBridge(const std::string& prefix, int net, const std::string& datapath_type)
    : OvsHosts(prefix, net), vs(db, sw) {
  db.Vsctl("add-br br0 -- set bridge br0 datapath_type=" + datapath_type + " -- add-port br0 pa -- add-port br0 pb");
  Ready();
}

void OvsBridge::Ready() const {
  db.Vsctl("--timeout=20 wait-until Interface pa ofport!=-1 -- wait-until Interface pb ofport!=-1");
  vs.Appctl("upcall/disable-megaflows");
}

void OvsHosts::NewFlows(int n, uint16_t first_port, uint16_t dst_port, std::size_t size) const {
  for (int i = 0; i < n; i++) SendUdp(a, target_, dst_port, 1, static_cast<uint16_t>(first_port + i), size);
}

}  // namespace vnet::testing
