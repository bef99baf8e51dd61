#include "http/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

#include "io/file.h"

namespace vnet::http {
namespace {

// OpenSSL's reason for the last failure of this thread (the first error queued is its cause),
// and the error queue emptied.
std::string OpensslReason() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    if (!out.empty()) continue;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out = buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// The PEM text of a file of tls_server_config, read as every file others may control is: a
// regular file, without blocking, at most 1 MiB (a FIFO or /dev/zero in its place must not
// hold or flood start-up or a reload). OpenSSL then parses it from memory.
std::string ReadPem(const char* key, const std::string& path) {
  try {
    return io::ReadFile(path, 1 << 20);
  } catch (const io::FileError& e) {
    throw std::runtime_error(std::string(key) + " " + e.what());
  }
}

// The certificates of a PEM text, in order; none when it holds none.
std::vector<X509*> Certificates(const std::string& pem) {
  std::vector<X509*> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* x = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr) out.push_back(x);
  BIO_free(bio);
  ERR_clear_error();  // the end of the text reads as "no start line"
  return out;
}

// Requested, or required, but not verified: exporter-toolkit's RequestClientCert and
// RequireAnyClientCert accept any certificate.
int AcceptAny(int, X509_STORE_CTX*) { return 1; }

Conn::Io Want(int err) {
  switch (err) {
    case SSL_ERROR_WANT_READ: return Conn::Io::kWantRead;
    case SSL_ERROR_WANT_WRITE: return Conn::Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN: return Conn::Io::kClosed;
    default: return Conn::Io::kFailed;
  }
}

// Waits until `fd` is ready for `events` or the deadline passes.
bool Wait(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  const int r = poll(&p, 1, static_cast<int>(left.count()));
  return r > 0 || (r < 0 && errno == EINTR);
}

}  // namespace

int TlsVersion(const std::string& name) {
  if (name == "TLS10") return TLS1_VERSION;
  if (name == "TLS11") return TLS1_1_VERSION;
  if (name == "TLS12") return TLS1_2_VERSION;
  if (name == "TLS13") return TLS1_3_VERSION;
  return 0;
}

std::string CipherName(const std::string& iana) {
  const char* name = OPENSSL_cipher_name(iana.c_str());
  return name && std::string(name) != "(NONE)" ? name : "";
}

std::string CurveName(const std::string& name) {
  if (name == "CurveP256") return "P-256";
  if (name == "CurveP384") return "P-384";
  if (name == "CurveP521") return "P-521";
  if (name == "X25519") return "X25519";
  return "";
}

