// The web configuration file of Prometheus exporters (exporter-toolkit's format): TLS, users
// allowed in with HTTP basic auth, and headers added to every answer.
#pragma once

#include <map>
#include <mutex>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "http/tls.h"

namespace vnet::http {

struct WebConfig {
  std::map<std::string, std::string> basic_auth_users;       // user -> bcrypt hash
  std::vector<std::pair<std::string, std::string>> headers;  // http_server_config.headers
  std::shared_ptr<const TlsContext> tls;                     // tls_server_config, loaded; null: plain HTTP
};

// Throws config::Error naming file, line and key, like the main configuration.
WebConfig LoadWebConfig(const std::string& path);

// Checks Authorization headers against the users' bcrypt hashes (crypt(3) of libxcrypt).
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

  bool required() const { return !users_.empty(); }
  // True for "Basic base64(user:password)" of a configured user and its password.
  bool Check(const std::string* authorization) const;

 private:
  std::map<std::string, std::string> users_;
  // Digests of (user, hash, password) that passed: bcrypt costs tens of milliseconds by design,
  // too much for every scrape. Only right passwords get in, so it holds one entry per user.
  mutable std::mutex mu_;
  mutable std::set<std::string> passed_;
};

}  // namespace vnet::http
