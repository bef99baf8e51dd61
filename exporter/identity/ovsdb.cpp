#include "identity/ovsdb.h"

#include "net/jsonrpc.h"

namespace vnet::identity {
namespace {

using nlohmann::json;

// The reply is ovsdb-server's to write: every access checks the type, a value of another type
// is absent.
std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

const json& Field(const json& row, const char* key) {
  static const json null;
  if (!row.is_object()) return null;
  auto it = row.find(key);
  return it == row.end() ? null : *it;
}

// The rows of the result of one select operation.
const json& Rows(const json& op) {
  static const json none = json::array();
  const json& rows = Field(op, "rows");
  return rows.is_array() ? rows : none;
}

// OVSDB encodes a set of one as the atom itself: ["uuid", "..."] or ["set", [["uuid", "..."], ...]].
std::vector<std::string> Uuids(const json& v) {
  std::vector<std::string> out;
  if (!v.is_array() || v.size() != 2) return out;
  if (v[0] == "uuid" && v[1].is_string()) {
    out.push_back(v[1].get<std::string>());
  } else if (v[0] == "set" && v[1].is_array()) {
    for (const auto& a : v[1]) {
      if (a.is_array() && a.size() == 2 && a[0] == "uuid" && a[1].is_string()) out.push_back(a[1].get<std::string>());
    }
  }
  return out;
}

std::map<std::string, std::string> Map(const json& v) {
  std::map<std::string, std::string> out;
  if (!v.is_array() || v.size() != 2 || v[0] != "map" || !v[1].is_array()) return out;
  for (const auto& kv : v[1]) {
    if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string()) out[kv[0]] = kv[1];
  }
  return out;
}

}  // namespace

std::map<std::string, OvsInterface> ParseOvsdbTables(const json& result) {
  std::map<std::string, OvsInterface> out;
  if (!result.is_array() || result.size() < 3) return out;
  std::map<std::string, std::string> iface_name;   // interface uuid -> name
  std::map<std::string, std::string> iface_port;   // interface uuid -> port name
  std::map<std::string, std::string> port_bridge;  // port name -> bridge name
  std::map<std::string, std::string> port_name;    // port uuid -> name
  for (const auto& row : Rows(result[1])) {
    std::string port = Str(Field(row, "name"));
    for (const auto& u : Uuids(Field(row, "_uuid"))) port_name[u] = port;
    for (const auto& u : Uuids(Field(row, "interfaces"))) iface_port[u] = port;
  }
  for (const auto& row : Rows(result[2])) {
    for (const auto& u : Uuids(Field(row, "ports"))) port_bridge[port_name[u]] = Str(Field(row, "name"));
  }
  for (const auto& row : Rows(result[0])) {
    std::string name = Str(Field(row, "name"));
    if (name.empty()) continue;
    auto ids = Map(Field(row, "external_ids"));
    OvsInterface i{"", "", ids["iface-id"], ids["attached-mac"], ids["vm-uuid"], ids["iface-status"]};
    for (const auto& u : Uuids(Field(row, "_uuid"))) {
      if (auto p = iface_port.find(u); p != iface_port.end()) {
        i.port = p->second;
        i.bridge = port_bridge[p->second];
      }
    }
    out[name] = i;
  }
  return out;
}

std::map<std::string, OvsInterface> Ovsdb::Read() const {
  json select = json::array({"Open_vSwitch"});
  select.push_back({{"op", "select"}, {"table", "Interface"}, {"where", json::array()},
                    {"columns", {"_uuid", "name", "external_ids"}}});
  select.push_back({{"op", "select"}, {"table", "Port"}, {"where", json::array()},
                    {"columns", {"_uuid", "name", "interfaces"}}});
  select.push_back({{"op", "select"}, {"table", "Bridge"}, {"where", json::array()},
                    {"columns", {"_uuid", "name", "ports"}}});
  return ParseOvsdbTables(net::JsonRpcCall(socket_, "transact", select, timeout_, max_reply_bytes_));
}

}  // namespace vnet::identity
