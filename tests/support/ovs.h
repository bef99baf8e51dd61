// A private Open vSwitch for tests: ovsdb-server and ovs-vswitchd as children of the test, with
// their database, sockets and logs in a directory of the test's own.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "fixtures.h"
#include "netns.h"

namespace vnet::testing {

class OvsdbServer {
 public:
  OvsdbServer();
  ~OvsdbServer() { Stop(); }
  OvsdbServer(const OvsdbServer&) = delete;
  OvsdbServer& operator=(const OvsdbServer&) = delete;

  void Stop();
  std::string socket() const { return Path("db.sock"); }
  std::string Vsctl(const std::string& args) const;  // ovs-vsctl --no-wait
  // The directory ovs-vswitchd uses as its rundir (pid file, control socket, log).
  std::string dir() const { return dir_.path().string(); }
  std::string Path(const std::string& f) const { return (dir_.path() / f).string(); }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
};

// ovs-vswitchd on `db`, inside `ns` (its internal ports and the ports it opens live there).
class Vswitchd {
 public:
  Vswitchd(const OvsdbServer& db, const Netns& ns);
  ~Vswitchd() { Stop(); }
  Vswitchd(const Vswitchd&) = delete;
  Vswitchd& operator=(const Vswitchd&) = delete;

  void Start();
  void Stop(int sig = 15);   // SIGTERM; SIGKILL leaves its pid file and socket behind, as a crash does
  void Signal(int sig);      // SIGSTOP / SIGCONT
  std::string Appctl(const std::string& cmd) const;  // ovs-appctl on its control socket
  std::string rundir() const { return db_.dir(); }
  pid_t pid() const { return pid_; }

 private:
  const OvsdbServer& db_;
  const Netns& ns_;
  pid_t pid_ = -1;
};

// Two hosts, namespaces a and b with eth0 at 10.<net>.0.1 and .2, on veths whose other ends
// pa and pb are in namespace sw, for an OVS bridge there. a sends to 10.<net>.0.3 with b's MAC:
// the bridge switches it to b, which drops it silently (not its address: no reply, no ICMP).
// No ARP (static neighbour) and no IPv6 (Netns): every packet on the bridge is one sent by NewFlows.
class OvsHosts {
 public:
  OvsHosts(const std::string& prefix, int net);

  // `n` new flows a -> b: datagrams of `size` bytes to `dst_port` from ports first_port, +1, ...
  void NewFlows(int n, uint16_t first_port, uint16_t dst_port = 7000, std::size_t size = 32) const;

  Netns sw, a, b;

 private:
  std::string target_;
};

// OvsHosts joined by bridge br0 (ports pa, pb) of a private ovs-vswitchd running in sw.
class OvsBridge : public OvsHosts {
 public:
  // `datapath_type`: "netdev" (userspace, any kernel) or "system" (the openvswitch module).
  OvsBridge(const std::string& prefix, int net, const std::string& datapath_type);
  // Waits for both ports, and turns megaflows off so that each new 5-tuple is one upcall (again
  // after vs restarted: the setting is not kept).
  void Ready() const;

  OvsdbServer db;
  Vswitchd vs;
};

}  // namespace vnet::testing
