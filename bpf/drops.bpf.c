// SPDX-License-Identifier: GPL-2.0
/* Counts freed-not-consumed skbs by (reason, location, device, protocol) from skb:kfree_skb. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "drops.h"
#include "lib/devices.bpf.h"
#include "lib/maps.bpf.h"
#include "lib/skb.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* kfree_skb carries `enum skb_drop_reason` as its third argument (since 5.17); set before load. */
const volatile bool has_reason = false;

/*
 * Inode of the exporter's own network namespace; set before load. Its drops, and drops of
 * packets without a device, go to `drops`; every other namespace's to `drops_other`. Anyone
 * may make namespaces and devices (user namespaces): they can fill drops_other, never drops.
 */
const volatile __u32 host_netns = 0;

/* Devices the filter leaves out: their drops are not counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXCLUDED_DEVICES_MAX);
	__type(key, struct device_id);
	__type(value, __u8);
} drops_excluded SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384); /* resized from the config before load */
	__type(key, struct drop_key);
	__type(value, struct drop_value);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096); /* resized from the config before load */
	__type(key, struct drop_key);
	__type(value, struct drop_value);
} drops_other SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} drop_stats SEC(".maps");

static __always_inline bool consumed(__u32 reason)
{
	/*
	 * kfree_skb_reason() routes SKB_CONSUMED (6.1+) to skb:consume_skb, but the tracepoint
	 * does not forbid it: keep consumed packets out whatever the caller did.
	 */
	return bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	       reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED);
}

static __always_inline void count_drop(const struct drop_key *key, __u32 len)
{
	static const struct drop_value zero;
	struct drop_value *val;

	if (key->ifindex && excluded(&drops_excluded, key->netns, key->ifindex))
		return;
	if (key->netns == 0 || key->netns == host_netns)
		val = lookup_or_init(&drops, key, &zero, &drop_stats, DROP_STAT_MAP_FULL);
	else
		val = lookup_or_init(&drops_other, key, &zero, &drop_stats, DROP_STAT_OTHER_MAP_FULL);

	if (!val)
		return;
	val->packets++;
	val->bytes += len;
}

/*
 * Preferred (5.5+ with kernel BTF): typed arguments whose fields are read as plain loads.
 * The two programs differ only in how they read the skb: direct loads here cost about half
 * of the probe reads raw_tp needs (bench/drops_bench).
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_btf, struct sk_buff *skb, void *location)
{
	/* ctx[2] is only read when it exists: the dead branch is pruned by the verifier. */
	__u32 reason = has_reason ? (__u32)ctx[2] : 0;
	struct drop_key key = {};
	struct net_device *dev;

	if (consumed(reason))
		return 0;
	key.location = (__u64)location;
	key.reason = reason;
	key.protocol = skb_proto(skb->protocol, skb->head, skb->network_header);
	dev = skb->dev;
	if (dev) {
		/* ifindexes are per network namespace: the namespace inode makes a device unique. */
		key.ifindex = dev->ifindex;
		key.netns = dev->nd_net.net->ns.inum;
	}
	count_drop(&key, skb->len);
	return 0;
}

/* Fallback when tp_btf cannot attach: the same arguments as untyped raw tracepoint (4.17+). */
SEC("raw_tp/kfree_skb")
int BPF_PROG(kfree_skb_raw, struct sk_buff *skb, void *location)
{
	__u32 reason = has_reason ? (__u32)ctx[2] : 0;
	struct drop_key key = {};
	struct net_device *dev;

	if (consumed(reason))
		return 0;
	key.location = (__u64)location;
	key.reason = reason;
	key.protocol = skb_proto(BPF_CORE_READ(skb, protocol), BPF_CORE_READ(skb, head),
				 BPF_CORE_READ(skb, network_header));
	dev = BPF_CORE_READ(skb, dev);
	if (dev) {
		key.ifindex = BPF_CORE_READ(dev, ifindex);
		key.netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	}
	count_drop(&key, BPF_CORE_READ(skb, len));
	return 0;
}
