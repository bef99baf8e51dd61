// JSON-RPC replies from a peer of the test's own on a unix socket: split, flooding, oversized,
// deeply nested or not JSON; each is a clear error or a value, never a hang or a crash.
#include "net/jsonrpc.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "../support/fixtures.h"

namespace vnet::net {
namespace {

// Accepts one connection, reads the request, then runs `reply` with the connection's fd.
class Peer {
 public:
  explicit Peer(std::function<void(int)> reply) : path_(dir_.path() / "s.sock") {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    listen(fd_, 1);
    thread_ = std::thread([this, reply] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)!recv(c, buf, sizeof(buf), 0);
      reply(c);
      close(c);
    });
  }
  ~Peer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string path() const { return path_; }

 private:
  testing::TempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::thread thread_;
};

void Send(int fd, const std::string& s) { (void)!send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

std::string ErrorOf(const Peer& peer, std::size_t max_bytes = 1 << 20,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  try {
    JsonRpcCall(peer.path(), "m", nlohmann::json::array(), timeout, max_bytes);
  } catch (const JsonRpcError& e) {
    return e.what();
  }
  return "";
}

TEST(JsonRpc, ReplySplitIntoBytesWithANotificationFirst) {
  Peer peer([](int fd) {
    std::string msgs = R"({"method":"echo","params":[],"id":"x"} {"id":0,"error":null,"result":"a}\"{"})";
    for (char c : msgs) Send(fd, std::string(1, c));
  });
  EXPECT_EQ(JsonRpcCall(peer.path(), "m", nlohmann::json::array(), std::chrono::seconds(5)), "a}\"{");
}

// It used to parse the whole buffer again at each chunk, for minutes, past its timeout.
TEST(JsonRpc, APeerThatNeverStopsSendingTimesOut) {
  std::atomic<bool> stop = false;
  Peer peer([&](int fd) {
    Send(fd, R"({"id":0,"result":")");
    const std::string chunk(4096, 'x');
    while (!stop) Send(fd, chunk);
  });
  // Either message: the deadline passes while bytes arrive, or in a pause of the sender's.
  EXPECT_NE(ErrorOf(peer, 1ull << 40, std::chrono::milliseconds(500)).find("reply to m in time"), std::string::npos);
  stop = true;
}

TEST(JsonRpc, OversizedNestedAndMalformedReplies) {
  {
    Peer peer([](int fd) { Send(fd, R"({"id":0,"result":")" + std::string(2 << 20, 'x') + "\"}"); });
    EXPECT_NE(ErrorOf(peer).find("reply larger than 1048576 bytes"), std::string::npos);
  }
  {
    Peer peer([](int fd) { Send(fd, std::string(100000, '[') + std::string(100000, ']')); });
    EXPECT_NE(ErrorOf(peer).find("reply is not a JSON object"), std::string::npos);
  }
  {
    Peer peer([](int fd) { Send(fd, "{\"result\":" + std::string(100000, '[') + std::string(100000, ']') + "}"); });
    EXPECT_NE(ErrorOf(peer).find("nested deeper than 64"), std::string::npos);
  }
  {
    Peer peer([](int fd) { Send(fd, "{\"id\":0,\"result\":tru}"); });
    EXPECT_NE(ErrorOf(peer).find("reply is not a JSON object"), std::string::npos);
  }
  {
    Peer peer([](int fd) { Send(fd, "\"{\""); });
    EXPECT_NE(ErrorOf(peer).find("reply is not a JSON object"), std::string::npos);
  }
  {
    Peer peer([](int fd) { Send(fd, "{\"id\":0}"); });
    EXPECT_NE(ErrorOf(peer).find("reply without a result"), std::string::npos);
  }
}

}  // namespace
}  // namespace vnet::net
