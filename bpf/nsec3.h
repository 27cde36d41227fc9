/* NSEC3 in the fast path: the hash of a name (iterations 0) and the zone's
 * NSEC3 record that matches or covers it. These are the building blocks of
 * signed NXDOMAIN and NODATA answers for NSEC3 zones (docs/xdp.md, "Signed
 * negatives"): for an arbitrary QNAME no answer can be compiled ahead, but
 * its proof is three lookups in the zone's sorted hashes. */
#ifndef XDPNS_NSEC3_H
#define XDPNS_NSEC3_H

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "consts.h"
#include "dns.h"
#include "maps.h"
#include "sha1.h"

/* One NSEC3 record of a zone: its owner's hash and the store reference of
 * what the answer copies for it (the NSEC3 and its RRSIG). Per generation
 * the zones' entries sit in one array, each zone's in a range
 * [base, base + count) sorted by hash. */
struct nsec3_entry {
	__u8 hash[SHA1_DIGEST];
	__u32 ref;
};

struct nsec3_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP); /* generations differ in size */
	__uint(max_entries, 1); /* per generation, set by the loader */
	__type(key, __u32);
	__type(value, struct nsec3_entry);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, GENERATIONS);
	__type(key, __u32);
	__array(values, struct nsec3_inner);
} nsec3_hashes SEC(".maps");

/* nsec3_hash hashes the suffix of s->key (the QNAME in wire form,
 * lowercased, as key_and_sum leaves it) that starts at byte off, followed
 * by the salt in s->n3: RFC 5155 §5 with iterations 0. The digest goes to
 * s->n3.digest. A global function: verified once, with its own stack.
 * Returns 0, or -1 when off, the name or the salt is out of range. */
__attribute__((noinline)) int nsec3_hash(__u32 off)
{
	struct scratch *s;
	__u32 zero = 0, h[5];
	__u64 nlen, slen, salt_len, len, nw, rem, tmask, nb;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return -1;
	nlen = reload(s->q.nlen);
	salt_len = reload(s->n3.salt_len);
	if (nlen > MAX_NAME_LEN || off >= nlen || salt_len > NSEC3_MAX_SALT)
		return -1;
	slen = (nlen - off) & 0xff; /* 1..255: off < nlen <= 255 */
	nw = slen / 8;
	rem = slen & 7;
	tmask = rem ? tail_mask(rem) : 0;
	/* The suffix, word by word from an unaligned offset (key_word masks
	 * it), bytes past it cleared: masks, not branches, as in nxd_step. */
#pragma unroll
	for (__u64 i = 0; i < NAME_WORDS; i++) {
		__u64 whole = lt_mask(i, nw), part = lt_mask(i, nw + 1) & ~whole;

		s->n3.msg[i] = key_word(s, off + i * 8) & (whole | (part & tmask));
	}
#pragma unroll
	for (__u64 i = NAME_WORDS; i < NSEC3_MSG_WORDS; i++)
		s->n3.msg[i] = 0;
	/* The salt right after the name: whole words, unaligned; its zero
	 * padding clears what the last one covers past it. */
#pragma unroll
	for (__u64 j = 0; j < NSEC3_MAX_SALT / 8 + 1; j++)
		*(__u64 *)((__u8 *)s->n3.msg + slen + j * 8) = s->n3.salt[j];
	len = slen + salt_len; /* <= 287 */
	((__u8 *)s->n3.msg)[len] = 0x80;
	nb = (len + 1 + 8 + SHA1_BLOCK - 1) >> 6; /* 1..5 blocks */
	if (nb < 1 || nb > NSEC3_MSG_WORDS / 8)
		return -1;
	s->n3.msg[nb * 8 - 1] = bpf_cpu_to_be64(len * 8);

	sha1_init(h);
#pragma nounroll
	for (__u64 i = 0; i < NSEC3_MSG_WORDS / 8; i++) {
		if (i >= nb)
			break;
		sha1_compress(h, (const __u32 *)&s->n3.msg[(i & 7) * 8]);
	}
#pragma unroll
	for (int k = 0; k < 5; k++)
		s->n3.digest[k] = bpf_htonl(h[k]);
	return 0;
}

#define NSEC3_NONE (-1L)       /* no entries, or the map is missing */
#define NSEC3_MATCH (1L << 32) /* the entry's hash equals the digest */

/* -1, 0 or 1 as the hash of e sorts before, equal to or after the digest. */
static __always_inline int nsec3_cmp(const struct nsec3_entry *e, const __u32 *digest)
{
#pragma unroll
	for (int k = 0; k < 5; k++) {
		__u32 a = bpf_ntohl(((const __u32 *)e->hash)[k]), b = bpf_ntohl(digest[k]);

		if (a != b)
			return a < b ? -1 : 1;
	}
	return 0;
}

/* nsec3_find returns the index, among the count entries from base in
 * generation gen, of the NSEC3 that matches or covers s->n3.digest: the
 * last whose hash sorts at or before it, or the zone's last when it sorts
 * before the first (the chain is a ring: the last NSEC3 covers the hashes
 * after it and before the first). NSEC3_MATCH is added on a match.
 * Binary search: at most 33 lookups for 2^32 entries. */
__attribute__((noinline)) long nsec3_find(__u32 gen, __u32 base, __u32 count)
{
	struct scratch *s;
	struct nsec3_entry *e;
	void *inner;
	__u32 zero = 0, lo = 0, hi = count, idx;

	s = bpf_map_lookup_elem(&scratch, &zero);
	gen &= GENERATIONS - 1;
	inner = bpf_map_lookup_elem(&nsec3_hashes, &gen);
	if (!s || !inner || count == 0)
		return NSEC3_NONE;
	/* lo becomes the number of entries at or before the digest. */
	for (int i = 0; i < 33; i++) {
		__u32 mid, at;

		if (lo >= hi)
			break;
		mid = lo + (hi - lo) / 2;
		at = base + mid;
		e = bpf_map_lookup_elem(inner, &at);
		if (!e)
			return NSEC3_NONE;
		if (nsec3_cmp(e, s->n3.digest) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return base + count - 1;
	idx = base + lo - 1;
	e = bpf_map_lookup_elem(inner, &idx);
	if (!e)
		return NSEC3_NONE;
	return nsec3_cmp(e, s->n3.digest) == 0 ? (NSEC3_MATCH | idx) : idx;
}

#endif
