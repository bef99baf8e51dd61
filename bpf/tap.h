/* Shared between bpf/tap.bpf.c and exporter/collectors/tap_collector.cpp. */
#ifndef VNET_BPF_TAP_H
#define VNET_BPF_TAP_H

#include "hist.h"

/* Which latency a histogram holds. */
enum tap_dir {
	TAP_RX_BACKLOG, /* host -> guest: handed to the tap until the VM's backend reads it */
	TAP_TX_TRANSIT, /* guest -> host: received from the backend until sent on an egress device */
	TAP_RX_TRANSIT, /* uplink -> guest: arrived on a non-tap device until handed to the tap */
	TAP_DIR__MAX,
};

struct tap_hist_key {
	__u32 ifindex; /* the tap */
	__u32 netns;   /* inode of the tap's network namespace */
	__u32 queue;   /* tap queue */
	__u32 dir;     /* enum tap_dir */
};

enum tap_stat {
	TAP_STAT_INFLIGHT_FULL, /* packets not timed: the in-flight map was full */
	TAP_STAT_HIST_FULL,     /* samples lost: the histogram map was full */
	TAP_STAT_STALE,         /* in-flight entries replaced by another packet at the same address */
	TAP_STAT__MAX,
};

/* Where a packet in flight was first seen (kernel only, but kept here beside its users). */
enum tap_start {
	TAP_START_RING,   /* handed to a tap: waits in the ring for the backend */
	TAP_START_TAP,    /* received from a tap's backend */
	TAP_START_UPLINK, /* received on a non-tap device */
};

struct tap_inflight {
	__u64 ts;      /* bpf_ktime_get_ns() at the start */
	__u32 ifindex; /* the tap, for RING and TAP starts */
	__u32 netns;
	__u32 queue;
	__u32 start;   /* enum tap_start */
};

#endif
