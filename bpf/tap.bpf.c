// SPDX-License-Identifier: GPL-2.0
/*
 * Latency of VM traffic through tap devices, per tap and queue:
 *   rx backlog: net_dev_start_xmit on a tap -> skb_copy_datagram_iovec (the backend reads it)
 *   tx transit: netif_receive_skb on a tap -> net_dev_start_xmit on another device
 *   rx transit: netif_receive_skb on a non-tap device -> net_dev_start_xmit on a tap
 *
 * A packet is stamped in a slot chosen by its address (direct-mapped tables: no locks, no
 * inserts or deletes, a few loads for packets that never touch a tap). Frees are not watched:
 * the kernel frees packets on paths no tracepoint sees (GRO, TCP coalescing, NAPI caches), so
 * a stamp may outlive its packet. An end therefore only counts when its packet is provably
 * the one that set the stamp:
 *   - a transit end needs skb_iif set: the kernel sets it when it receives a packet and
 *     zeroes it in every new skb, so a packet made by the host at a reused address (a reply,
 *     a loopback segment) cannot inherit an old reception's stamp;
 *   - a backlog end is a read from the tap that queued the packet: every packet queued on a
 *     tap passes net_dev_start_xmit on it first, which replaces the slot's stamp.
 * Other matches are discarded and counted (TAP_STAT_IDENTITY).
 *
 * A clock read costs more than the rest of a program, so packets that cannot reach a tap or
 * end a transit are told apart before any: a frame received on another device is stamped only
 * when it is bridged (PACKET_OTHERHOST: addressed to another machine, a VM among them) and its
 * device has fed a tap before (feeder_ifindexes; the first such frame of a device only marks
 * its slot, and teaches the device when it reaches a tap, untimed), and an egress packet looks
 * for its stamp only when it came in through a tap (tap_ifindexes). A bridge of containers
 * with no VM on it never pays a clock read. A reception that stamps nothing still clears a
 * stamp left at its address.
 * Tracepoints only: this runs on kernels without kprobes.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tap.h"
#include "lib/devices.bpf.h"
#include "lib/hist.bpf.h"
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define VNET_ARPHRD_ETHER 1
#define VNET_PACKET_OTHERHOST 3
/* Packets between two hooks of one transit at once, host-wide: a transit lasts microseconds. */
#define TRANSIT_SLOTS 4096

/* Slots of tap_backlog minus one (a power of two minus one), set before load. */
const volatile __u32 backlog_mask = 65535;
/*
 * The exporter's network namespace (inode), set before load. Its taps' histograms go to
 * tap_hists, every other namespace's to tap_hists_other: anyone may make namespaces and taps
 * (user namespaces) and fill tap_hists_other, never tap_hists.
 */
const volatile __u32 host_netns = 0;
/* Histograms per tap queue, or one per tap (its queues summed); set before load. */
const volatile bool per_queue = false;
/* One packet in `sample_every` is timed, per direction and CPU; set before load. */
const volatile __u32 sample_every = 1;

/* Taps the filter leaves out: their samples are not recorded. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXCLUDED_DEVICES_MAX);
	__type(key, struct device_id);
	__type(value, __u8);
} tap_excluded SEC(".maps");

/*
 * The tun driver's rtnl_link_ops, learned from the first tap seen. User space clears it at
 * each scrape, so a tun module loaded again at another address is learned again.
 */
__u64 tun_ops;

/*
 * Bitmaps of ifindexes (modulo TAP_IFINDEX_BITS, in any namespace: a shared bit costs only a
 * needless lookup or clock read): taps that delivered packets (an egress packet received on
 * no such device cannot end a tx transit), and other devices whose bridged frames reached a
 * tap. User space clears each once a quarter full (devices come and go); a device is learned
 * again from its next packet.
 */
__u64 tap_ifindexes[TAP_IFINDEX_BITS / 64];
__u64 feeder_ifindexes[TAP_IFINDEX_BITS / 64];

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRANSIT_SLOTS);
	__type(key, __u32);
	__type(value, struct tap_stamp);
} tap_transit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536); /* resized from the config before load */
	__type(key, __u32);
	__type(value, struct tap_stamp);
} tap_backlog SEC(".maps");

/* Packets seen per direction and CPU, for sample_every. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAP_DIR__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tap_sampling SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096); /* resized from the config before load */
	__type(key, struct tap_hist_key);
	__type(value, struct tap_hists);
} tap_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* resized from the config before load */
	__type(key, struct tap_hist_key);
	__type(value, struct tap_hists);
} tap_hists_other SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAP_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tap_stats SEC(".maps");

