/* Latency histograms shared by the probes and the exporter. */
#ifndef VNET_BPF_HIST_H
#define VNET_BPF_HIST_H

/*
 * Slot i counts samples of at most 2^(i + HIST_SLOT0_EXP) seconds (and more than half that):
 * powers of two of the second, so the slots are exactly the buckets of Prometheus' native
 * histograms of schema 0 and the classic buckets' `le` bounds are the same. Slot 0 is <= 2^-20 s
 * (0.95 us), slot 20 <= 1 s; the last slot holds everything above 2^(HIST_SLOTS-2+HIST_SLOT0_EXP)
 * seconds (32 s).
 */
#define HIST_SLOTS 27
#define HIST_SLOT0_EXP (-20)

struct hist {
	__u64 slots[HIST_SLOTS];
	__u64 sum_ns;
};

#endif
