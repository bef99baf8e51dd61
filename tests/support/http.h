// A minimal HTTP client over loopback for tests. HTTP/1.0, so that no server answers in chunks.
#pragma once

#include <arpa/inet.h>
#include <crypt.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace vnet::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// A TCP connection to 127.0.0.1:`port`; throws when nothing listens there.
inline int ConnectLoopback(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(s);
    throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port));
  }
  return s;
}

inline HttpResponse HttpRequest(uint16_t port, const std::string& method, const std::string& path) {
  int s = ConnectLoopback(port);
  // A server that does not answer fails the test instead of hanging it.
  timeval timeout{30, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string req = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
  (void)!write(s, req.data(), req.size());
  std::string raw;
  char buf[65536];
  ssize_t n;
  while ((n = read(s, buf, sizeof(buf))) > 0) raw.append(buf, n);
  close(s);
  if (n < 0) throw std::runtime_error("no answer from 127.0.0.1:" + std::to_string(port) + " within 30 s");
  HttpResponse r;
  auto end = raw.find("\r\n\r\n");
  if (raw.compare(0, 7, "HTTP/1.") != 0 || end == std::string::npos) throw std::runtime_error("bad response: " + raw);
  r.status = std::stoi(raw.substr(9, 3));
  r.headers = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

// bcrypt of `password` at the lowest cost (the tests' time, not the hash's strength, matters here).
inline std::string Bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof(salt))) throw std::runtime_error("crypt_gensalt_rn");
  crypt_data data{};
  return crypt_r(password.c_str(), salt, &data);
}

// What http::Server calls to scrape `exporter` (an ExporterCollector) within a budget.
template <class Exporter>
auto Scrape(const Exporter& exporter) {
  return [&exporter](std::chrono::milliseconds budget) { return exporter.Scrape(budget); };
}

inline HttpResponse HttpGet(uint16_t port, const std::string& path) { return HttpRequest(port, "GET", path); }

}  // namespace vnet::testing
