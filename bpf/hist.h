/* Latency histograms shared by the probes and the exporter. */
#ifndef VNET_BPF_HIST_H
#define VNET_BPF_HIST_H

/*
 * Slot i counts samples of at most 2^i microseconds (and more than 2^(i-1)): the slot's
 * index is its `le` bound. The last slot holds everything above 2^(HIST_SLOTS-2) us (~33 s).
 */
#define HIST_SLOTS 27

struct hist {
	__u64 slots[HIST_SLOTS];
	__u64 sum_ns;
};

#endif
