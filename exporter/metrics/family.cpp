#include "metrics/family.h"

namespace vnet::metrics {
namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
std::size_t SequenceAt(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; k++) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// The length of the valid UTF-8 at the start of `s`.
std::size_t ValidPrefix(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {  // the common case: ASCII
      i++;
      continue;
    }
    const std::size_t n = SequenceAt(s, i);
    if (n == 0) break;
    i += n;
  }
  return i;
}

}  // namespace

bool IsValidUtf8(std::string_view s) { return ValidPrefix(s) == s.size(); }

std::string ValidUtf8(std::string_view s) {
  std::size_t i = ValidPrefix(s);
  if (i == s.size()) return std::string(s);  // the common case
  std::string out(s.substr(0, i));
  while (i < s.size()) {
    const std::size_t n = SequenceAt(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i++;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace vnet::metrics
