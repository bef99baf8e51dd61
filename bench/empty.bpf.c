// SPDX-License-Identifier: GPL-2.0
/*
 * The cheapest programs on the tracepoints the probes use: the baselines their costs are set
 * against (what a tracepoint with any program attached costs). The benchmarks attach each one
 * they need by itself.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_empty)
{
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(netif_receive_skb_empty)
{
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(start_xmit_empty)
{
	return 0;
}

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(copy_datagram_empty)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_empty)
{
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_empty)
{
	return 0;
}
