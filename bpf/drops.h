/* Shared between bpf/drops.bpf.c and exporter/collectors/drops_collector.cpp. */
#ifndef VNET_BPF_DROPS_H
#define VNET_BPF_DROPS_H

#include "proto.h"

struct drop_key {
	__u64 location; /* kernel address that freed the skb */
	__u32 reason;   /* enum skb_drop_reason value of the running kernel, 0 when it has none */
	__u32 ifindex;  /* skb->dev, 0 when the skb had no device */
	__u32 netns;    /* inode of the device's network namespace, 0 when no device */
	__u32 protocol; /* enum vnet_proto */
};

struct drop_value {
	__u64 packets;
	__u64 bytes;
};

enum drop_stat {
	DROP_STAT_MAP_FULL,       /* drops not counted because the drops map was full */
	DROP_STAT_OTHER_MAP_FULL, /* the same for drops_other */
	DROP_STAT__MAX,
};

#endif
