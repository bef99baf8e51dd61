// Interface identity from OVSDB: the Interface table's external_ids and the bridge and port each
// interface belongs to, read over ovsdb-server's JSON-RPC socket.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <string>

namespace vnet::identity {

struct OvsInterface {
  std::string bridge;
  std::string port;
  std::string iface_id;      // external_ids:iface-id
  std::string attached_mac;  // external_ids:attached-mac
  std::string vm_uuid;       // external_ids:vm-uuid
  std::string iface_status;  // external_ids:iface-status
};

// The reply of a transact selecting Interface, Port and Bridge (see Ovsdb::Read), by interface name.
std::map<std::string, OvsInterface> ParseOvsdbTables(const nlohmann::json& result);

class Ovsdb {
 public:
  Ovsdb(std::string socket, std::chrono::milliseconds timeout, std::size_t max_reply_bytes)
      : socket_(std::move(socket)), timeout_(timeout), max_reply_bytes_(max_reply_bytes) {}

  // Throws net::JsonRpcError when ovsdb-server cannot be asked.
  std::map<std::string, OvsInterface> Read() const;

  const std::string& socket() const { return socket_; }

 private:
  std::string socket_;
  std::chrono::milliseconds timeout_;
  std::size_t max_reply_bytes_;
};

}  // namespace vnet::identity
