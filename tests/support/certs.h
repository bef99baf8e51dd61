// Certificates made for a test by the openssl command, in a directory of its own: a CA, a
// server certificate for 127.0.0.1 and localhost signed by it, a client certificate signed by it,
// and a self-signed client certificate no one trusts. Valid for two days.
#pragma once

#include <string>

#include "fixtures.h"
#include "netns.h"

namespace vnet::testing {

class TestCerts {
 public:
  TestCerts() {
    const std::string d = dir_.path().string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    dir_.Write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    dir_.Write("client.ext", "extendedKeyUsage=clientAuth\n");
    Sh("cd " + d + " && openssl req -x509 " + key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=vnet-test-ca 2>/dev/null"
       " && openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null"
       " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext"
       " -out server.pem 2>/dev/null"
       " && openssl req " + key + " -keyout client.key -out client.csr -subj /CN=prometheus 2>/dev/null"
       " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext"
       " -out client.pem 2>/dev/null"
       " && openssl req -x509 " + key + " -keyout rogue.key -out rogue.pem -days 2 -subj /CN=prometheus 2>/dev/null");
  }
  // ca.pem, server.pem/.key, client.pem/.key, rogue.pem/.key.
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
};

}  // namespace vnet::testing
