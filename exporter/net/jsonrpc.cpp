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

// Finds where the first JSON value of a stream ends, fed chunk by chunk: tracks strings (with
// escapes) and the nesting of objects and arrays, bounded so the parser never recurses deeply.
class ValueEnd {
 public:
  // Scans `in` from `from`; returns the offset just past the value's end, or npos for more.
  std::size_t Feed(const std::string& in, std::size_t from) {
    for (std::size_t i = from; i < in.size(); i++) {
      const char c = in[i];
      if (in_string_) {
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\') {
          escaped_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
        continue;
      }
      if (depth_ == 0 && c != '{') {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        error_ = "reply is not a JSON object";  // JSON-RPC replies are objects
        return std::string::npos;
      }
      if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        if (++depth_ > kMaxDepth) {
          error_ = "reply nested deeper than 64";
          return std::string::npos;
        }
      } else if (c == '}' || c == ']') {
        if (--depth_ == 0) return i + 1;
      }
    }
    return std::string::npos;
  }

  const char* error() const { return error_; }

 private:
  static constexpr int kMaxDepth = 64;
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false;
  const char* error_ = nullptr;
};

}  // namespace

nlohmann::json JsonRpcCall(const std::string& path, const std::string& method, const nlohmann::json& params,
                           std::chrono::milliseconds timeout, std::size_t max_bytes) {
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

  // Replies are not framed: read until the bytes so far hold one whole JSON value, found by a
  // scan that sees each byte once (parsing the buffer again at each chunk went quadratic).
  std::string in;
  ValueEnd framing;
  char buf[65536];
  for (;;) {
    // Checked at every chunk: a peer that never stops sending must not hold the scrape.
    const int left = left_ms();
    if (left == 0) throw JsonRpcError(path + ": no whole reply to " + method + " in time");
    pollfd p{s.fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) throw JsonRpcError(path + ": no reply to " + method + " in time");
    ssize_t n = recv(s.fd, buf, sizeof(buf), 0);
    if (n == 0) throw JsonRpcError(path + ": closed before replying to " + method);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      throw JsonRpcError(path + ": " + std::strerror(errno));
    }
    std::size_t from = in.size();
    in.append(buf, static_cast<std::size_t>(n));
    while (from < in.size()) {
      const std::size_t end = framing.Feed(in, from);
      if (framing.error()) throw JsonRpcError(path + ": " + method + ": " + framing.error());
      if (end == std::string::npos) break;
      nlohmann::json reply = nlohmann::json::parse(in.begin(), in.begin() + end, nullptr, false);
      if (reply.is_discarded() || !reply.is_object()) throw JsonRpcError(path + ": " + method + ": reply is not a JSON object");
      in.erase(0, end);
      from = 0;
      framing = ValueEnd();
      if (reply.contains("method")) continue;  // a notification (echo): not ours
      if (reply.contains("error") && !reply["error"].is_null()) {
        throw JsonRpcError(path + ": " + method + ": " + reply["error"].dump().substr(0, 200));
      }
      if (!reply.contains("result")) throw JsonRpcError(path + ": " + method + ": reply without a result");
      return reply["result"];
    }
    if (in.size() > max_bytes) {
      throw JsonRpcError(path + ": " + method + ": reply larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
}

}  // namespace vnet::net
