// SPDX-License-Identifier: GPL-2.0
/*
 * CPU scheduling of the threads a VM's network depends on: for each thread the exporter
 * tracks (qemu's vCPUs, main loop and I/O threads, vhost workers, ovs-vswitchd's handlers and
 * revalidators), the wait from becoming runnable (woken, or preempted while runnable) to
 * running, and the time it ran.
 *
 * These hooks run at every context switch of the host: a thread that is not tracked costs one
 * bit test in an array (whose lookups the verifier inlines: a hash lookup of the id cost 40-60 ns
 * here, bench/sched_bench), and the clock is read only for a tracked one. Threads are tracked once the
 * exporter has found them (by name, after they ran): the first wait of a new thread is not
 * seen, hence no sched_wakeup_new program.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sched.h"
#include "lib/hist.bpf.h"
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define VNET_TASK_RUNNING 0

/* task_struct::state before 5.14 renamed it __state (2f064a59a11f). */
struct task_struct___o {
	volatile long state;
} __attribute__((preserve_access_index));

/* Bit (tid % 64) of word tid / 64 is set while sched_threads holds the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SCHED_TID_LIMIT / 64);
	__type(key, __u32);
	__type(value, __u64);
} sched_tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* resized from the config before load */
	__type(key, __u32);
	__type(value, struct sched_thread);
} sched_threads SEC(".maps");

/* Shared by all CPUs, updated atomically: its size does not grow with the CPU count, and one
 * process's threads rarely switch on several CPUs in the same instant. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* resized from the config before load */
	__type(key, struct sched_key);
	__type(value, struct sched_stats);
} sched_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCHED_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} sched_stat SEC(".maps");

static __always_inline struct sched_thread *tracked(__u32 tid)
{
	__u32 word = tid / 64;
	__u64 *bits = bpf_map_lookup_elem(&sched_tracked, &word);

	if (!bits || !((*bits >> (tid % 64)) & 1))
		return NULL;
	return bpf_map_lookup_elem(&sched_threads, &tid);
}

static __always_inline bool still_runnable(bool preempt, struct task_struct *prev)
{
	/* A preempted task stays on its run queue whatever its state says (it may have been on its
	 * way to sleep). */
	if (preempt)
		return true;
	if (bpf_core_field_exists(prev->__state))
		return BPF_CORE_READ(prev, __state) == VNET_TASK_RUNNING;
	return BPF_CORE_READ((struct task_struct___o *)prev, state) == VNET_TASK_RUNNING;
}

static __always_inline struct sched_stats *stats_of(struct sched_thread *t)
{
	static const struct sched_stats zero;
	struct sched_key key = {.pid = t->pid, .kind = t->kind};

	return lookup_or_init(&sched_stats, &key, &zero, &sched_stat, SCHED_STAT_STATS_FULL);
}

static __always_inline void switched(bool preempt, struct task_struct *prev, __u32 prev_tid, __u32 next_tid)
{
	struct sched_thread *t = tracked(prev_tid);
	struct sched_stats *s;
	__u64 now = 0;

	if (t) {
		now = bpf_ktime_get_ns();
		if (t->running_at) {
			s = stats_of(t);
			if (s)
				__sync_fetch_and_add(&s->run_ns, now - t->running_at);
			t->running_at = 0;
		}
		t->queued_at = still_runnable(preempt, prev) ? now : 0;
	}
	t = tracked(next_tid);
	if (!t)
		return;
	if (!now)
		now = bpf_ktime_get_ns();
	if (t->queued_at) {
		s = stats_of(t);
		if (s)
			hist_add_atomic(&s->delay, now - t->queued_at);
		t->queued_at = 0;
	}
	t->running_at = now;
}

static __always_inline void woken(__u32 tid)
{
	struct sched_thread *t = tracked(tid);

	/* Already waiting (a second wakeup changes nothing) or the wakeup of a thread that had not
	 * left its CPU yet: its switch-out stamps it again. */
	if (t && !t->queued_at)
		t->queued_at = bpf_ktime_get_ns();
}

/* Preferred (5.5+ with kernel BTF): the task's id read as a plain load. */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switched(preempt, prev, prev->pid, next->pid);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	woken(p->pid);
	return 0;
}

/* Fallback when tp_btf cannot attach: the same arguments as untyped raw tracepoints (4.17+). */
SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switched(preempt, prev, BPF_CORE_READ(prev, pid), BPF_CORE_READ(next, pid));
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	woken(BPF_CORE_READ(p, pid));
	return 0;
}
