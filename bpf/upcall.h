/* Shared between bpf/upcall.bpf.c and exporter/collectors/upcall_collector.cpp. */
#ifndef VNET_BPF_UPCALL_H
#define VNET_BPF_UPCALL_H

#include "hist.h"

#define UPCALL_NAME_LEN 16 /* IFNAMSIZ */
/* Leading packet bytes that, with the length, tell packets in flight apart (headers up to TCP ports). */
#define UPCALL_HEAD 64

/* Upcalls per input device, datapath, command and result. */
struct upcall_key {
	__u32 ifindex;                   /* device the packet came in on (skb->dev at the upcall) */
	__u32 netns;                     /* inode of its network namespace */
	char datapath[UPCALL_NAME_LEN];  /* the datapath's local port name, "ovs-system" */
	__u32 cmd;                       /* OVS_PACKET_CMD_MISS, OVS_PACKET_CMD_ACTION */
	__u32 err;                       /* 0, or the errno of a failed upcall (positive) */
};

struct upcall_count {
	__u64 packets;
};

struct upcall_hist_key {
	char datapath[UPCALL_NAME_LEN];
	__u32 netns; /* inode of the datapath's network namespace */
};

/* A packet between its upcall and ovs-vswitchd's OVS_PACKET_CMD_EXECUTE of it: the execute
 * carries a copy, not the skb, so the packet is known by its length and leading bytes. */
struct upcall_packet {
	__u32 len;
	__u32 netns; /* the datapath's: namespaces never answer each other's upcalls */
	__u8 head[UPCALL_HEAD]; /* zero past len */
};

struct upcall_inflight {
	__u64 ts; /* bpf_ktime_get_ns() when the upcall was queued */
	char datapath[UPCALL_NAME_LEN];
};

/* Of the maps of datapaths in the exporter's namespace; the same follow for the *_other maps. */
enum upcall_stat {
	UPCALL_STAT_INFLIGHT_FULL, /* upcalls not timed: the in-flight map was full */
	UPCALL_STAT_COUNTS_FULL,   /* upcalls not counted: the count map was full */
	UPCALL_STAT_HIST_FULL,     /* samples lost: the histogram map was full */
	UPCALL_STAT_REPLACED,      /* an identical packet was still in flight: timed once */
	UPCALL_STAT_OTHER,         /* offset of the *_other maps' stats */
	UPCALL_STAT__MAX = 2 * UPCALL_STAT_OTHER,
};

#endif
