// TLS for the HTTP front (OpenSSL): the server context of the web configuration's
// tls_server_config, and connections that are plain sockets or TLS over them, non-blocking both.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vnet::http {

// tls_server_config, in exporter-toolkit's terms.
struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  // NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven,
  // RequireAndVerifyClientCert.
  std::string client_auth_type = "NoClientCert";
  std::string client_ca_file;
  int min_version = TLS1_2_VERSION;
  int max_version = 0;                     // 0: the newest OpenSSL knows
  std::vector<std::string> cipher_suites;  // IANA names (TLS 1.2 and older); empty: OpenSSL's defaults
  std::vector<std::string> curves;         // OpenSSL group names; empty: OpenSSL's defaults
  bool prefer_server_cipher_suites = true;
};

// "TLS12" -> TLS1_2_VERSION; 0 when not a version exporter-toolkit knows.
int TlsVersion(const std::string& name);
// "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" -> OpenSSL's name; "" when OpenSSL has no such suite.
std::string CipherName(const std::string& iana);
// exporter-toolkit's curve names (CurveP256, CurveP384, CurveP521, X25519) -> OpenSSL's; "" if unknown.
std::string CurveName(const std::string& name);

// The server context: certificate and key loaded, client verification and versions set.
// Throws std::runtime_error with OpenSSL's reason.
class TlsContext {
 public:
  explicit TlsContext(const TlsConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

// One accepted connection: a non-blocking socket, with TLS when `tls` is given.
class Conn {
 public:
  Conn(int fd, const TlsContext* tls);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }

  enum class Io { kData, kWantRead, kWantWrite, kClosed, kFailed };
  // Receives into buf (`n` > 0 bytes when kData), finishing the TLS handshake first.
  Io Recv(char* buf, size_t size, size_t& n);
  // Sends all of `data` unless the client takes longer than `deadline` in all.
  bool SendAll(std::string_view data, std::chrono::steady_clock::time_point deadline);
  // One send without waiting, for short refusals; nothing when a TLS handshake is unfinished.
  void SendNow(std::string_view data);

 private:
  int fd_;
  SSL* ssl_ = nullptr;
  bool handshaken_ = false;
};

}  // namespace vnet::http
