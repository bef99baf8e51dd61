#include "http/server.h"

#include <civetweb.h>
#include <netdb.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace vnet::http {
namespace {

// civetweb wants "port", "ip:port" or "[ip6]:port"; Prometheus style ":port" means all addresses.
std::string CivetPorts(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    throw std::invalid_argument("--web.listen-address: expected host:port, got \"" + listen + "\"");
  }
  std::string port = listen.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 || std::stoul(port) > 65535) {
    throw std::invalid_argument("--web.listen-address: invalid port in \"" + listen + "\"");
  }
  return colon == 0 ? port : listen;
}

const char* StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Internal Server Error";
  }
}

// A HEAD request gets the headers of the GET answer and no body.
void Reply(struct mg_connection* conn, int status, const char* type, const std::string& body) {
  const bool head = std::strcmp(mg_get_request_info(conn)->request_method, "HEAD") == 0;
  mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
            status, StatusText(status), type, body.size(), status == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (!head) mg_write(conn, body.data(), body.size());
}

// Only GET and HEAD of exactly `path`: civetweb's handler patterns also match longer paths.
bool Refused(struct mg_connection* conn, const std::string& path) {
  const auto* info = mg_get_request_info(conn);
  if (path != info->local_uri) {
    Reply(conn, 404, "text/plain; charset=utf-8", "not found\n");
    return true;
  }
  if (std::strcmp(info->request_method, "GET") != 0 && std::strcmp(info->request_method, "HEAD") != 0) {
    Reply(conn, 405, "text/plain; charset=utf-8", "only GET and HEAD\n");
    return true;
  }
  return false;
}

}  // namespace

std::string CheckListenAddress(const std::string& listen_address) {
  try {
    CivetPorts(listen_address);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  const auto colon = listen_address.rfind(':');
  std::string host = listen_address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = host.empty() ? AF_INET : AF_UNSPEC;  // civetweb serves a bare port on IPv4
  addrinfo* res = nullptr;
  if (int err = getaddrinfo(host.empty() ? nullptr : host.c_str(), listen_address.c_str() + colon + 1, &hints, &res)) {
    return "cannot listen on " + listen_address + ": " + gai_strerror(err);
  }
  std::string why;
  for (addrinfo* a = res; a; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as civetweb does
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) why = "cannot listen on " + listen_address + ": " + std::strerror(errno);
    close(fd);
    if (!why.empty()) break;
  }
  freeaddrinfo(res);
  return why;
}

Server::Server(const std::string& listen_address, std::string telemetry_path, const prometheus::Collectable& metrics,
               std::function<std::string()> landing_page)
    : telemetry_path_(std::move(telemetry_path)), metrics_(metrics), landing_page_(std::move(landing_page)) {
  std::string ports = CivetPorts(listen_address);
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "4", nullptr};
  mg_init_library(0);
  struct mg_callbacks callbacks = {};
  ctx_ = mg_start(&callbacks, nullptr, options);
  if (!ctx_) throw std::runtime_error("cannot listen on " + listen_address);
  mg_set_request_handler(ctx_, telemetry_path_.c_str(), HandleMetrics, this);
  mg_set_request_handler(ctx_, "/$", HandleLanding, this);
}

Server::~Server() {
  mg_stop(ctx_);
  mg_exit_library();
}

uint16_t Server::port() const {
  struct mg_server_port ports[4];
  int n = mg_get_server_ports(ctx_, 4, ports);
  return n > 0 ? static_cast<uint16_t>(ports[0].port) : 0;
}

int Server::HandleMetrics(struct mg_connection* conn, void* self) {
  auto* s = static_cast<Server*>(self);
  if (Refused(conn, s->telemetry_path_)) return 200;
  try {
    std::ostringstream os;
    prometheus::TextSerializer().Serialize(os, s->metrics_.Collect());
    Reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", os.str());
  } catch (const std::exception& e) {
    Reply(conn, 500, "text/plain; charset=utf-8", std::string("scrape failed: ") + e.what() + "\n");
  }
  return 200;
}

int Server::HandleLanding(struct mg_connection* conn, void* self) {
  auto* s = static_cast<Server*>(self);
  if (Refused(conn, "/")) return 200;
  Reply(conn, 200, "text/html; charset=utf-8", s->landing_page_());
  return 200;
}

}  // namespace vnet::http
