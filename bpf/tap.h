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
};

/*
 * The histograms of a tap (or tap queue), by enum tap_dir: one map entry for the three, as the
 * kernel's read of a map costs per entry (12,000 per-CPU entries of one histogram: 10.5 ms here;
 * 4,000 of three: 3.6 ms).
 */
struct tap_hists {
	struct hist dir[TAP_DIR__MAX];
};

enum tap_stat {
	TAP_STAT_HIST_FULL,       /* samples lost: the histogram map was full */
	TAP_STAT_OTHER_HIST_FULL, /* the same for tap_hists_other */
	TAP_STAT_EVICTED,   /* tap reads without their stamp: another packet took its slot */
	TAP_STAT_IDENTITY,  /* ends whose packet was not the one that set the stamp: not recorded */
	TAP_STAT__MAX,
};

/* Where a transit started (kernel only, but kept here beside its users). */
enum tap_start {
	TAP_START_TAP,    /* received from a tap's backend */
	TAP_START_UPLINK, /* received on a non-tap device */
	TAP_START_LEARN,  /* received on a device not yet seen feeding a tap: not timed */
};

/* A slot of the stamp tables: the packet that last set it and when. */
struct tap_stamp {
	__u64 skb;     /* the packet's address */
	__u64 ts;      /* bpf_ktime_get_ns() at the start; 0 once the sample is taken */
	__u32 ifindex; /* the tap: the one it was queued on (backlog), received from (TAP start) */
	__u32 netns;
	__u16 queue;
	__u16 start;   /* enum tap_start, transits only */
	__u32 pad;
};

#define TAP_IFINDEX_BITS 4096 /* size of the programs' bitmaps of devices by ifindex */

#endif
