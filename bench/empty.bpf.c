// SPDX-License-Identifier: GPL-2.0
/* The cheapest program on skb:kfree_skb: the baseline the drops program's cost is set against. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_empty)
{
	return 0;
}
