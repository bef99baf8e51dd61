#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "metrics/proto.h"
#include "metrics/text.h"

namespace vnet::http {
namespace {

const char* StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
  }
}

// Without `length` the body is chunked (HTTP/1.1 clients) or ends where the connection does.
std::string Head(int status, const char* type, std::optional<size_t> length, std::string_view extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) + "\r\nContent-Type: " + type + "\r\n" +
         (length ? "Content-Length: " + std::to_string(*length) + "\r\n" : "") + std::string(extra) +
         "Connection: close\r\n\r\n";
}

// Short answers the gate gives without a worker: one non-blocking send, whatever fits.
std::string Refusal(int status) {
  std::string body = std::string(StatusText(status)) + "\n";
  return Head(status, "text/plain; charset=utf-8", body.size()) + body;
}

// The items of a header like Accept or Accept-Encoding ("a;q=0.5, b;x=y"): each one's value
// (media type or coding) with its parameters, spaces trimmed, and its q value (1 when not said).
struct Item {
  std::string_view value;
  std::string_view params;  // after the first ';'
  double q = 1;
};

std::vector<Item> Items(const std::string* header) {
  std::vector<Item> out;
  std::string_view rest = header ? std::string_view(*header) : std::string_view();
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  while (!rest.empty() && out.size() < 64) {  // a client's header is bounded by the request's size anyway
    const auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const auto semi = item.find(';');
    Item i{trim(item.substr(0, semi)), semi == std::string_view::npos ? std::string_view() : item.substr(semi + 1)};
    for (std::string_view rest_params = i.params; !rest_params.empty();) {  // ";a=b;q=0.5"
      const auto semi_at = rest_params.find(';');
      const std::string_view param = trim(rest_params.substr(0, semi_at));
      rest_params = semi_at == std::string_view::npos ? std::string_view() : rest_params.substr(semi_at + 1);
      if (param.starts_with("q=")) i.q = std::strtod(std::string(param.substr(2)).c_str(), nullptr);
    }
    out.push_back(i);
  }
  return out;
}

// True when the client takes gzip (Accept-Encoding: gzip, not "gzip;q=0"). Prometheus asks for it:
// the text of a large host shrinks about tenfold.
bool AcceptsGzip(const Request& request) {
  for (const auto& i : Items(request.Header("accept-encoding"))) {
    if (i.value == "gzip" || i.value == "x-gzip") return i.q > 0;
  }
  return false;
}

// True when the client prefers the protobuf exposition of MetricFamily messages to text: a
// Prometheus with native histograms on asks for it first (its other offers are text formats).
bool WantsProtobuf(const Request& request) {
  double proto = 0, text = 0;
  for (const auto& i : Items(request.Header("accept"))) {
    if (i.value == "application/vnd.google.protobuf") {
      if (i.params.find("proto=io.prometheus.client.MetricFamily") != std::string_view::npos &&
          i.params.find("encoding=delimited") != std::string_view::npos) {
        proto = std::max(proto, i.q);
      }
    } else {
      text = std::max(text, i.q);  // text/plain, OpenMetrics (served as text/plain), */*
    }
  }
  return proto > 0 && proto >= text;
}

// gzip written as the text comes: deflate keeps its window (~256 KiB), never the whole text.
class GzipStream {
 public:
  GzipStream() { ok_ = deflateInit2(&z_, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK; }
  ~GzipStream() {
    if (ok_) deflateEnd(&z_);
  }
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // False when zlib could not start (out of memory): the answer then goes uncompressed.
  bool ok() const { return ok_; }

  // Compresses `in`, and ends the stream when `finish`, into `out` (replaced).
  void Write(std::string_view in, bool finish, std::string& out) {
    out.clear();
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    char buf[1 << 16];
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof(buf);
      deflate(&z_, finish ? Z_FINISH : Z_NO_FLUSH);  // only Z_STREAM_ERROR fails: not with a valid stream
      out.append(buf, sizeof(buf) - z_.avail_out);
    } while (z_.avail_out == 0);
  }

 private:
  z_stream z_{};
  bool ok_ = false;
};

// Compresses and sends the chunks handed to it in a thread of its own while the next ones are
// written: a gzipped scrape then takes about the longer of the two, not their sum (1,000 vNICs'
// per-queue histograms: ~40 ms of text, ~70 ms of deflate). One chunk waits at most.
class GzipSender {
 public:
  GzipSender(GzipStream& gzip, std::function<bool(std::string_view)> send)
      : gzip_(gzip), send_(std::move(send)), thread_([this] { Run(); }) {}
  ~GzipSender() { Close(); }
  GzipSender(const GzipSender&) = delete;
  GzipSender& operator=(const GzipSender&) = delete;

