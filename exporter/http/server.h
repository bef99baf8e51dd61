// HTTP front: the telemetry path serves the exposition text, / a landing page.
#pragma once

#include <prometheus/collectable.h>

#include <cstdint>
#include <functional>
#include <string>

struct mg_context;
struct mg_connection;

namespace vnet::http {

// "" when `listen_address` can be listened on now, else why not ("127.0.0.1:9748: Address already
// in use"): checked before anything is attached, so the reason comes first and fast.
std::string CheckListenAddress(const std::string& listen_address);

class Server {
 public:
  // `listen_address` is host:port as for Prometheus exporters (":9748", "127.0.0.1:0",
  // "[::1]:9748"); port 0 picks a free port, see port(). Throws when it cannot listen.
  Server(const std::string& listen_address, std::string telemetry_path, const prometheus::Collectable& metrics,
         std::function<std::string()> landing_page);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;

 private:
  static int HandleMetrics(struct mg_connection* conn, void* self);
  static int HandleLanding(struct mg_connection* conn, void* self);

  std::string telemetry_path_;
  const prometheus::Collectable& metrics_;
  std::function<std::string()> landing_page_;
  struct mg_context* ctx_ = nullptr;
};

}  // namespace vnet::http
