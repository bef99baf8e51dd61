/* A device, as the programs that skip devices the exporter's filter excludes key them. */
#ifndef VNET_BPF_DEVICES_H
#define VNET_BPF_DEVICES_H

/* ifindexes are per network namespace: the namespace's inode makes a device unique. */
struct device_id {
	__u32 netns;
	__u32 ifindex;
};

/* Devices the programs skip, at most (user space puts those devices.include/exclude leave out). */
#define EXCLUDED_DEVICES_MAX 4096

#endif
