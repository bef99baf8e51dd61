// SPDX-License-Identifier: GPL-2.0
/* Counts freed-not-consumed skbs by (reason, location, device, protocol) from skb:kfree_skb. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "drops.h"
#include "lib/maps.bpf.h"
#include "lib/skb.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* kfree_skb carries `enum skb_drop_reason` as its third argument (since 5.17); set before load. */
const volatile bool has_reason = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384); /* resized from the config before load */
	__type(key, struct drop_key);
	__type(value, struct drop_value);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} drop_stats SEC(".maps");

static __always_inline int count_drop(struct sk_buff *skb, void *location, __u32 reason)
{
	static const struct drop_value zero;
	struct drop_key key = {};
	struct drop_value *val;
	struct net_device *dev;

	/*
	 * kfree_skb_reason() routes SKB_CONSUMED (6.1+) to skb:consume_skb, but the tracepoint
	 * does not forbid it: keep consumed packets out whatever the caller did.
	 */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;

	key.location = (__u64)location;
	key.reason = reason;
	key.protocol = skb_proto(skb);
	dev = BPF_CORE_READ(skb, dev);
	if (dev) {
		key.ifindex = BPF_CORE_READ(dev, ifindex);
		key.netns = dev_netns(dev);
	}

	val = lookup_or_init(&drops, &key, &zero, &drop_stats, DROP_STAT_MAP_FULL);
	if (!val)
		return 0;
	val->packets++;
	val->bytes += BPF_CORE_READ(skb, len);
	return 0;
}

/* Preferred: typed arguments, lowest overhead (5.5+ with kernel BTF). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_btf, struct sk_buff *skb, void *location)
{
	/* ctx[2] is only read when it exists: the dead branch is pruned by the verifier. */
	return count_drop(skb, location, has_reason ? (__u32)ctx[2] : 0);
}

/* Fallback when tp_btf cannot attach: same arguments through the raw tracepoint (4.17+). */
SEC("raw_tp/kfree_skb")
int BPF_PROG(kfree_skb_raw, struct sk_buff *skb, void *location)
{
	return count_drop(skb, location, has_reason ? (__u32)ctx[2] : 0);
}
