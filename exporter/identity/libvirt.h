// VM identity from the live domain XML files libvirtd keeps for running QEMU domains
// (/run/libvirt/qemu/<name>.xml). Neither libvirt's client library nor a running libvirtd is
// needed: the files are read, and parsed again only when they change.
#pragma once

#include <ctime>
#include <map>
#include <string>

namespace vnet::identity {

struct VmInterface {
  std::string vm_name;
  std::string vm_uuid;
  std::string mac;       // the guest's MAC (<mac address=...>)
  std::string bridge;    // <source bridge=...>
  std::string iface_id;  // <virtualport type='openvswitch'><parameters interfaceid=...>
};

class Libvirt {
 public:
  // Files larger than `max_file_bytes` are skipped (logged once per version of the file).
  Libvirt(std::string dir, std::size_t max_file_bytes) : dir_(std::move(dir)), max_file_bytes_(max_file_bytes) {}

  // Interfaces of the running domains by target device name (vnet0, ...). False when the
  // directory cannot be read (no libvirt on this host).
  bool Read(std::map<std::string, VmInterface>& out);

 private:
  struct File {
    std::time_t mtime = 0;
    long size = 0;
    std::map<std::string, VmInterface> interfaces;
  };

  std::string dir_;
  std::size_t max_file_bytes_;
  std::map<std::string, File> files_;
};

// Parses one domain XML (live status <domstatus><domain> or plain <domain>); throws when it is
// not one. Exposed for tests.
std::map<std::string, VmInterface> ParseDomainXml(const std::string& xml);

}  // namespace vnet::identity