  // Takes `chunk` (it comes back empty, with an earlier chunk's capacity); false once a send
  // failed.
  bool Push(std::string& chunk) {
    std::unique_lock lock(mu_);
    ready_.wait(lock, [&] { return pending_.empty() || failed_; });
    if (failed_) return false;
    std::swap(pending_, chunk);
    chunk.clear();
    ready_.notify_all();
    return true;
  }

  // Waits until what was taken is sent; false when a send failed.
  bool Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      ready_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    return !failed_;
  }

 private:
  void Run() {
    std::string chunk, packed;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [&] { return !pending_.empty() || closed_; });
        if (pending_.empty()) return;  // closed, and all sent
        std::swap(chunk, pending_);
        ready_.notify_all();
      }
      bool sent = false;
      try {
        gzip_.Write(chunk, false, packed);
        sent = send_(packed);
      } catch (const std::exception&) {  // out of memory: the answer ends here
      }
      chunk.clear();
      if (!sent) {
        std::lock_guard lock(mu_);
        failed_ = true;
        ready_.notify_all();
        return;
      }
    }
  }

  GzipStream& gzip_;
  std::function<bool(std::string_view)> send_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::string pending_;  // empty: room for the next chunk (the writer never hands an empty one)
  bool closed_ = false, failed_ = false;
  std::thread thread_;  // last: starts once the members it uses are there
};

std::chrono::milliseconds Budget(const Request& request) {
  const std::string* timeout = request.Header("x-prometheus-scrape-timeout-seconds");
  double seconds = 0;
  if (!timeout || std::sscanf(timeout->c_str(), "%lf", &seconds) != 1 || !(seconds > 0)) {
    return std::chrono::seconds(10);
  }
  return std::chrono::milliseconds(std::clamp<long>(static_cast<long>((seconds - 0.5) * 1000), 100, 120000));
}

std::string ClientAddress(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(addr).sin_addr, buf, sizeof(buf));
  } else if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

}  // namespace

Listener::Listener(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    throw std::invalid_argument("--web.listen-address: expected host:port, got \"" + address + "\"");
  }
  const std::string port = address.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 || std::stoul(port) > 65535) {
    throw std::invalid_argument("--web.listen-address: invalid port in \"" + address + "\"");
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = host.empty() ? AF_INET : AF_UNSPEC;  // a bare port means every IPv4 address
  addrinfo* res = nullptr;
  if (int err = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res)) {
    throw std::runtime_error("cannot listen on " + address + ": " + gai_strerror(err));
  }
  std::string why = "cannot listen on " + address + ": no address";
  for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
    fd_ = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd_ < 0) continue;
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // a restart must not wait for TIME_WAIT
    if (bind(fd_, a->ai_addr, a->ai_addrlen) != 0) {
      why = "cannot listen on " + address + ": " + std::strerror(errno);
      close(fd_);
      fd_ = -1;
    }
  }
  freeaddrinfo(res);
  if (fd_ < 0) throw std::runtime_error(why);
}

Listener::~Listener() { Close(); }

void Listener::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Listener::Listener(Listener&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

Server::Server(Listener listener, std::string telemetry_path, Scrape scrape, std::function<std::string()> landing_page,
               Limits limits, WebConfig web)
    : listener_(std::move(listener)),
      telemetry_path_(std::move(telemetry_path)),
      scrape_(std::move(scrape)),
      landing_page_(std::move(landing_page)),
      limits_(limits),
      web_(std::make_shared<Web>(std::move(web))) {
  // OpenSSL writes to sockets with write(): a client gone meanwhile must not kill the process.
  signal(SIGPIPE, SIG_IGN);
  if (listen(listener_.fd(), SOMAXCONN) != 0) throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  stop_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  spare_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_ < 0 || stop_ < 0 || spare_ < 0) throw std::runtime_error(std::string("http: ") + std::strerror(errno));
  for (int fd : {listener_.fd(), stop_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
  gate_ = std::thread([this] { Gate(); });
  for (int i = 0; i < limits_.workers; ++i) workers_.emplace_back([this] { Work(); });
}

Server::Web::Web(WebConfig config) : auth(std::move(config.basic_auth_users)), tls(std::move(config.tls)) {
  for (const auto& [name, value] : config.headers) headers += name + ": " + value + "\r\n";
}

std::shared_ptr<const Server::Web> Server::web() const {
  std::lock_guard lock(web_mu_);
  return web_;
}

void Server::SetWebConfig(WebConfig web) {
  auto next = std::make_shared<const Web>(std::move(web));
  std::lock_guard lock(web_mu_);
  web_ = std::move(next);
}

void Server::HandleReload(std::function<std::string()> reload) {
  std::lock_guard lock(web_mu_);
  reload_ = std::move(reload);
}

Server::~Server() {
  Stop(limits_.write_timeout);
  for (auto& w : workers_) w.join();
  for (int fd : {epoll_, stop_, spare_}) {
    if (fd >= 0) close(fd);
  }
}

uint16_t Server::port() const {
  if (listener_.fd() < 0) return 0;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(listener_.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(addr).sin6_port
                                          : reinterpret_cast<sockaddr_in&>(addr).sin_port);
}

bool Server::Stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return true;
    stopping_ = true;
  }
  const uint64_t one = 1;
  (void)!write(stop_, &one, sizeof(one));
  gate_.join();
  listener_.Close();
  work_.notify_all();
  std::unique_lock lock(mu_);
  return idle_.wait_for(lock, grace, [this] { return queue_.empty() && busy_ == 0; });
}

