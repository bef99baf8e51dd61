#include "net/link_dump.h"

#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>

namespace vnet::net {
namespace {

std::string Error(const std::string& what, int err) { return "rtnetlink link dump: " + what + ": " + strerror(err); }

// An attribute's payload as a string, never past it (the kernel NUL-terminates; nothing relies on it).
std::string String(const rtattr* a) {
  const char* p = static_cast<const char*>(RTA_DATA(a));
  return std::string(p, strnlen(p, RTA_PAYLOAD(a)));
}

uint32_t U32(const rtattr* a) {
  uint32_t v = 0;
  if (RTA_PAYLOAD(a) >= sizeof(v)) std::memcpy(&v, RTA_DATA(a), sizeof(v));
  return v;
}

// IFLA_LINKINFO: the driver's kind and, for tun, its type and attached queues (given for
// multi-queue devices only; the others have one).
void ParseLinkInfo(const rtattr* info, Link& l) {
  int len = static_cast<int>(RTA_PAYLOAD(info));
  const rtattr* data = nullptr;
  for (auto* a = static_cast<const rtattr*>(RTA_DATA(info)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_INFO_KIND) l.tun = String(a) == "tun";
    if (a->rta_type == IFLA_INFO_DATA) data = a;
  }
  if (!l.tun) return;
  l.tun_queues = 1;
  if (!data) return;
  len = static_cast<int>(RTA_PAYLOAD(data));
  for (auto* a = static_cast<const rtattr*>(RTA_DATA(data)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_TUN_TYPE && RTA_PAYLOAD(a) >= 1) l.tap = *static_cast<const uint8_t*>(RTA_DATA(a)) == IFF_TAP;
    if (a->rta_type == IFLA_TUN_NUM_QUEUES) l.tun_queues = U32(a);
  }
}

std::string Mac(const rtattr* a) {
  std::string out;
  const auto* p = static_cast<const uint8_t*>(RTA_DATA(a));
  for (size_t i = 0; i < RTA_PAYLOAD(a); i++) {
    char hex[4];
    std::snprintf(hex, sizeof(hex), i ? ":%02x" : "%02x", p[i]);
    out += hex;
  }
  return out;
}

}  // namespace

std::vector<Link> DumpLinks() {
  const int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) throw std::runtime_error(Error("socket", errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{s};
  timeval timeout{1, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  // Statistics are most of each message and nobody here reads them.
  struct {
    nlmsghdr h;
    ifinfomsg ifi;
    rtattr mask_attr;
    uint32_t mask;
  } req{};
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.mask_attr.rta_type = IFLA_EXT_MASK;
  req.mask_attr.rta_len = RTA_LENGTH(sizeof(uint32_t));
  req.mask = RTEXT_FILTER_SKIP_STATS;
  if (send(s, &req, sizeof(req), 0) != static_cast<ssize_t>(sizeof(req))) throw std::runtime_error(Error("send", errno));

  std::vector<Link> out;
  std::map<uint32_t, uint32_t> masters;  // index in `out` -> the master's ifindex
  std::vector<char> buf(1 << 16);  // a dump's messages come in parts of at most 32 KiB
  for (bool done = false; !done;) {
    const ssize_t n = recv(s, buf.data(), buf.size(), 0);
    if (n < 0) throw std::runtime_error(Error("recv", errno));
    if (n == 0) throw std::runtime_error("rtnetlink link dump: the socket closed");
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(left)); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        throw std::runtime_error(Error("the kernel answered", -e->error));
      }
      if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) continue;
      const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
      Link l;
      l.ifindex = static_cast<uint32_t>(ifi->ifi_index);
      int len = static_cast<int>(IFLA_PAYLOAD(h));
      for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        switch (a->rta_type) {
          case IFLA_IFNAME: l.name = String(a); break;
          case IFLA_ADDRESS: l.mac = Mac(a); break;
          case IFLA_MASTER: masters[static_cast<uint32_t>(out.size())] = U32(a); break;
          case IFLA_LINKINFO: ParseLinkInfo(a, l); break;
        }
      }
      l.tap = l.tap && ifi->ifi_type == ARPHRD_ETHER;
      out.push_back(std::move(l));
    }
  }
  std::map<uint32_t, std::string> names;
  for (const auto& l : out) names[l.ifindex] = l.name;
  for (const auto& [i, master] : masters) {
    if (auto n = names.find(master); n != names.end()) out[i].master = n->second;
  }
  return out;
}

LinkChanges::LinkChanges() {
  sock_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (sock_ >= 0 && bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(sock_);
    sock_ = -1;
  }
}

LinkChanges::~LinkChanges() {
  if (sock_ >= 0) close(sock_);
}

bool LinkChanges::Changed() {
  bool changed = sock_ < 0 || first_;
  first_ = false;
  // Announcements are drained before the caller lists the devices: one that comes after is
  // seen at the next call.
  char buf[8192];
  for (ssize_t n; sock_ >= 0 && ((n = recv(sock_, buf, sizeof(buf), MSG_DONTWAIT)) > 0 || errno == ENOBUFS);) {
    changed = true;  // ENOBUFS: announcements were lost
  }
  return changed;
}

std::vector<Link> CachedLinks::Get() {
  const auto now = std::chrono::steady_clock::now();
  // Drained whatever the age, so that the next call does not dump again for what this one saw.
  const bool changed = changes_.Changed();
  if (changed || !valid_ || now - dumped_ >= max_age_) {
    valid_ = false;  // a dump that throws leaves nothing to reuse
    links_ = dump_();
    dumped_ = now;
    valid_ = true;
  }
  return links_;
}

}  // namespace vnet::net
