#include "netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace vnet::testing {

std::string Sh(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) throw std::runtime_error("popen: " + cmd);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int rc = pclose(p);
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd + "\n" + out);
  return out;
}

std::string Prefix() { return "vx" + std::to_string(getpid() % 100000); }

bool IsRoot() { return geteuid() == 0; }

Netns::Netns(std::string name) : name_(std::move(name)) {
  testing::Sh("ip netns add " + name_);
  testing::Sh("ip -n " + name_ + " link set lo up");
  testing::Sh("ip netns exec " + name_ + " sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
}

Netns::~Netns() {
  try {
    testing::Sh("ip netns del " + name_);
  } catch (const std::exception&) {
  }
}

void Netns::Run(const std::function<void()>& fn) const {
  std::string err;
  std::thread t([&] {
    int fd = open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      err = "cannot enter netns " + name_;
      return;
    }
    close(fd);
    try {
      fn();
    } catch (const std::exception& e) {
      err = e.what();
    }
  });
  t.join();
  if (!err.empty()) throw std::runtime_error(err);
}

std::string Netns::Sh(const std::string& cmd) const {
  return testing::Sh("ip netns exec " + name_ + " sh -c '" + cmd + "'");
}

uint64_t Netns::Counter(const std::string& group, const std::string& field) const {
  // Both files hold pairs of lines: "Group: names..." then "Group: values...".
  std::string text = Sh("cat /proc/net/snmp /proc/net/netstat");
  std::istringstream in(text);
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind(group + ":", 0) != 0) continue;
    std::istringstream n(names), v(values);
    std::string name, value;
    n >> name;
    v >> value;
    while (n >> name && v >> value) {
      if (name == field) return std::stoull(value);
    }
  }
  throw std::runtime_error("no counter " + group + " " + field);
}

Tap::Tap(const Netns* ns, const std::string& name, int queues) {
  auto open_tap = [&] {
    for (int q = 0; q < queues; q++) {
      int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) throw std::runtime_error("open /dev/net/tun");
      fds_.push_back(fd);
      struct ifreq ifr = {};
      ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0);
      std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
      if (ioctl(fd, TUNSETIFF, &ifr) != 0) throw std::runtime_error("TUNSETIFF " + name + ": " + strerror(errno));
    }
  };
  if (ns) {
    ns->Run(open_tap);  // the device is created in the namespace of the calling thread
  } else {
    open_tap();
  }
}

Tap::~Tap() {
  for (int fd : fds_) close(fd);
}

void Tap::Write(const std::vector<uint8_t>& frame, int queue) const {
  if (write(fds_.at(queue), frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) {
    throw std::runtime_error(std::string("tap write: ") + strerror(errno));
  }
}

std::vector<std::vector<uint8_t>> Tap::ReadAll(int queue) const {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint8_t> buf(65536);
  for (ssize_t n; (n = read(fds_.at(queue), buf.data(), buf.size())) > 0;) {
    frames.emplace_back(buf.begin(), buf.begin() + n);
  }
  return frames;
}

namespace {
const std::string kNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups -- ";
}

bool NobodyNamespaces::Allowed() { return Sh(kNobody + "unshare -rn true 2>&1; echo rc=$?") == "rc=0\n"; }

NobodyNamespaces::NobodyNamespaces(int n, const std::string& setup) : tag_(Prefix() + "-nobody") {
  Sh(kNobody + "bash -c 'for i in $(seq " + std::to_string(n) + "); do unshare -rn bash -c \"(" + setup +
     "); exec -a " + tag_ + " sleep 600\" & done' >/dev/null 2>&1");
}

NobodyNamespaces::~NobodyNamespaces() { Sh("pkill -KILL -f '^" + tag_ + " ' || true"); }

UdpSocket::UdpSocket(const Netns& ns, uint16_t port) {
  ns.Run([&] {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      std::string why = std::string("udp socket on port ") + std::to_string(port) + ": " + strerror(errno);
      if (fd_ >= 0) close(fd_);
      throw std::runtime_error(why);
    }
  });
}

UdpSocket::~UdpSocket() { close(fd_); }

