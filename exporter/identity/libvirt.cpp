#include "identity/libvirt.h"

#include <sys/stat.h>
#include <tinyxml2.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace vnet::identity {
namespace {

std::string Attr(const tinyxml2::XMLElement* e, const char* child, const char* attr) {
  const tinyxml2::XMLElement* c = e ? e->FirstChildElement(child) : nullptr;
  const char* v = c ? c->Attribute(attr) : nullptr;
  return v ? v : "";
}

std::string Text(const tinyxml2::XMLElement* e, const char* child) {
  const tinyxml2::XMLElement* c = e ? e->FirstChildElement(child) : nullptr;
  const char* v = c ? c->GetText() : nullptr;
  return v ? v : "";
}

}  // namespace

std::map<std::string, VmInterface> ParseDomainXml(const std::string& xml) {
  std::map<std::string, VmInterface> out;
  tinyxml2::XMLDocument doc;
  if (doc.Parse(xml.c_str(), xml.size()) != tinyxml2::XML_SUCCESS) return out;
  const tinyxml2::XMLElement* domain = doc.RootElement();
  if (domain && std::string(domain->Name()) == "domstatus") domain = domain->FirstChildElement("domain");
  if (!domain || std::string(domain->Name()) != "domain") return out;
  const std::string name = Text(domain, "name"), uuid = Text(domain, "uuid");
  const tinyxml2::XMLElement* devices = domain->FirstChildElement("devices");
  for (auto* i = devices ? devices->FirstChildElement("interface") : nullptr; i; i = i->NextSiblingElement("interface")) {
    std::string dev = Attr(i, "target", "dev");
    if (dev.empty()) continue;  // not started, or no host device
    VmInterface v{name, uuid, Attr(i, "mac", "address"), Attr(i, "source", "bridge"), ""};
    const tinyxml2::XMLElement* vp = i->FirstChildElement("virtualport");
    if (vp) v.iface_id = Attr(vp, "parameters", "interfaceid");
    out[dev] = v;
  }
  return out;
}

bool Libvirt::Read(std::map<std::string, VmInterface>& out) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec) return false;
  std::map<std::string, File> seen;
  for (const auto& e : it) {
    const std::string path = e.path().string();
    if (e.path().extension() != ".xml") continue;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    auto old = files_.find(path);
    if (old != files_.end() && old->second.mtime == st.st_mtime && old->second.size == st.st_size) {
      seen[path] = std::move(old->second);
      continue;
    }
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    seen[path] = File{st.st_mtime, static_cast<long>(st.st_size), ParseDomainXml(ss.str())};
  }
  files_ = std::move(seen);  // files of domains that stopped are gone from here too
  for (const auto& [path, f] : files_) {
    for (const auto& [dev, v] : f.interfaces) out[dev] = v;
  }
  return true;
}

}  // namespace vnet::identity
