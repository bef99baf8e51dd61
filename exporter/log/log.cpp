#include "log/log.h"

#include <atomic>
#include <cstdio>
#include <ctime>

namespace vnet::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
}

void SetLevel(Level l) { g_level = l; }
Level GetLevel() { return g_level; }

void Log(Level l, const std::string& msg) {
  if (l < g_level) return;
  static const char* names[] = {"debug", "info", "warn", "error"};
  char ts[32];
  std::time_t now = std::time(nullptr);
  struct tm tm;  // gmtime_r: several threads log
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s %s %s\n", ts, names[static_cast<int>(l)], msg.c_str());
}

}  // namespace vnet::log
