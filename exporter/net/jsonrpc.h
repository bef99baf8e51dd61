// One JSON-RPC 1.0 call over a unix socket (OVSDB, ovs-vswitchd's unixctl), with a deadline.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

namespace vnet::net {

class JsonRpcError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Sends {"method", "params", "id": 0} to the socket at `path` and returns the reply's "result".
// Throws JsonRpcError when the socket cannot be reached, the reply carries an error, is not a
// JSON object, is larger than `max_bytes` or nested deeper than 64, or no whole reply came
// within `timeout` (a stuck or flooding daemon must not hold a scrape).
nlohmann::json JsonRpcCall(const std::string& path, const std::string& method, const nlohmann::json& params,
                           std::chrono::milliseconds timeout, std::size_t max_bytes = 16 << 20);

}  // namespace vnet::net
