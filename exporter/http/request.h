// The head of an HTTP/1.x request, parsed from bytes any client may send.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vnet::http {

struct Request {
  std::string method;   // "GET"
  std::string path;     // the target without its query: "/metrics"
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case, values trimmed

  // The first header of that (lower-case) name, or nullptr.
  const std::string* Header(std::string_view name) const;
};

// RFC 9110 token: a method or header name.
bool IsToken(std::string_view s);

// `head` is everything before the empty line that ends a request head. nullopt when it is not a
// well-formed HTTP/1.0 or 1.1 request head in origin form ("GET /path?query HTTP/1.1").
std::optional<Request> ParseRequest(std::string_view head);

}  // namespace vnet::http
