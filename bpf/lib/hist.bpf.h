/* Histogram helpers (kernel side only). */
#ifndef VNET_BPF_LIB_HIST_H
#define VNET_BPF_LIB_HIST_H

#include "../hist.h"

/* ceil(log2(v)) for v >= 1, without loops: the slot whose bound 2^i is the first >= v. */
static __always_inline __u32 log2_ceil(__u64 v)
{
	__u32 r = 0, shift;

	if (v <= 1)
		return 0;
	v--;
	shift = (v > 0xFFFFFFFF) << 5; v >>= shift; r = shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r + 1;
}

static __always_inline __u64 hist_slot(__u64 ns)
{
	/* A 64-bit index, clamped right before use: 5.10's verifier loses the bound of a 32-bit
	 * one once it is widened for the address computation. */
	__u64 slot;

	if (ns >= 1ULL << 40) /* ~18 minutes: in the last slot, and ns << 20 would overflow */
		return HIST_SLOTS - 1;
	/* In units of 2^HIST_SLOT0_EXP (2^-20) seconds, rounded up. */
	slot = log2_ceil(((ns << 20) + 999999999) / 1000000000);
	return slot < HIST_SLOTS ? slot : HIST_SLOTS - 1;
}

/* For a per-CPU value. */
static __always_inline void hist_add(struct hist *h, __u64 ns)
{
	h->slots[hist_slot(ns)]++;
	h->sum_ns += ns;
}

/* For a value every CPU writes. */
static __always_inline void hist_add_atomic(struct hist *h, __u64 ns)
{
	__sync_fetch_and_add(&h->slots[hist_slot(ns)], 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
}

#endif
