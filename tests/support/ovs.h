// A private Open vSwitch for tests: ovsdb-server and ovs-vswitchd as children of the test, with
// their database, sockets and logs in a directory of the test's own.
#pragma once

#include <sys/types.h>

#include <string>

#include "fixtures.h"

namespace vnet::testing {

class Netns;

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

}  // namespace vnet::testing
