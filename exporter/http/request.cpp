#include "http/request.h"

namespace vnet::http {

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

namespace {

// Visible characters only: a target or value with control bytes is refused, not passed on.
bool IsVisible(std::string_view s, bool spaces) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      if (!(spaces && c == '\t')) return false;
    } else if (c == ' ' && !spaces) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

const std::string* Request::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::optional<Request> ParseRequest(std::string_view head) {
  auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);

  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  Request r;
  r.method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  r.version = line.substr(sp2 + 1);
  if (!IsToken(r.method) || target.empty() || target.front() != '/' || !IsVisible(target, false) ||
      (r.version != "HTTP/1.1" && r.version != "HTTP/1.0")) {
    return std::nullopt;
  }
  r.path = target.substr(0, target.find('?'));

  while (!head.empty()) {
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    const auto colon = line.find(':');
    // No obsolete line folding: a name always starts the line.
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) return std::nullopt;
    std::string_view value = Trim(line.substr(colon + 1));
    if (!IsVisible(value, true)) return std::nullopt;
    r.headers.emplace_back(Lower(line.substr(0, colon)), value);
  }
  return r;
}

}  // namespace vnet::http
