/* sk_buff helpers shared by the probes (kernel side only). */
#ifndef VNET_BPF_LIB_SKB_H
#define VNET_BPF_LIB_SKB_H

#include "../proto.h"

#define VNET_ETH_P_IP 0x0800
#define VNET_ETH_P_ARP 0x0806
#define VNET_ETH_P_IPV6 0x86DD
#define VNET_IPPROTO_ICMP 1
#define VNET_IPPROTO_TCP 6
#define VNET_IPPROTO_UDP 17
#define VNET_IPPROTO_ICMPV6 58

/* The network header offset is ~0 while unset (since 5.x the field is a u16). */
#define VNET_HEADER_UNSET 0xffff

/*
 * Class of the packet for the `protocol` label, from skb->protocol, skb->head and
 * skb->network_header (read by the caller: directly under tp_btf, by probe reads under
 * raw_tp). For IPv6 only the first next-header is looked at: extension headers are rare on a
 * hypervisor datapath and walking them would cost a loop per drop; such packets count as
 * other-ipv6.
 */
static __always_inline __u32 skb_proto(__be16 protocol, unsigned char *head, __u16 nh)
{
	__u16 eth_proto = bpf_ntohs(protocol);
	__u8 l4 = 0;

	switch (eth_proto) {
	case VNET_ETH_P_ARP:
		return VNET_PROTO_ARP;
	case VNET_ETH_P_IP:
		if (nh == VNET_HEADER_UNSET ||
		    bpf_probe_read_kernel(&l4, 1, head + nh + offsetof(struct iphdr, protocol)))
			return VNET_PROTO_OTHER_IPV4;
		if (l4 == VNET_IPPROTO_TCP)
			return VNET_PROTO_TCP;
		if (l4 == VNET_IPPROTO_UDP)
			return VNET_PROTO_UDP;
		if (l4 == VNET_IPPROTO_ICMP)
			return VNET_PROTO_ICMP;
		return VNET_PROTO_OTHER_IPV4;
	case VNET_ETH_P_IPV6:
		if (nh == VNET_HEADER_UNSET ||
		    bpf_probe_read_kernel(&l4, 1, head + nh + offsetof(struct ipv6hdr, nexthdr)))
			return VNET_PROTO_OTHER_IPV6;
		if (l4 == VNET_IPPROTO_TCP)
			return VNET_PROTO_TCP;
		if (l4 == VNET_IPPROTO_UDP)
			return VNET_PROTO_UDP;
		if (l4 == VNET_IPPROTO_ICMPV6)
			return VNET_PROTO_ICMPV6;
		return VNET_PROTO_OTHER_IPV6;
	}
	return VNET_PROTO_OTHER;
}

#endif