void Server::Gate() {
  epoll_event events[64];
  for (;;) {
    int timeout = -1;
    const auto now = Clock::now();
    for (const auto& [fd, w] : waiting_) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(w.deadline - now).count();
      timeout = timeout < 0 ? std::max<int>(0, left) : std::min<int>(timeout, std::max<int>(0, left));
    }
    const int n = epoll_wait(epoll_, events, 64, timeout);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_) {
        while (!waiting_.empty()) Drop(waiting_.begin()->first, 0);
        return;
      }
      if (fd == listener_.fd()) {
        Accept();
      } else if (waiting_.count(fd)) {
        Read(fd);
      }
    }
    std::vector<int> late;
    for (const auto& [fd, w] : waiting_) {
      if (w.deadline <= Clock::now()) late.push_back(fd);
    }
    for (int fd : late) Drop(fd, 408);
  }
}

void Server::Accept() {
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = accept4(listener_.fd(), reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && !waiting_.empty()) {
        MakeRoom("");  // a waiting connection makes way for the newest
        continue;
      }
      if (errno == EMFILE || errno == ENFILE) {
        // Nothing of ours to close: refuse this one so that the listening socket stops firing.
        close(spare_);
        close(accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC));
        spare_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      return;  // EAGAIN: all accepted
    }
    std::unique_ptr<Conn> conn;
    try {
      conn = std::make_unique<Conn>(fd, web()->tls.get());  // OpenSSL keeps its own reference
    } catch (const std::exception&) {
      close(fd);
      continue;
    }
    std::string client = ClientAddress(addr);
    if (by_client_[client].size() >= limits_.max_waiting_per_client) MakeRoom(client);
    if (waiting_.size() >= limits_.max_waiting) MakeRoom("");
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    by_client_[client].push_back(fd);
    waiting_[fd] = Waiting{std::move(conn), std::move(client), Clock::now() + limits_.request_timeout, {}};
  }
}

// Closes the oldest waiting connection of `client`, or of the client holding the most when "".
void Server::MakeRoom(const std::string& client) {
  auto it = by_client_.find(client);
  if (client.empty()) {
    it = std::max_element(by_client_.begin(), by_client_.end(),
                          [](const auto& a, const auto& b) { return a.second.size() < b.second.size(); });
  }
  if (it != by_client_.end() && !it->second.empty()) Drop(it->second.front(), 503);
}

void Server::Read(int fd) {
  Waiting& w = waiting_.at(fd);
  char buf[4096];
  for (;;) {
    size_t n = 0;
    const Conn::Io io = w.conn->Recv(buf, sizeof(buf), n);
    if (io == Conn::Io::kWantRead || io == Conn::Io::kWantWrite) {
      // A TLS handshake may need to send before it can read on.
      epoll_event ev{};
      ev.events = (io == Conn::Io::kWantRead ? EPOLLIN : EPOLLOUT) | EPOLLRDHUP;
      ev.data.fd = fd;
      epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
      return;
    }
    if (io != Conn::Io::kData) return Drop(fd, 0);  // gone before asking, or a failed handshake
    const size_t from = w.head.size() < 3 ? 0 : w.head.size() - 3;
    w.head.append(buf, n);
    const auto end = w.head.find("\r\n\r\n", from);
    if (end == std::string::npos) {
      if (w.head.size() > limits_.max_request_bytes) return Drop(fd, 431);
      continue;
    }
    if (end > limits_.max_request_bytes) return Drop(fd, 431);
    auto request = ParseRequest(std::string_view(w.head).substr(0, end));
    if (!request) return Drop(fd, 400);
    std::unique_ptr<Conn> conn = Forget(fd);
    std::lock_guard lock(mu_);
    if (queue_.size() >= limits_.max_queued) {
      conn->SendNow(Refusal(503));
      return;
    }
    queue_.push_back(Job{std::move(conn), std::move(*request)});
    work_.notify_one();
    return;
  }
}

std::unique_ptr<Conn> Server::Forget(int fd) {
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  auto it = waiting_.find(fd);
  auto& fds = by_client_[it->second.client];
  fds.erase(std::find(fds.begin(), fds.end(), fd));
  if (fds.empty()) by_client_.erase(it->second.client);
  std::unique_ptr<Conn> conn = std::move(it->second.conn);
  waiting_.erase(it);
  return conn;
}

