// Sample inputs as the real daemons and files give them: the unit tests' fixtures and the
// fuzz tests' seeds.
#pragma once

namespace vnet::testing {

// As libvirtd writes /run/libvirt/qemu/<name>.xml for a running domain (abridged).
inline const char* kDomstatus = R"(<domstatus state='running' reason='booted' pid='4242'>
  <monitor path='/var/lib/libvirt/qemu/domain-1-web1/monitor.sock' type='unix'/>
  <domain type='kvm' id='1'>
    <name>web1</name>
    <uuid>6f1c8a2e-1b7d-4e0a-9d1a-3c2b1a0f9e8d</uuid>
    <devices>
      <interface type='bridge'>
        <mac address='52:54:00:12:34:56'/>
        <source bridge='br-int'/>
        <virtualport type='openvswitch'>
          <parameters interfaceid='0c7d0f7e-2b4a-4d7e-8f0e-111111111111'/>
        </virtualport>
        <target dev='vnet3'/>
        <model type='virtio'/>
      </interface>
      <interface type='bridge'>
        <mac address='52:54:00:ab:cd:ef'/>
        <source bridge='br0'/>
        <target dev='vnet4'/>
      </interface>
      <interface type='network'>
        <mac address='52:54:00:00:00:01'/>
        <source network='default'/>
      </interface>
    </devices>
  </domain>
</domstatus>
)";

// ovs-vswitchd's unixctl replies (dpctl/show, upcall/show, coverage/show) of OVS 3.1.
inline const char* kDpctlShow = R"(system@ovs-system:
  lookups: hit:1523 missed:42 lost:7
  flows: 12
  masks: hit:2871 total:3 hit/pkt:1.83
  cache: hit:1320 hit-rate:84.37%
  caches:
    masks-cache: size:256
  port 0: ovs-system (internal)
  port 1: br-int (internal)
  port 2: vnet3
netdev@ovs-netdev:
  lookups: hit:5 missed:9 lost:0
  flows: 9
  port 0: ovs-netdev (tap)
  port 1: brt (tap)
)";

inline const char* kUpcallShow = R"(system@ovs-system:
  flows         : (current 12) (avg 10) (max 40) (limit 200000)
  dump duration : 3ms
  ufid enabled : true

  4: (keys 6)
  5: (keys 6)
netdev@ovs-netdev:
  flows         : (current 9) (avg 5) (max 7) (limit 10000)
  dump duration : 1ms
  ufid enabled : true

  5: (keys 9)
)";

inline const char* kCoverageShow = R"(Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=8d83e781:
bridge_reconfigure         0.0/sec     0.000/sec        0.0000/sec   total: 5
upcall_flow_limit_hit      0.2/sec     0.050/sec        0.0008/sec   total: 3
netlink_overflow           0.0/sec     0.000/sec        0.0003/sec   total: 1
drop_action_of_pipeline    0.0/sec     0.000/sec        0.0006/sec   total: 2
112 events never hit
)";

// The result of the OVSDB transact the interface collector sends (Interface, Port, Bridge).
inline const char* kOvsdbTables = R"([
    {"rows": [
      {"_uuid": ["uuid", "i1"], "name": "vnet3",
       "external_ids": ["map", [["attached-mac", "52:54:00:12:34:56"], ["iface-id", "port-1"],
                                ["iface-status", "active"], ["vm-uuid", "6f1c8a2e"]]]},
      {"_uuid": ["uuid", "i2"], "name": "br-int", "external_ids": ["map", []]}]},
    {"rows": [
      {"_uuid": ["uuid", "p1"], "name": "vnet3", "interfaces": ["uuid", "i1"]},
      {"_uuid": ["uuid", "p2"], "name": "br-int", "interfaces": ["set", [["uuid", "i2"]]]}]},
    {"rows": [{"_uuid": ["uuid", "b1"], "name": "br-int", "ports": ["set", [["uuid", "p1"], ["uuid", "p2"]]]}]}
  ])";

}  // namespace vnet::testing
