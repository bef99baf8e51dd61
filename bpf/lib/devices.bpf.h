/* Devices the exporter's filter leaves out, which the programs skip (kernel side only). */
#ifndef VNET_BPF_LIB_DEVICES_H
#define VNET_BPF_LIB_DEVICES_H

#include "../devices.h"

/* devices.include/exclude leave devices out (set before load); else no look-up is made. */
const volatile bool filtered = false;

/* Whether the device is in `set`, the program's hash of devices left out (user space fills it). */
static __always_inline bool excluded(void *set, __u32 netns, __u32 ifindex)
{
	struct device_id id = {.netns = netns, .ifindex = ifindex};

	return filtered && bpf_map_lookup_elem(set, &id);
}

#endif
