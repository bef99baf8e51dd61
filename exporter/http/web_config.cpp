#include "http/web_config.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "config/error.h"
#include "config/reader.h"
#include "http/request.h"
#include "io/file.h"

namespace vnet::http {
namespace {

// Set by the server itself: a second value would make the answer ambiguous.
bool OwnHeader(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* own : {"content-type", "content-length", "content-encoding", "connection", "vary",
                          "www-authenticate", "transfer-encoding"}) {
    if (name == own) return true;
  }
  return false;
}

// crypt(3) of `password` with the salt and cost of `hash`; "" when crypt refuses.
std::string Crypt(const std::string& password, const std::string& hash) {
  crypt_data data{};
  const char* out = crypt_r(password.c_str(), hash.c_str(), &data);
  return out && out[0] != '*' ? out : "";
}

std::string Sha256(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

const std::set<std::string> kClientAuthTypes = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                                 "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"};

std::shared_ptr<const TlsContext> ParseTls(const config::Reader& r, const std::string& config_path) {
  r.ExpectMap({"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
               "cipher_suites", "curve_preferences", "prefer_server_cipher_suites"});
  // Relative paths are relative to the web configuration file, as exporter-toolkit has them.
  const std::string dir = std::filesystem::path(config_path).parent_path().string();
  auto file = [&](const char* key) {
    auto c = r.Child(key);
    std::string f = c ? c->String() : "";
    return f.empty() || f[0] == '/' || dir.empty() ? f : dir + "/" + f;
  };
  TlsConfig t;
  t.cert_file = file("cert_file");
  t.key_file = file("key_file");
  t.client_ca_file = file("client_ca_file");
  if (t.cert_file.empty() || t.key_file.empty()) r.Fail("cert_file and key_file are both required");
  if (auto a = r.Child("client_auth_type")) {
    t.client_auth_type = a->String();
    if (!kClientAuthTypes.count(t.client_auth_type)) {
      a->Fail("expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or "
              "RequireAndVerifyClientCert");
    }
    if (t.client_auth_type.find("Verify") != std::string::npos && t.client_ca_file.empty()) {
      a->Fail("verifying client certificates needs client_ca_file");
    }
  } else if (!t.client_ca_file.empty()) {
    t.client_auth_type = "RequireAndVerifyClientCert";  // exporter-toolkit's default with a CA
  }
  for (auto [key, version] : {std::pair{"min_version", &t.min_version}, std::pair{"max_version", &t.max_version}}) {
    if (auto v = r.Child(key)) {
      *version = TlsVersion(v->String());
      if (!*version) v->Fail("expected TLS10, TLS11, TLS12 or TLS13");
    }
  }
  if (auto c = r.Child("cipher_suites")) {
    for (const auto& suite : c->StringList()) {
      if (CipherName(suite).empty()) c->Fail("unknown cipher suite " + suite);
      t.cipher_suites.push_back(suite);
    }
  }
  if (auto c = r.Child("curve_preferences")) {
    for (const auto& curve : c->StringList()) {
      if (CurveName(curve).empty()) c->Fail("unknown curve " + curve + " (CurveP256, CurveP384, CurveP521, X25519)");
      t.curves.push_back(CurveName(curve));
    }
  }
  if (auto p = r.Child("prefer_server_cipher_suites")) t.prefer_server_cipher_suites = p->Bool();
  // The files are loaded now: a bad certificate or key stops the exporter at start, named.
  try {
    return std::make_shared<const TlsContext>(t);
  } catch (const std::runtime_error& e) {
    r.Fail(e.what());
  }
}

}  // namespace

WebConfig LoadWebConfig(const std::string& path) {
  std::string text;
  try {
    text = io::ReadFile(path, 1 << 20);
  } catch (const io::FileError& e) {
    throw config::Error(e.what());
  }
  const config::Reader r(path, config::ParseYaml(text, path), "");
  WebConfig web;
  try {
    r.ExpectMap({"tls_server_config", "http_server_config", "basic_auth_users"});
    if (auto tls = r.Child("tls_server_config")) web.tls = ParseTls(*tls, path);
    if (auto server = r.Child("http_server_config")) {
      server->ExpectMap({"headers", "http2"});
      if (auto http2 = server->Child("http2")) http2->Bool();  // HTTP/1.1 only: accepted, as Go's servers do
      if (auto headers = server->Child("headers")) {
        for (const auto& [name, value] : headers->Entries()) {
          if (!IsToken(name)) value.Fail("not a header name");
          if (OwnHeader(name)) value.Fail("set by the exporter itself");
          const std::string v = value.String();
          if (v.find_first_of("\r\n") != std::string::npos) value.Fail("a header value is one line");
          web.headers.emplace_back(name, v);
        }
      }
    }
    if (auto users = r.Child("basic_auth_users")) {
      for (const auto& [user, hash] : users->Entries()) {
        const std::string h = hash.String();
        if (user.empty() || user.find(':') != std::string::npos) hash.Fail("a user name has no ':'");
        // bcrypt only, as exporter-toolkit: a fast hash would make stolen files easy to crack.
        if (h.rfind("$2", 0) != 0 || Crypt("", h).empty()) hash.Fail("expected a bcrypt hash ($2y$...)");
        web.basic_auth_users[user] = h;
      }
    }
  } catch (const YAML::Exception& e) {
    throw config::Error(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return web;
}

bool BasicAuth::Check(const std::string* authorization) const {
  if (users_.empty() || !authorization || authorization->rfind("Basic ", 0) != 0) return false;
  const std::string encoded = authorization->substr(6);
  if (encoded.size() > 4096 || encoded.size() % 4) return false;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(encoded.data()), static_cast<int>(encoded.size()));
  if (n < 0) return false;
  decoded.resize(n - (encoded.size() >= 1 && encoded.back() == '=') - (encoded.size() >= 2 && encoded[encoded.size() - 2] == '='));
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const std::string user = decoded.substr(0, colon), password = decoded.substr(colon + 1);
  const auto it = users_.find(user);
  // An unknown user costs a bcrypt too: the time of an answer does not tell which users exist.
  const std::string& hash = it != users_.end() ? it->second : users_.begin()->second;
  const std::string key = Sha256(user + '\0' + hash + '\0' + password);
  {
    std::lock_guard lock(mu_);
    if (it != users_.end() && passed_.count(key)) return true;
  }
  const std::string computed = Crypt(password, hash);
  const bool ok = it != users_.end() && !computed.empty() && computed.size() == hash.size() &&
                  CRYPTO_memcmp(computed.data(), hash.data(), hash.size()) == 0;
  if (ok) {
    std::lock_guard lock(mu_);
    passed_.insert(key);
  }
  return ok;
}

}  // namespace vnet::http
