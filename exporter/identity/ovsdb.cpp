#include "identity/ovsdb.h"

#include "net/jsonrpc.h"

namespace vnet::identity {
namespace {

using nlohmann::json;

// OVSDB encodes a set of one as the atom itself: ["uuid", "..."] or ["set", [["uuid", "..."], ...]].
std::vector<std::string> Uuids(const json& v) {
  std::vector<std::string> out;
  if (!v.is_array() || v.size() != 2) return out;
  if (v[0] == "uuid") {
    out.push_back(v[1].get<std::string>());
  } else if (v[0] == "set") {
    for (const auto& a : v[1]) {
      if (a.is_array() && a.size() == 2 && a[0] == "uuid") out.push_back(a[1].get<std::string>());
    }
  }
  return out;
}

std::map<std::string, std::string> Map(const json& v) {
  std::map<std::string, std::string> out;
  if (!v.is_array() || v.size() != 2 || v[0] != "map") return out;
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
  for (const auto& row : result[1].value("rows", json::array())) {
    std::string port = row.value("name", "");
    for (const auto& u : Uuids(row.value("_uuid", json()))) port_name[u] = port;
    for (const auto& u : Uuids(row.value("interfaces", json()))) iface_port[u] = port;
  }
  for (const auto& row : result[2].value("rows", json::array())) {
    for (const auto& u : Uuids(row.value("ports", json()))) port_bridge[port_name[u]] = row.value("name", "");
  }
  for (const auto& row : result[0].value("rows", json::array())) {
    std::string name = row.value("name", "");
    auto ids = Map(row.value("external_ids", json()));
    OvsInterface i{"", "", ids["iface-id"], ids["attached-mac"], ids["vm-uuid"], ids["iface-status"]};
    for (const auto& u : Uuids(row.value("_uuid", json()))) {
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
  return ParseOvsdbTables(net::JsonRpcCall(socket_, "transact", select, timeout_));
}

}  // namespace vnet::identity
