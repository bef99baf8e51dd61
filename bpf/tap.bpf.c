// SPDX-License-Identifier: GPL-2.0
/*
 * Latency of VM traffic through tap devices, per tap and queue:
 *   rx backlog: net_dev_start_xmit on a tap -> skb_copy_datagram_iovec (the backend reads it)
 *   tx transit: netif_rx / netif_receive_skb on a tap -> net_dev_start_xmit on another device
 *   rx transit: netif_rx / netif_receive_skb on a non-tap device -> net_dev_start_xmit on a tap
 * Packets are tracked by skb address from start to end; consume_skb / kfree_skb forget them, so
 * a freed and reused skb never meets its predecessor's start time. Tracepoints only: this runs
 * on kernels without kprobes.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tap.h"
#include "lib/hist.bpf.h"
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define VNET_ARPHRD_ETHER 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized from the config before load */
	__type(key, __u64);         /* skb address */
	__type(value, struct tap_inflight);
} tap_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096); /* resized from the config before load */
	__type(key, struct tap_hist_key);
	__type(value, struct hist);
} tap_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAP_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tap_stats SEC(".maps");

/* A tap: an Ethernet device made by the tun driver (rtnl kind "tun"; tun-mode devices are not Ethernet). */
static __always_inline bool is_tap(const struct net_device *dev)
{
	const struct rtnl_link_ops *ops;
	char kind[4];

	if (!dev || dev->type != VNET_ARPHRD_ETHER)
		return false;
	ops = dev->rtnl_link_ops;
	if (!ops || bpf_probe_read_kernel(kind, sizeof(kind), ops->kind))
		return false;
	return kind[0] == 't' && kind[1] == 'u' && kind[2] == 'n' && kind[3] == 0;
}

static __always_inline void add_sample(__u32 ifindex, __u32 netns, __u32 queue, __u32 dir, __u64 ns)
{
	static const struct hist zero;
	struct tap_hist_key key = {.ifindex = ifindex, .netns = netns, .queue = queue, .dir = dir};
	struct hist *h = lookup_or_init(&tap_hists, &key, &zero, &tap_stats, TAP_STAT_HIST_FULL);

	if (h)
		hist_add(h, ns);
}

static __always_inline void start(__u64 skb, const struct tap_inflight *f)
{
	if (bpf_map_update_elem(&tap_inflight, &skb, f, BPF_ANY))
		stat_inc(&tap_stats, TAP_STAT_INFLIGHT_FULL);
}

static __always_inline void received(struct sk_buff *skb)
{
	const struct net_device *dev = skb->dev;
	__u64 addr = (__u64)skb;
	struct tap_inflight *f, n = {};

	if (!dev)
		return;
	f = bpf_map_lookup_elem(&tap_inflight, &addr);
	/*
	 * Already on its way (netif_rx then netif_receive_skb, or forwarded through a veth into
	 * another namespace): the first arrival is the start.
	 */
	if (f && f->start != TAP_START_RING)
		return;
	n.ts = bpf_ktime_get_ns();
	if (is_tap(dev)) {
		n.start = TAP_START_TAP;
		n.ifindex = dev->ifindex;
		n.netns = dev->nd_net.net->ns.inum;
		/* tun records the queue it read from as rx queue + 1 (skb_record_rx_queue). */
		n.queue = skb->queue_mapping ? skb->queue_mapping - 1 : 0;
	} else {
		n.start = TAP_START_UPLINK;
	}
	if (f)
		stat_inc(&tap_stats, TAP_STAT_STALE);
	start(addr, &n);
}

SEC("tp_btf/netif_rx")
int BPF_PROG(tap_netif_rx, struct sk_buff *skb)
{
	received(skb);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tap_netif_receive_skb, struct sk_buff *skb)
{
	received(skb);
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tap_start_xmit, struct sk_buff *skb, struct net_device *dev)
{
	__u64 addr = (__u64)skb, now = bpf_ktime_get_ns();
	struct tap_inflight *f = bpf_map_lookup_elem(&tap_inflight, &addr);
	bool tap = is_tap(dev);

	if (f) {
		if (f->start == TAP_START_TAP && f->ifindex != dev->ifindex) {
			add_sample(f->ifindex, f->netns, f->queue, TAP_TX_TRANSIT, now - f->ts);
			if (!tap)
				bpf_map_delete_elem(&tap_inflight, &addr);
		} else if (f->start == TAP_START_UPLINK && tap) {
			add_sample(dev->ifindex, dev->nd_net.net->ns.inum, skb->queue_mapping, TAP_RX_TRANSIT,
				   now - f->ts);
		}
		/* An uplink packet sent on another non-tap device stays tracked: it may reach a
		 * tap after more hops (a veth into a namespace); its free forgets it. */
	}
	if (tap) {
		/* tun_net_xmit queues on the ring of queue skb->queue_mapping. */
		struct tap_inflight n = {
			.ts = now,
			.ifindex = dev->ifindex,
			.netns = dev->nd_net.net->ns.inum,
			.queue = skb->queue_mapping,
			.start = TAP_START_RING,
		};
		start(addr, &n);
	}
	return 0;
}

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tap_copy_datagram, struct sk_buff *skb)
{
	__u64 addr = (__u64)skb;
	struct tap_inflight *f = bpf_map_lookup_elem(&tap_inflight, &addr);
	const struct net_device *dev;

	if (!f || f->start != TAP_START_RING)
		return 0;
	/* The backend's read of the tap ring: the skb still names the tap it was queued on. */
	dev = skb->dev;
	if (dev && dev->ifindex == f->ifindex)
		add_sample(f->ifindex, f->netns, f->queue, TAP_RX_BACKLOG, bpf_ktime_get_ns() - f->ts);
	bpf_map_delete_elem(&tap_inflight, &addr);
	return 0;
}

SEC("tp_btf/consume_skb")
int BPF_PROG(tap_consume_skb, struct sk_buff *skb)
{
	__u64 addr = (__u64)skb;

	bpf_map_delete_elem(&tap_inflight, &addr);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tap_kfree_skb, struct sk_buff *skb)
{
	__u64 addr = (__u64)skb;

	bpf_map_delete_elem(&tap_inflight, &addr);
	return 0;
}
