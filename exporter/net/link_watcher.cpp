#include "net/link_watcher.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vnet::net {

LinkWatcher::LinkWatcher(Callback on_change) : on_change_(std::move(on_change)) {
  sock_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock_ < 0) throw std::runtime_error(std::string("netlink socket: ") + strerror(errno));
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(sock_);
    throw std::runtime_error(std::string("netlink bind: ") + strerror(errno));
  }
  stop_ = eventfd(0, EFD_CLOEXEC);
  if (stop_ < 0) {  // without it the destructor could never stop the thread
    int err = errno;
    close(sock_);
    throw std::runtime_error(std::string("eventfd: ") + strerror(err));
  }
  thread_ = std::thread([this] { Run(); });
}

LinkWatcher::~LinkWatcher() {
  uint64_t one = 1;
  (void)!write(stop_, &one, sizeof(one));
  thread_.join();
  close(stop_);
  close(sock_);
}

void LinkWatcher::Run() {
  alignas(nlmsghdr) char buf[32768];
  pollfd fds[2] = {{sock_, POLLIN, 0}, {stop_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    ssize_t n = recv(sock_, buf, sizeof(buf), 0);
    // ENOBUFS: events were lost; the scrape-time resolution still catches what was missed.
    if (n <= 0) continue;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) continue;
      auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(h));
      std::string name;
      int len = static_cast<int>(IFLA_PAYLOAD(h));
      for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_IFNAME) name = static_cast<const char*>(RTA_DATA(a));
      }
      on_change_(static_cast<uint32_t>(ifi->ifi_index), name, h->nlmsg_type == RTM_DELLINK);
    }
  }
}

}  // namespace vnet::net
