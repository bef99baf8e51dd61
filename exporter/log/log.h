// Plain line logging to stderr: "<time> <level> <message>".
#pragma once

#include <string>

namespace vnet::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void SetLevel(Level l);
Level GetLevel();
void Log(Level l, const std::string& msg);

}  // namespace vnet::log
