/* Protocol classes used as the `protocol` label; shared by all probes. */
#ifndef VNET_BPF_PROTO_H
#define VNET_BPF_PROTO_H

enum vnet_proto {
	VNET_PROTO_OTHER,
	VNET_PROTO_TCP,
	VNET_PROTO_UDP,
	VNET_PROTO_ICMP,
	VNET_PROTO_ICMPV6,
	VNET_PROTO_ARP,
	VNET_PROTO_OTHER_IPV4,
	VNET_PROTO_OTHER_IPV6,
	VNET_PROTO__MAX,
};

#endif
