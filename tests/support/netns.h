// Root test harness: network namespaces, veth, bridge and tap devices that a test creates and
// removes, traffic made inside them, and the kernel's own counters for cross-checks.
#pragma once

#include <prometheus/metric_family.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vnet::testing {

// Runs a shell command; throws with its output when it fails.
std::string Sh(const std::string& cmd);

// A prefix unique to this test process, for the names of everything it creates.
std::string Prefix();

bool IsRoot();

class Netns {
 public:
  explicit Netns(std::string name);  // `ip netns add`, lo up, IPv6 off (no router solicitations)
  ~Netns();                          // `ip netns del`: removes every device inside too
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  const std::string& name() const { return name_; }
  // Runs `fn` on a thread that has entered this namespace.
  void Run(const std::function<void()>& fn) const;
  std::string Sh(const std::string& cmd) const;  // `ip netns exec <name> sh -c cmd`
  // A counter from /proc/net/snmp or /proc/net/netstat: Counter("Udp", "NoPorts").
  uint64_t Counter(const std::string& group, const std::string& field) const;

 private:
  std::string name_;
};

// A tap opened through /dev/net/tun inside `ns`, as a VM's backend opens it: one fd per queue
// (IFF_MULTI_QUEUE when more than one). The device lives as long as the fds.
class Tap {
 public:
  Tap(const Netns* ns, const std::string& name, int queues = 1);
  ~Tap();
  Tap(const Tap&) = delete;
  Tap& operator=(const Tap&) = delete;
  // Sends a frame to the host, as the guest would, on `queue`.
  void Write(const std::vector<uint8_t>& frame, int queue = 0) const;
  // Reads every frame waiting on `queue` without blocking.
  std::vector<std::vector<uint8_t>> ReadAll(int queue) const;

 private:
  std::vector<int> fds_;
};

// What an unprivileged local user can make: `n` network namespaces of user nobody (`unshare
// -rn`: a user namespace of its own), each running the bash commands `setup`, then kept until
// this object goes (a freed namespace's inode number is given to the next one).
class NobodyNamespaces {
 public:
  // False when this kernel does not let unprivileged users make user namespaces.
  static bool Allowed();
  NobodyNamespaces(int n, const std::string& setup);
  ~NobodyNamespaces();
  NobodyNamespaces(const NobodyNamespaces&) = delete;
  NobodyNamespaces& operator=(const NobodyNamespaces&) = delete;

 private:
  std::string tag_;  // the name their last processes run under
};

// A UDP socket of `ns` bound to `port` on all its addresses; closed with this object.
class UdpSocket {
 public:
  UdpSocket(const Netns& ns, uint16_t port);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// Sends `n` UDP datagrams of `size` bytes from inside `ns` to dst:port (from `src_port`, 0: any).
void SendUdp(const Netns& ns, const std::string& dst, uint16_t port, int n, uint16_t src_port = 0,
             std::size_t size = 32);

// An Ethernet frame carrying IPv4/UDP, checksums right unless `bad_ip_checksum`.
std::vector<uint8_t> UdpFrame(const std::string& dst_mac, const std::string& src_mac, const std::string& src_ip,
                              const std::string& dst_ip, bool bad_ip_checksum = false, uint16_t src_port = 40000,
                              uint16_t dst_port = 9);
// The UDP destination port of a frame made by UdpFrame.
uint16_t UdpDstPort(const std::vector<uint8_t>& frame);

// Sends a raw frame `n` times on `dev` (an AF_PACKET socket inside `ns`).
void SendFrames(const Netns& ns, const std::string& dev, const std::vector<uint8_t>& frame, int n);

std::string Mac(const Netns* ns, const std::string& dev);
uint64_t LinkStat(const Netns* ns, const std::string& dev, const std::string& field);  // /sys/class/net/DEV/statistics

// Polls `cond` until true or `limit` passes; true when it became true. Waits for the kernel to
// finish work it does asynchronously (softirq), never a performance bound.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit = std::chrono::seconds(10));

// The value of the series of `family` with exactly `labels`, 0 when absent.
double Value(const std::vector<prometheus::MetricFamily>& families, const std::string& family,
             const std::map<std::string, std::string>& labels);

}  // namespace vnet::testing
