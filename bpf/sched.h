/* Shared between bpf/sched.bpf.c and exporter/collectors/sched_collector.cpp. */
#ifndef VNET_BPF_SCHED_H
#define VNET_BPF_SCHED_H

#include "hist.h"

/* What a tracked thread does for its process. */
enum sched_thread_kind {
	SCHED_VCPU,        /* qemu's "CPU n/KVM" (or /TCG) */
	SCHED_VHOST,       /* vhost-<qemu pid>: a kernel thread before 6.4, a thread of qemu since */
	SCHED_MAIN,        /* qemu's main loop (the thread whose id is the process id) */
	SCHED_IOTHREAD,    /* qemu's "IO <id>" */
	SCHED_HANDLER,     /* ovs-vswitchd's handler<n>: answers upcalls */
	SCHED_REVALIDATOR, /* ovs-vswitchd's revalidator<n> */
	SCHED_THREAD_KIND__MAX,
};

/* Thread ids are below PID_MAX_LIMIT (4M on 64-bit): a bit each in sched_tracked, 512 KiB. */
#define SCHED_TID_LIMIT (4 * 1024 * 1024)

/* A tracked thread, by thread id: written by the exporter, timestamps by the probe. */
struct sched_thread {
	__u64 queued_at;  /* bpf_ktime_get_ns() when it became runnable; 0: not waiting */
	__u64 running_at; /* when it got the CPU; 0: not running (or not seen running yet) */
	__u32 pid;        /* its process (qemu, ovs-vswitchd, or the qemu a vhost kernel thread serves) */
	__u32 kind;       /* enum sched_thread_kind */
};

/* Of the threads of one process and kind. */
struct sched_key {
	__u32 pid;
	__u32 kind;
};

struct sched_stats {
	struct hist delay; /* from runnable to running */
	__u64 run_ns;      /* time on a CPU, credited when the thread leaves it */
};

enum sched_stat {
	SCHED_STAT_STATS_FULL, /* samples lost: the stats map was full */
	SCHED_STAT__MAX,
};

#endif