TlsContext::TlsContext(const TlsConfig& c) {
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (!ctx_) throw std::runtime_error(OpensslReason());
  auto fail = [&](const std::string& what) {
    const std::string reason = what + ": " + OpensslReason();
    SSL_CTX_free(ctx_);
    throw std::runtime_error(reason);
  };
  std::string cert_pem, key_pem, ca_pem;
  try {
    cert_pem = ReadPem("cert_file", c.cert_file);
    key_pem = ReadPem("key_file", c.key_file);
    if (!c.client_ca_file.empty()) ca_pem = ReadPem("client_ca_file", c.client_ca_file);
  } catch (const std::runtime_error&) {
    SSL_CTX_free(ctx_);
    throw;
  }
  SSL_CTX_set_min_proto_version(ctx_, c.min_version);
  if (c.max_version) SSL_CTX_set_max_proto_version(ctx_, c.max_version);
  // Client-initiated renegotiation would let one client make the server do handshakes at will.
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | (c.prefer_server_cipher_suites ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // The server's certificate first, then the intermediates of its chain.
  std::vector<X509*> chain = Certificates(cert_pem);
  const bool cert_ok = !chain.empty() && SSL_CTX_use_certificate(ctx_, chain[0]) == 1;
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!cert_ok || SSL_CTX_add0_chain_cert(ctx_, chain[i]) != 1) X509_free(chain[i]);
  }
  if (!chain.empty()) X509_free(chain[0]);
  if (!cert_ok) fail("cert_file " + c.cert_file + ": no PEM certificate");
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = key_bio ? PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(key_bio);
  const bool key_ok = key && SSL_CTX_use_PrivateKey(ctx_, key) == 1;
  EVP_PKEY_free(key);
  if (!key_ok) fail("key_file " + c.key_file + ": no PEM private key");
  if (SSL_CTX_check_private_key(ctx_) != 1) fail("key_file " + c.key_file + " is not the key of cert_file");
  if (!c.cipher_suites.empty()) {
    std::string list;
    for (const auto& s : c.cipher_suites) list += (list.empty() ? "" : ":") + CipherName(s);
    if (SSL_CTX_set_cipher_list(ctx_, list.c_str()) != 1) fail("cipher_suites");
  }
  if (!c.curves.empty()) {
    std::string list;
    for (const auto& g : c.curves) list += (list.empty() ? "" : ":") + g;
    if (SSL_CTX_set1_groups_list(ctx_, list.c_str()) != 1) fail("curve_preferences");
  }
  if (!c.client_ca_file.empty()) {
    // Trusted to sign client certificates, and named to clients as such.
    std::vector<X509*> cas = Certificates(ca_pem);
    bool ca_ok = !cas.empty();
    for (X509* ca : cas) {
      ca_ok = ca_ok && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca) == 1 && SSL_CTX_add_client_CA(ctx_, ca) == 1;
      X509_free(ca);
    }
    if (!ca_ok) fail("client_ca_file " + c.client_ca_file + ": no PEM certificate");
  }
  // Sessions resumed with a verified client need a context of their own.
  static const unsigned char kSessionContext[] = "vnet_exporter";
  SSL_CTX_set_session_id_context(ctx_, kSessionContext, sizeof(kSessionContext) - 1);
  const std::string& a = c.client_auth_type;
  if (a == "RequestClientCert") {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, AcceptAny);
  } else if (a == "RequireAnyClientCert") {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, AcceptAny);
  } else if (a == "VerifyClientCertIfGiven") {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  } else if (a == "RequireAndVerifyClientCert") {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Conn::Conn(int fd, const TlsContext* tls) : fd_(fd) {
  if (!tls) return;
  ssl_ = SSL_new(tls->get());
  if (!ssl_ || SSL_set_fd(ssl_, fd) != 1) {
    SSL_free(ssl_);
    ERR_clear_error();
    throw std::runtime_error("TLS: out of memory");
  }
  SSL_set_accept_state(ssl_);
}

Conn::~Conn() {
  if (ssl_) {
    ERR_clear_error();
    if (handshaken_) SSL_shutdown(ssl_);  // one try: the close_notify alert, never waited for
    SSL_free(ssl_);
    ERR_clear_error();
  }
  close(fd_);
}

Conn::Io Conn::Recv(char* buf, size_t size, size_t& n) {
  n = 0;
  if (!ssl_) {
    for (;;) {
      const ssize_t r = recv(fd_, buf, size, 0);
      if (r > 0) {
        n = static_cast<size_t>(r);
        return Io::kData;
      }
      if (r == 0) return Io::kClosed;
      if (errno == EINTR) continue;
      return errno == EAGAIN ? Io::kWantRead : Io::kFailed;
    }
  }
  ERR_clear_error();
  if (!handshaken_) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) return Want(SSL_get_error(ssl_, r));
    handshaken_ = true;
  }
  const int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(size, INT_MAX)));
  if (r > 0) {
    n = static_cast<size_t>(r);
    return Io::kData;
  }
  return Want(SSL_get_error(ssl_, r));
}

bool Conn::SendAll(std::string_view data, std::chrono::steady_clock::time_point deadline) {
  while (!data.empty()) {
    short wait = POLLOUT;
    if (ssl_) {
      ERR_clear_error();
      const int r = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), INT_MAX)));
      if (r > 0) {
        data.remove_prefix(static_cast<size_t>(r));
        continue;
      }
      const Io io = Want(SSL_get_error(ssl_, r));
      if (io != Io::kWantRead && io != Io::kWantWrite) return false;
      wait = io == Io::kWantRead ? POLLIN : POLLOUT;
    } else {
      const ssize_t r = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (r > 0) {
        data.remove_prefix(static_cast<size_t>(r));
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN) return false;
    }
    if (!Wait(fd_, wait, deadline)) return false;
  }
  return true;
}

void Conn::SendNow(std::string_view data) {
  if (!ssl_) {
    (void)!send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
  } else if (handshaken_) {
    ERR_clear_error();
    SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
    ERR_clear_error();
  }
}

}  // namespace vnet::http