void Server::Drop(int fd, int status) {
  std::unique_ptr<Conn> conn = Forget(fd);
  if (status) conn->SendNow(Refusal(status));
}

void Server::Work() {
  for (;;) {
    std::unique_lock lock(mu_);
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to answer
    Job job = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    Answer(*job.conn, job.request);
    job.conn.reset();
    lock.lock();
    --busy_;
    if (queue_.empty() && busy_ == 0) idle_.notify_all();
  }
}

void Server::Answer(Conn& conn, const Request& request) {
  const auto deadline = Clock::now() + limits_.write_timeout;
  const bool head = request.method == "HEAD";
  const auto web = this->web();
  // Short answers: the web configuration's headers, and a body unless HEAD.
  auto refuse = [&](int status, const std::string& extra, std::string body = "") {
    if (body.empty()) body = std::string(StatusText(status)) + "\n";
    conn.SendAll(Head(status, "text/plain; charset=utf-8", body.size(), web->headers + extra) + (head ? "" : body), deadline);
  };
  if (web->auth.required() && !web->auth.Check(request.Header("authorization"))) {
    refuse(401, "WWW-Authenticate: Basic\r\n");
    return;
  }
  if (request.path == "/-/reload") {
    if (request.method != "POST") return refuse(405, "Allow: POST\r\n");
    std::function<std::string()> reload;
    {
      std::lock_guard lock(web_mu_);
      reload = reload_;
    }
    if (!reload) return refuse(404, "");
    const std::string error = reload();
    return error.empty() ? refuse(200, "", "reloaded\n") : refuse(500, "", error + "\n");
  }
  const bool metrics = request.path == telemetry_path_;
  if (!metrics && request.path != "/") {
    refuse(404, "");
    return;
  }
  if (!head && request.method != "GET") {
    refuse(405, "Allow: GET, HEAD\r\n");
    return;
  }
  if (!metrics) {
    const std::string body = landing_page_();
    if (conn.SendAll(Head(200, "text/html; charset=utf-8", body.size(), web->headers), deadline) && !head) {
      conn.SendAll(body, deadline);
    }
    return;
  }
  metrics::Emit emit;
  try {
    emit = scrape_(Budget(request));
  } catch (const std::exception& e) {
    return refuse(500, "", std::string("scrape failed: ") + e.what() + "\n");
  }
  // The text goes out as it is written, in chunks, never whole in memory (27 MB for 1,000 vNICs).
  const bool chunked = request.version == "HTTP/1.1";
  std::optional<GzipStream> gzip;
  if (AcceptsGzip(request)) gzip.emplace();
  if (gzip && !gzip->ok()) gzip.reset();
  std::string extra = web->headers + "Vary: Accept, Accept-Encoding\r\n";
  if (gzip) extra += "Content-Encoding: gzip\r\n";
  if (chunked) extra += "Transfer-Encoding: chunked\r\n";
  const bool protobuf = WantsProtobuf(request);
  if (!conn.SendAll(Head(200, protobuf ? metrics::kProtoContentType : "text/plain; version=0.0.4; charset=utf-8",
                         std::nullopt, extra),
                    deadline) ||
      head) {
    return;
  }
  std::string packed, framed;
  auto send = [&](std::string_view data) {
    if (data.empty()) return true;
    if (!chunked) return conn.SendAll(data, deadline);
    char size[24];
    framed.assign(size, std::snprintf(size, sizeof(size), "%zx\r\n", data.size()));
    framed.append(data).append("\r\n");
    return conn.SendAll(framed, deadline);
  };
  std::optional<GzipSender> sender;
  if (gzip) {
    try {
      sender.emplace(*gzip, send);
    } catch (const std::system_error&) {  // no thread to be had: compressed in this one
    }
  }
  std::string text;
  auto write = [&](std::string& chunk) {
    if (chunk.empty()) return true;
    bool sent;
    if (sender) {
      sent = sender->Push(chunk);
    } else if (gzip) {
      gzip->Write(chunk, false, packed);
      sent = send(packed);
    } else {
      sent = send(chunk);
    }
    chunk.clear();
    return sent;
  };
  std::unique_ptr<metrics::Writer> writer;
  if (protobuf) {
    writer = std::make_unique<metrics::ProtoWriter>(text, 1 << 16, write);
  } else {
    writer = std::make_unique<metrics::TextWriter>(text, 1 << 16, write);
  }
  emit(*writer);
  const bool written = writer->Finish();
  if ((sender && !sender->Close()) || !written) return;
  if (gzip) {
    gzip->Write("", true, packed);
    if (!send(packed)) return;
  }
  if (chunked) conn.SendAll("0\r\n\r\n", deadline);
}

}  // namespace vnet::http
