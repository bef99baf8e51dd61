#include "http/web_config.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

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
    if (auto tls = r.Child("tls_server_config")) {
      tls->Fail("TLS is not supported yet: serve on 127.0.0.1 behind a TLS-terminating proxy");
    }
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
