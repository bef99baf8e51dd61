/* Map helpers shared by the probes (kernel side only). */
#ifndef VNET_BPF_LIB_MAPS_H
#define VNET_BPF_LIB_MAPS_H

#define VNET_EEXIST 17 /* errno values are not part of vmlinux.h */

/* Add one to slot `idx` of a per-CPU u64 array. */
static __always_inline void stat_inc(void *stats, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(stats, &idx);

	if (v)
		(*v)++;
}

/*
 * The value of `key` in a per-CPU hash, inserted zeroed if missing. When the map is full
 * the miss is counted in slot `full_idx` of `stats` and NULL is returned, so a full map is
 * visible in the exporter's self-metrics instead of silently losing series.
 */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *zero, void *stats,
					    __u32 full_idx)
{
	void *v = bpf_map_lookup_elem(map, key);
	long err;

	if (v)
		return v;
	err = bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	if (err && err != -VNET_EEXIST) {
		stat_inc(stats, full_idx);
		return NULL;
	}
	return bpf_map_lookup_elem(map, key);
}

#endif
