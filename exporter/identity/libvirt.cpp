#include "identity/libvirt.h"

#include <sys/stat.h>
#include <tinyxml2.h>

#include <filesystem>
#include <stdexcept>

#include "io/file.h"
#include "log/log.h"

namespace vnet::identity {
namespace {

// Live domain XML is tens of kilobytes; a larger file is not libvirt's.

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
  if (doc.Parse(xml.c_str(), xml.size()) != tinyxml2::XML_SUCCESS) {
    throw std::runtime_error(std::string("not XML: ") + doc.ErrorStr());
  }
  const tinyxml2::XMLElement* domain = doc.RootElement();
  if (domain && std::string(domain->Name()) == "domstatus") domain = domain->FirstChildElement("domain");
  if (!domain || std::string(domain->Name()) != "domain") throw std::runtime_error("not a libvirt domain");
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
    File f{st.st_mtime, static_cast<long>(st.st_size), {}};
    try {
      f.interfaces = ParseDomainXml(io::ReadFile(path, max_file_bytes_));
    } catch (const io::FileError& e) {
      // Once per version of the file: it is kept (without interfaces) until it changes.
      log::Log(log::Level::kWarn, std::string("libvirt domain file skipped: ") + e.what());
    } catch (const std::exception& e) {
      log::Log(log::Level::kWarn, "libvirt domain file skipped: " + path + ": " + e.what());
    }
    seen[path] = std::move(f);
  }
  files_ = std::move(seen);  // files of domains that stopped are gone from here too
  for (const auto& [path, f] : files_) {
    for (const auto& [dev, v] : f.interfaces) out[dev] = v;
  }
  return true;
}

}  // namespace vnet::identity
