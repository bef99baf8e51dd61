#include "net/jsonrpc.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vnet::net {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

nlohmann::json JsonRpcCall(const std::string& path, const std::string& method, const nlohmann::json& params,
                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [&] {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, ms.count()));
  };

  Fd s{socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) throw JsonRpcError(path + ": socket path too long");
  std::strcpy(addr.sun_path, path.c_str());
  if (connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    throw JsonRpcError(path + ": " + std::strerror(errno));
  }

  std::string out = nlohmann::json{{"method", method}, {"params", params}, {"id", 0}}.dump();
  for (std::size_t sent = 0; sent < out.size();) {
    pollfd p{s.fd, POLLOUT, 0};
    if (poll(&p, 1, left_ms()) <= 0) throw JsonRpcError(path + ": timed out sending " + method);
    ssize_t n = send(s.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) throw JsonRpcError(path + ": " + std::strerror(errno));
    if (n > 0) sent += static_cast<std::size_t>(n);
  }

  // Replies are not framed: read until the bytes so far parse as one JSON value.
  std::string in;
  char buf[65536];
  for (;;) {
    pollfd p{s.fd, POLLIN, 0};
    if (poll(&p, 1, left_ms()) <= 0) throw JsonRpcError(path + ": no reply to " + method + " in time");
    ssize_t n = recv(s.fd, buf, sizeof(buf), 0);
    if (n == 0) throw JsonRpcError(path + ": closed before replying to " + method);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      throw JsonRpcError(path + ": " + std::strerror(errno));
    }
    in.append(buf, static_cast<std::size_t>(n));
    if (!nlohmann::json::accept(in)) continue;
    nlohmann::json reply = nlohmann::json::parse(in);
    if (reply.contains("method")) {  // a notification (echo): not ours
      in.clear();
      continue;
    }
    if (reply.contains("error") && !reply["error"].is_null()) {
      throw JsonRpcError(path + ": " + method + ": " + reply["error"].dump());
    }
    return reply["result"];
  }
}

}  // namespace vnet::net
