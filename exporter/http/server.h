// HTTP front: the telemetry path serves the exposition text, / a landing page.
//
// One gate thread holds every connection until its request head has fully arrived (epoll, never
// blocking; the TLS handshake too, when the web configuration has tls_server_config), so idle
// and slow clients cost a file descriptor each and never a worker; a few workers serve complete
// requests only. Every answer closes its connection.
#pragma once


#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/request.h"
#include "http/tls.h"
#include "http/web_config.h"
#include "metrics/writer.h"

namespace vnet::http {

struct Limits {
  int workers = 4;                 // requests served at the same time
  size_t max_queued = 64;          // complete requests waiting for a worker; more get 503
  size_t max_request_bytes = 8192; // a longer request head gets 431
  // Connections whose request head has not arrived yet. Past either bound the oldest connection
  // of the client holding the most goes, so a flood from one address cannot lock others out.
  size_t max_waiting = 1024;
  size_t max_waiting_per_client = 64;
  std::chrono::milliseconds request_timeout{5000};  // to receive a whole request head
  std::chrono::milliseconds write_timeout{10000};   // to send a whole answer
};

// A socket bound to host:port as Prometheus exporters spell it (":9748" all IPv4 addresses,
// "127.0.0.1:0", "[::1]:9748"; port 0 picks a free port), not listening yet: made before any
// probe is attached so that an address in use is reported first. Throws std::invalid_argument
// for a malformed address, std::runtime_error with the reason when it cannot be bound.
class Listener {
 public:
  explicit Listener(const std::string& address);
  ~Listener();
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&&) = delete;

  int fd() const { return fd_; }
  void Close();  // new connections are refused from here on

 private:
  int fd_ = -1;
};

// Makes the metrics of one scrape within `budget`: the scraper's own timeout
// (X-Prometheus-Scrape-Timeout-Seconds) less half a second for the answer to travel, or 10 s.
using Scrape = std::function<metrics::Emit(std::chrono::milliseconds budget)>;

class Server {
 public:
  Server(Listener listener, std::string telemetry_path, Scrape scrape, std::function<std::string()> landing_page,
         Limits limits = {}, WebConfig web = {});
  Server(const std::string& listen_address, std::string telemetry_path, Scrape scrape,
         std::function<std::string()> landing_page, Limits limits = {}, WebConfig web = {})
      : Server(Listener(listen_address), std::move(telemetry_path), std::move(scrape), std::move(landing_page),
               limits, std::move(web)) {}
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;

  // Serves with `web` from the next connection on (a reloaded web configuration).
  void SetWebConfig(WebConfig web);
  // POST /-/reload runs `reload`: "" when it succeeded, else the reason (answered 500).
  void HandleReload(std::function<std::string()> reload);

  // Stops accepting and lets the requests already received be answered for up to `grace`.
  // False when some are still being served then (the caller may exit without waiting).
  bool Stop(std::chrono::milliseconds grace);

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiting {
    std::unique_ptr<Conn> conn;
    std::string client;
    Clock::time_point deadline;
    std::string head;
  };
  struct Job {
    std::unique_ptr<Conn> conn;
    Request request;
  };

  void Gate();
  void Accept();
  void Read(int fd);
  std::unique_ptr<Conn> Forget(int fd);  // leaves the gate, still open
  void Drop(int fd, int status);         // answers `status` first unless 0
  void MakeRoom(const std::string& client);
  void Work();
  void Answer(Conn& conn, const Request& request);

  Listener listener_;
  std::string telemetry_path_;
  Scrape scrape_;
  std::function<std::string()> landing_page_;
  Limits limits_;
  // The web configuration in force; a reload replaces it whole, connections keep the one they began with.
  struct Web {
    explicit Web(WebConfig config);
    BasicAuth auth;
    std::string headers;               // as header lines
    std::shared_ptr<const TlsContext> tls;  // null: plain HTTP
  };
  std::shared_ptr<const Web> web() const;
  mutable std::mutex web_mu_;
  std::shared_ptr<const Web> web_;
  std::function<std::string()> reload_;

  // Gate thread only.
  int epoll_ = -1;
  int spare_ = -1;  // closed to accept, and refuse, a connection when out of descriptors
  std::unordered_map<int, Waiting> waiting_;
  std::unordered_map<std::string, std::vector<int>> by_client_;  // oldest first

  int stop_ = -1;  // eventfd that ends the gate
  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable idle_;
  std::deque<Job> queue_;
  int busy_ = 0;
  bool stopping_ = false;
  std::thread gate_;
  std::vector<std::thread> workers_;
};

}  // namespace vnet::http
