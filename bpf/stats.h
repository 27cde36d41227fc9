/* Every verdict goes through count(): one per-CPU counter per reason. */
#ifndef XDPNS_STATS_H
#define XDPNS_STATS_H

#include "maps.h"

static __always_inline int count(enum stat reason, int action)
{
	__u32 key = reason;
	__u64 *n = bpf_map_lookup_elem(&stats, &key);

	if (n)
		*n += 1; /* per-CPU: no other writer */
	return action;
}

#define PASS(reason) count(reason, XDP_PASS)

#endif
