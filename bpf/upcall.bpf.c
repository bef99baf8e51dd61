// SPDX-License-Identifier: GPL-2.0
/*
 * Open vSwitch kernel datapath upcalls: count per input device, command and result, and the
 * time until ovs-vswitchd sends the packet back for execution (OVS_PACKET_CMD_EXECUTE).
 *
 * ovs_dp_upcall() returns 0 or the error that made the datapath count the packet as lost: a
 * kprobe keeps its arguments and start time for the kretprobe that sees the result. The
 * execute side is a kprobe on ovs_packet_cmd_execute(). Only kprobes: fentry/fexit, raw_tp
 * and tp_btf on a module's function or tracepoint hold a reference to the module, so `rmmod
 * openvswitch` (an OVS upgrade's force-reload-kmod) would fail while the exporter runs; a
 * kprobe lets the module go (it is then gone, and the collector attaches again when the module
 * is back). The cost is a few hundred nanoseconds more per upcall than fentry, on a path that
 * takes microseconds.
 * openvswitch is a module: its types come from its own BTF (CO-RE against module BTF, 5.11+),
 * declared here with only the fields used.
 *
 * Anyone may make a datapath in a network namespace of their own (user namespaces): the
 * datapaths of the exporter's namespace have maps of their own, every other namespace's
 * share the *_other maps, so a flood elsewhere cannot blind the host.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "upcall.h"
#include "lib/hist.bpf.h"
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define OVS_PACKET_ATTR_PACKET 1 /* include/uapi/linux/openvswitch.h */
#define VNET_NLA_HDRLEN 4
#define OVSP_LOCAL 0 /* the datapath's own port, named after it */
#define VPORT_CHAIN_MAX 4 /* ports hashed to bucket 0 looked at; port 0 comes first in practice */

struct vport___vnet {
	struct net_device *dev;
	__u16 port_no;
	struct hlist_node dp_hash_node;
} __attribute__((preserve_access_index));

struct datapath___vnet {
	struct hlist_head *ports; /* DP_VPORT_HASH_BUCKETS buckets by port_no */
	possible_net_t net;
} __attribute__((preserve_access_index));

/* Inode of the exporter's own network namespace; set before load. */
const volatile __u32 host_netns = 0;

struct dp_upcall_info___vnet {
	__u8 cmd;
} __attribute__((preserve_access_index));

/* Datapaths of the exporter's namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096); /* resized from the config before load */
	__type(key, struct upcall_key);
	__type(value, struct upcall_count);
} upcall_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* resized from the config before load */
	__type(key, struct upcall_packet);
	__type(value, struct upcall_inflight);
} upcall_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, struct upcall_hist_key);
	__type(value, struct hist);
} upcall_hists SEC(".maps");

/* Datapaths of every other namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* resized from the config before load */
	__type(key, struct upcall_key);
	__type(value, struct upcall_count);
} upcall_counts_other SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* resized from the config before load */
	__type(key, struct upcall_packet);
	__type(value, struct upcall_inflight);
} upcall_inflight_other SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, struct upcall_hist_key);
	__type(value, struct hist);
} upcall_hists_other SEC(".maps");

/*
 * Executes that found no upcall in flight, and when: ovs-vswitchd may answer an upcall before
 * ovs_dp_upcall() has returned on the upcalling CPU (seen in an emulated guest whose
 * upcalling vCPU was descheduled), and the kretprobe then finds the answer here. Executes of
 * packets no upcall sent (ofproto/trace, packet-out) land here too: the least recent go first.
 * Other namespaces' datapaths have their own, so their executes cannot push the host's out.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, struct upcall_packet);
	__type(value, __u64);
} upcall_early SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, struct upcall_packet);
	__type(value, __u64);
} upcall_early_other SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, UPCALL_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} upcall_stats SEC(".maps");

/* The arguments of the ovs_dp_upcall() running on this CPU, from its kprobe to its
 * kretprobe (the datapath runs with bottom halves off: no migration, no nesting). */
struct upcall_args {
	struct datapath___vnet *dp;
	struct sk_buff *skb;
	struct dp_upcall_info___vnet *info;
	__u64 ts; /* at entry: the upcall's start */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct upcall_args);
} upcall_args SEC(".maps");

static __always_inline void datapath_name(struct datapath___vnet *dp, char *name)
{
	struct hlist_node *node = BPF_CORE_READ(dp, ports, first);

	for (int i = 0; i < VPORT_CHAIN_MAX && node; i++) {
		struct vport___vnet *vport =
			(void *)node - bpf_core_field_offset(struct vport___vnet, dp_hash_node);

		if (BPF_CORE_READ(vport, port_no) == OVSP_LOCAL) {
			bpf_probe_read_kernel_str(name, UPCALL_NAME_LEN, BPF_CORE_READ(vport, dev, name));
			return;
		}
		node = BPF_CORE_READ(node, next);
	}
}

/* The packet's identity: length and leading bytes from `data` (`avail` of them readable). */
static __always_inline bool packet_key(struct upcall_packet *k, __u32 len, const void *data, __u32 avail)
{
	__u32 n = len < UPCALL_HEAD ? len : UPCALL_HEAD;

	if (avail < n)
		return false;
	k->len = len;
	return bpf_probe_read_kernel(k->head, n, data) == 0;
}