/* A tap: an Ethernet device of the tun driver (rtnl kind "tun"; tun-mode devices are not Ethernet). */
static __always_inline bool is_tap(const struct net_device *dev)
{
	const struct rtnl_link_ops *ops;
	char kind[4];

	if (!dev)
		return false;
	ops = dev->rtnl_link_ops;
	if (!ops)
		return false;
	if ((__u64)ops != tun_ops) {
		/* There is one tun driver: once its ops are known, other ops are not a tap. */
		if (tun_ops || bpf_probe_read_kernel(kind, sizeof(kind), ops->kind) || kind[0] != 't' ||
		    kind[1] != 'u' || kind[2] != 'n' || kind[3] != 0)
			return false;
		tun_ops = (__u64)ops;
	}
	return dev->type == VNET_ARPHRD_ETHER;
}

/*
 * The slot of `skb` in a table of `mask` + 1 slots. The verifier forbids arithmetic on a
 * kernel pointer but (for programs allowed to see addresses) not the difference of two
 * pointers: the packet's distance to a fixed address is hashed instead of the address.
 */
static __always_inline struct tap_stamp *slot(void *table, __u32 mask, const struct sk_buff *skb)
{
	__u64 d = (__u64)skb - (__u64)&tun_ops;
	__u32 i = (__u32)((d * 0x9E3779B97F4A7C15ull) >> 32) & mask;

	return bpf_map_lookup_elem(table, &i);
}

/* The word of `bitmap` holding `ifindex`'s bit, and that bit. */
static __always_inline __u64 *bit_word(__u64 *bitmap, __u32 ifindex, __u64 *bit)
{
	*bit = 1ull << (ifindex & 63);
	return &bitmap[(ifindex / 64) % (TAP_IFINDEX_BITS / 64)];
}

static __always_inline bool seen(__u64 *bitmap, __u32 ifindex)
{
	__u64 bit, *w = bit_word(bitmap, ifindex, &bit);

	return *w & bit;
}

static __always_inline void learn(__u64 *bitmap, __u32 ifindex)
{
	__u64 bit, *w = bit_word(bitmap, ifindex, &bit);

	/* Not atomic (5.10 has no atomic or): a bit set at once by another CPU may be lost, and
	 * is set again by the device's next packet. */
	if (!(*w & bit))
		*w |= bit;
}

/* Whether this packet of direction `dir` is one to time. */
static __always_inline bool sampled(__u32 dir)
{
	__u64 *n;

	if (sample_every <= 1)
		return true;
	n = bpf_map_lookup_elem(&tap_sampling, &dir);
	return n && (*n)++ % sample_every == 0;
}

