/* Internet checksum helpers (RFC 1071). Sums are kept in host order, as
 * csum_partial does: 16-bit words read from memory as they lie. A sum of
 * bytes that start at an odd offset is the byte-swapped sum of the same
 * bytes taken from an even one. */
#ifndef XDPNS_CSUM_H
#define XDPNS_CSUM_H

#include <linux/types.h>

/* Folds a 64-bit accumulator of 16/32-bit host-order words to 16 bits. */
static __always_inline __u16 csum_fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

static __always_inline __u16 csum_swap(__u16 s)
{
	return (__u16)((s >> 8) | (s << 8));
}

/* Adds a folded sum of bytes that sit at an odd (odd != 0) or even offset. */
static __always_inline __u64 csum_add_at(__u64 acc, __u16 s, __u32 odd)
{
	return acc + (odd ? csum_swap(s) : s);
}

/* The value for a checksum field: complement of the folded sum. */
static __always_inline __u16 csum_finish(__u64 acc)
{
	return (__u16)~csum_fold64(acc);
}

/* UDP sends a computed zero as all ones (RFC 768). */
static __always_inline __u16 csum_finish_udp(__u64 acc)
{
	__u16 c = csum_finish(acc);

	return c ? c : 0xffff;
}

#endif