/* An upcall of `datapath` answered after `ns`. */
static __always_inline void record(__u32 netns, const char *datapath, __u64 ns)
{
	static const struct hist zero;
	struct upcall_hist_key hk = {.netns = netns};
	bool host = netns == host_netns;
	struct hist *h;

	__builtin_memcpy(hk.datapath, datapath, sizeof(hk.datapath));
	h = lookup_or_init(host ? (void *)&upcall_hists : (void *)&upcall_hists_other, &hk, &zero, &upcall_stats,
			   (host ? 0 : UPCALL_STAT_OTHER) + UPCALL_STAT_HIST_FULL);
	if (h)
		hist_add(h, ns);
}

static __always_inline void account(struct datapath___vnet *dp, struct sk_buff *skb,
				    struct dp_upcall_info___vnet *info, int ret, __u64 start)
{
	static const struct upcall_count zero;
	struct upcall_key key = {};
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct upcall_count *c;
	__u32 netns = BPF_CORE_READ(dp, net.net, ns.inum);
	bool host = netns == host_netns;
	__u32 stats = host ? 0 : UPCALL_STAT_OTHER;

	key.ifindex = BPF_CORE_READ(dev, ifindex);
	key.netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	key.cmd = BPF_CORE_READ(info, cmd);
	key.err = ret < 0 ? -ret : 0;
	datapath_name(dp, key.datapath);
	c = lookup_or_init(host ? (void *)&upcall_counts : (void *)&upcall_counts_other, &key, &zero, &upcall_stats,
			   stats + UPCALL_STAT_COUNTS_FULL);
	if (c)
		c->packets++;
	if (ret)
		return;

	/* Queued to ovs-vswitchd: wait for its execute of the same packet. skb->data is the
	 * Ethernet header here, as in the copy ovs-vswitchd sends back. */
	struct upcall_packet pkt = {.netns = netns};
	struct upcall_inflight f = {.ts = start};
	void *inflight = host ? (void *)&upcall_inflight : (void *)&upcall_inflight_other;
	void *early = host ? (void *)&upcall_early : (void *)&upcall_early_other;
	__u32 len = BPF_CORE_READ(skb, len);
	__u64 *answered;

	if (!packet_key(&pkt, len, BPF_CORE_READ(skb, data), len - BPF_CORE_READ(skb, data_len)))
		return;
	answered = bpf_map_lookup_elem(early, &pkt);
	if (answered && *answered >= start) {
		record(netns, key.datapath, *answered - start);
		bpf_map_delete_elem(early, &pkt);
		return;
	}
	__builtin_memcpy(f.datapath, key.datapath, sizeof(f.datapath));
	if (bpf_map_lookup_elem(inflight, &pkt))
		stat_inc(&upcall_stats, stats + UPCALL_STAT_REPLACED);
	if (bpf_map_update_elem(inflight, &pkt, &f, BPF_ANY))
		stat_inc(&upcall_stats, stats + UPCALL_STAT_INFLIGHT_FULL);
}

static __always_inline void executed(struct genl_info *info)
{
	struct nlattr *a = NULL;
	/* The execute's namespace is the datapath's: ovs-vswitchd finds the datapath in its own. */
	__u32 netns = BPF_CORE_READ(info, _net.net, ns.inum);
	bool host = netns == host_netns;
	void *inflight = host ? (void *)&upcall_inflight : (void *)&upcall_inflight_other;
	void *early = host ? (void *)&upcall_early : (void *)&upcall_early_other;
	struct upcall_packet pkt = {.netns = netns};
	struct upcall_inflight *f;
	__u64 now = bpf_ktime_get_ns();
	__u32 len;

	bpf_probe_read_kernel(&a, sizeof(a), BPF_CORE_READ(info, attrs) + OVS_PACKET_ATTR_PACKET);
	if (!a)
		return;
	len = BPF_CORE_READ(a, nla_len) - VNET_NLA_HDRLEN;
	if (!packet_key(&pkt, len, (void *)a + VNET_NLA_HDRLEN, len))
		return;
	f = bpf_map_lookup_elem(inflight, &pkt);
	if (!f) {
		/* Its upcall has not returned yet, or it is not an upcall's answer. */
		bpf_map_update_elem(early, &pkt, &now, BPF_ANY);
		return;
	}
	record(netns, f->datapath, now - f->ts);
	bpf_map_delete_elem(inflight, &pkt);
}

static __always_inline void stash(struct datapath___vnet *dp, struct sk_buff *skb, struct dp_upcall_info___vnet *info)
{
	__u32 zero = 0;
	struct upcall_args *a = bpf_map_lookup_elem(&upcall_args, &zero);

	if (!a)
		return;
	a->dp = dp;
	a->skb = skb;
	a->info = info;
	a->ts = bpf_ktime_get_ns();
}

SEC("kprobe/ovs_dp_upcall")
int BPF_KPROBE(upcall_kprobe, struct datapath___vnet *dp, struct sk_buff *skb, void *key,
	       struct dp_upcall_info___vnet *info)
{
	stash(dp, skb, info);
	return 0;
}

SEC("kretprobe/ovs_dp_upcall")
int BPF_KRETPROBE(upcall_kretprobe, int ret)
{
	__u32 zero = 0;
	struct upcall_args *a = bpf_map_lookup_elem(&upcall_args, &zero);

	if (!a || !a->skb)
		return 0;
	account(a->dp, a->skb, a->info, ret, a->ts);
	a->skb = NULL;
	return 0;
}

SEC("kprobe/ovs_packet_cmd_execute")
int BPF_KPROBE(execute_kprobe, struct sk_buff *skb, struct genl_info *info)
{
	executed(info);
	return 0;
}