void SendUdp(const Netns& ns, const std::string& dst, uint16_t port, int n, uint16_t src_port, std::size_t size) {
  ns.Run([&] {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (src_port) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_port = htons(src_port);
      if (bind(s, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
        close(s);
        throw std::runtime_error(std::string("bind: ") + strerror(errno));
      }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, dst.c_str(), &addr.sin_addr);
    std::vector<char> payload(size);
    snprintf(payload.data(), size, "vnet_exporter test");
    for (int i = 0; i < n; i++) {
      if (sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
        close(s);
        throw std::runtime_error(std::string("sendto: ") + strerror(errno));
      }
    }
    close(s);
  });
}

namespace {

void ParseMac(const std::string& s, uint8_t* out) {
  unsigned b[6];
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
    throw std::runtime_error("bad MAC " + s);
  }
  for (int i = 0; i < 6; i++) out[i] = static_cast<uint8_t>(b[i]);
}

uint16_t Checksum(const uint8_t* p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

std::vector<uint8_t> UdpFrame(const std::string& dst_mac, const std::string& src_mac, const std::string& src_ip,
                              const std::string& dst_ip, bool bad_ip_checksum, uint16_t src_port, uint16_t dst_port) {
  const size_t payload = 18;
  std::vector<uint8_t> f(sizeof(ether_header) + sizeof(iphdr) + sizeof(udphdr) + payload, 0);
  auto* eth = reinterpret_cast<ether_header*>(f.data());
  ParseMac(dst_mac, eth->ether_dhost);
  ParseMac(src_mac, eth->ether_shost);
  eth->ether_type = htons(ETHERTYPE_IP);
  auto* ip = reinterpret_cast<iphdr*>(f.data() + sizeof(ether_header));
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(static_cast<uint16_t>(sizeof(iphdr) + sizeof(udphdr) + payload));
  inet_pton(AF_INET, src_ip.c_str(), &ip->saddr);
  inet_pton(AF_INET, dst_ip.c_str(), &ip->daddr);
  uint16_t csum = Checksum(reinterpret_cast<uint8_t*>(ip), sizeof(iphdr));
  ip->check = htons(bad_ip_checksum ? static_cast<uint16_t>(csum ^ 0x5a5a) : csum);
  auto* udp = reinterpret_cast<udphdr*>(f.data() + sizeof(ether_header) + sizeof(iphdr));
  udp->source = htons(src_port);
  udp->dest = htons(dst_port);
  udp->len = htons(static_cast<uint16_t>(sizeof(udphdr) + payload));
  return f;  // UDP checksum 0: none, valid for IPv4
}

uint16_t UdpDstPort(const std::vector<uint8_t>& frame) {
  const size_t off = sizeof(ether_header) + sizeof(iphdr) + offsetof(udphdr, dest);
  if (frame.size() < off + 2) return 0;
  return static_cast<uint16_t>((frame[off] << 8) | frame[off + 1]);
}

void SendFrames(const Netns& ns, const std::string& dev, const std::vector<uint8_t>& frame, int n) {
  ns.Run([&] {
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (s < 0) throw std::runtime_error("AF_PACKET socket");
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
    addr.sll_halen = 6;
    for (int i = 0; i < n; i++) {
      if (sendto(s, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
        close(s);
        throw std::runtime_error(std::string("packet sendto: ") + strerror(errno));
      }
    }
    close(s);
  });
}

std::string Mac(const Netns* ns, const std::string& dev) {
  std::string cmd = "cat /sys/class/net/" + dev + "/address";
  std::string out = ns ? ns->Sh(cmd) : Sh(cmd);
  return out.substr(0, out.find('\n'));
}

uint64_t LinkStat(const Netns* ns, const std::string& dev, const std::string& field) {
  std::string cmd = "cat /sys/class/net/" + dev + "/statistics/" + field;
  return std::stoull(ns ? ns->Sh(cmd) : Sh(cmd));
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

double Value(const std::vector<prometheus::MetricFamily>& families, const std::string& family,
             const std::map<std::string, std::string>& labels) {
  for (const auto& f : families) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      std::map<std::string, std::string> l;
      for (const auto& lp : m.label) l[lp.name] = lp.value;
      if (l != labels) continue;
      return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return 0;
}

}  // namespace vnet::testing