static __always_inline void add_sample(__u32 ifindex, __u32 netns, __u32 queue, __u32 dir, __u64 ns)
{
	static const struct tap_hists zero;
	struct tap_hist_key key = {.ifindex = ifindex, .netns = netns, .queue = per_queue ? queue : 0};
	struct tap_hists *h;

	if (dir >= TAP_DIR__MAX)
		return;
	if (excluded(&tap_excluded, netns, ifindex))
		return;
	if (netns == host_netns)
		h = lookup_or_init(&tap_hists, &key, &zero, &tap_stats, TAP_STAT_HIST_FULL);
	else
		h = lookup_or_init(&tap_hists_other, &key, &zero, &tap_stats, TAP_STAT_OTHER_HIST_FULL);

	if (h)
		hist_add(&h->dir[dir], ns);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tap_netif_receive_skb, struct sk_buff *skb)
{
	const struct net_device *dev = skb->dev;
	struct tap_stamp *s = slot(&tap_transit, TRANSIT_SLOTS - 1, skb);
	bool tap = is_tap(dev), stamp;

	if (!s || !dev)
		return 0;
	/*
	 * Received before (skb_iif is set by the reception that stamped it): the same packet
	 * again, on a bridge's own device or in another namespace. Its first arrival is the start.
	 */
	if (s->skb == (__u64)skb && (s->ts || s->start == TAP_START_LEARN) && skb->skb_iif)
		return 0;
	if (tap) {
		learn(tap_ifindexes, dev->ifindex);
		stamp = sampled(TAP_TX_TRANSIT);
	} else if (BPF_CORE_READ_BITFIELD(skb, pkt_type) != VNET_PACKET_OTHERHOST) {
		/* Packets for the host itself (PACKET_HOST) reach a VM only when routed: not timed. */
		stamp = false;
	} else if (!seen(feeder_ifindexes, dev->ifindex)) {
		s->skb = (__u64)skb;
		s->ts = 0;
		s->start = TAP_START_LEARN;
		s->ifindex = dev->ifindex;
		return 0;
	} else {
		stamp = sampled(TAP_RX_TRANSIT);
	}
	if (!stamp) {
		/* A packet at the address of a stamped one: that stamp is not its. */
		if (s->skb == (__u64)skb)
			s->skb = 0;
		return 0;
	}
	s->skb = (__u64)skb;
	s->ts = bpf_ktime_get_ns();
	if (tap) {
		s->start = TAP_START_TAP;
		s->ifindex = dev->ifindex;
		s->netns = dev->nd_net.net->ns.inum;
		/* tun records the queue it read from as rx queue + 1 (skb_record_rx_queue). */
		s->queue = skb->queue_mapping ? skb->queue_mapping - 1 : 0;
	} else {
		s->start = TAP_START_UPLINK;
	}
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tap_start_xmit, struct sk_buff *skb, struct net_device *dev)
{
	struct tap_stamp *s = NULL, *r;
	bool tap = is_tap(dev);
	__u64 now = 0;

	/* Only a packet that came in through a tap (tx) or goes out to one (rx) ends a transit. */
	if (tap || (skb->skb_iif && seen(tap_ifindexes, skb->skb_iif)))
		s = slot(&tap_transit, TRANSIT_SLOTS - 1, skb);
	if (s && s->skb == (__u64)skb && s->start == TAP_START_LEARN) {
		/* Received (skb_iif: not a packet of the host's at that address) and reaching a tap. */
		if (tap && skb->skb_iif)
			learn(feeder_ifindexes, s->ifindex);
	} else if (s && s->skb == (__u64)skb && s->ts) {
		bool tx = s->start == TAP_START_TAP && s->ifindex != dev->ifindex;
		bool rx = s->start == TAP_START_UPLINK && tap;

		if ((tx || rx) && !skb->skb_iif) {
			/* Made by the host at the address of a packet it received before. */
			stat_inc(&tap_stats, TAP_STAT_IDENTITY);
			s->ts = 0;
		} else if (tx || rx) {
			now = bpf_ktime_get_ns();
			if (tx)
				add_sample(s->ifindex, s->netns, s->queue, TAP_TX_TRANSIT, now - s->ts);
			else
				add_sample(dev->ifindex, dev->nd_net.net->ns.inum, skb->queue_mapping, TAP_RX_TRANSIT,
					   now - s->ts);
			s->ts = 0;
		}
		/* An uplink packet sent on a non-tap device keeps its stamp: it may reach a tap after
		 * more hops (a veth into a namespace with a bridge). */
	}
	if (!tap)
		return 0;
	/* tun_net_xmit queues it on the ring of queue skb->queue_mapping. */
	r = slot(&tap_backlog, backlog_mask, skb);
	if (!r)
		return 0;
	r->skb = (__u64)skb;
	/* Not sampled: a read of it is neither a sample nor an eviction (ts 0, as once read). */
	if (!sampled(TAP_RX_BACKLOG)) {
		r->ts = 0;
		return 0;
	}
	r->ts = now ?: bpf_ktime_get_ns();
	r->ifindex = dev->ifindex;
	r->netns = dev->nd_net.net->ns.inum;
	r->queue = skb->queue_mapping;
	return 0;
}

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tap_copy_datagram, struct sk_buff *skb)
{
	const struct net_device *dev;
	struct tap_stamp *r;

	/*
	 * Packets read from a socket belong to it (skb->sk); tun orphans what it queues. That
	 * test comes first: sockets reuse skb->dev for their own data (UDP's dev_scratch).
	 */
	if (skb->sk)
		return 0;
	/* The backend's read of the tap ring: the skb still names the tap it was queued on. */
	dev = skb->dev;
	if (!is_tap(dev))
		return 0;
	r = slot(&tap_backlog, backlog_mask, skb);
	if (!r)
		return 0;
	/* ts is 0 when the packet was not sampled (its other fields are another packet's), or
	 * for the second copy of one read (tun copies a VLAN tag apart). */
	if (r->skb == (__u64)skb && !r->ts)
		return 0;
	if (r->skb != (__u64)skb || r->ifindex != dev->ifindex) {
		stat_inc(&tap_stats, TAP_STAT_EVICTED);
		return 0;
	}
	add_sample(r->ifindex, r->netns, r->queue, TAP_RX_BACKLOG, bpf_ktime_get_ns() - r->ts);
	r->ts = 0;
	return 0;
}
