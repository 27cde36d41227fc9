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

/* Per generation: the zones' NSEC3 entries (abi.h struct nsec3_entry) and
 * their parameters by zone (struct nsec3_zone). */
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

struct nsec3_zones_inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* per generation, set by the loader */
	__type(key, __u32);     /* the zone's zone_stats slot */
	__type(value, struct nsec3_zone);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, GENERATIONS);
	__type(key, __u32);
	__array(values, struct nsec3_zones_inner);
} nsec3_zones SEC(".maps");

struct nsec_ces_inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* per generation, set by the loader */
	__type(key, __u64);     /* the encloser's index key (abi.h index_bucket) */
	__type(value, struct nsec_ce);
};

/* Per generation: NSEC zones' closest enclosers (struct nsec_ce). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, GENERATIONS);
	__type(key, __u32);
	__array(values, struct nsec_ces_inner);
} nsec_ces SEC(".maps");

/* One more NSEC3 iteration (RFC 5155 §5): s->n3.digest becomes the SHA-1
 * of itself followed by the salt, one block (20 + at most 32 bytes, the
 * 0x80 byte and the length). A bpf_loop callback: verified once whatever
 * the count. */
static long nsec3_iterate(__u64 index_unused, void *ctx_unused)
{
	struct scratch *s;
	__u32 zero = 0;
	__u64 salt_len, len;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 1;
	salt_len = reload(s->n3.salt_len);
	if (salt_len > NSEC3_MAX_SALT)
		return 1;
#pragma unroll
	for (int i = 0; i < 8; i++)
		s->n3.msg[i] = 0;
#pragma unroll
	for (int k = 0; k < 5; k++)
		((__u32 *)s->n3.msg)[k] = s->n3.digest[k];
	/* The salt after the digest, whole zero-padded words (unaligned):
	 * its padding clears what they cover past it. */
#pragma unroll
	for (int j = 0; j < NSEC3_MAX_SALT / 8 + 1; j++)
		*(__u64 *)((__u8 *)s->n3.msg + SHA1_DIGEST + j * 8) = s->n3.salt[j];
	len = SHA1_DIGEST + salt_len; /* <= 52 */
	((__u8 *)s->n3.msg)[len & 63] = 0x80;
	s->n3.msg[7] = bpf_cpu_to_be64(len * 8);
	sha1_init(s->n3.h);
	sha1_compress(s->n3.h, (const __u32 *)s->n3.msg, s->n3.w);
#pragma unroll
	for (int k = 0; k < 5; k++)
		s->n3.digest[k] = bpf_htonl(s->n3.h[k]);
	return 0;
}

/* nsec3_hash hashes the suffix of s->key (the QNAME in wire form,
 * lowercased, as key_and_sum leaves it) that starts at byte off, followed
 * by the salt in s->n3, then s->n3.iterations times more (RFC 5155 §5).
 * The digest goes to s->n3.digest. A global function: verified once, with
 * its own stack. Returns 0, or -1 when off, the name, the salt or the
 * iterations are out of range. */
__attribute__((noinline)) int nsec3_hash(__u32 off)
{
	struct scratch *s;
	__u32 zero = 0;
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
#pragma nounroll /* unrolled, clang keeps 32 masks on the stack */
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

	sha1_init(s->n3.h);
#pragma nounroll
	for (__u64 i = 0; i < NSEC3_MSG_WORDS / 8; i++) {
		if (i >= nb)
			break;
		sha1_compress(s->n3.h, (const __u32 *)&s->n3.msg[(i & 7) * 8], s->n3.w);
	}
#pragma unroll
	for (int k = 0; k < 5; k++)
		s->n3.digest[k] = bpf_htonl(s->n3.h[k]);
	nb = reload(s->n3.iterations);
	if (nb > NSEC3_MAX_ITERATIONS)
		return -1;
	if (nb && bpf_loop(nb, nsec3_iterate, NULL, 0) != (long)nb)
		return -1;
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

/* The zone's hash parameters, for nsec3_hash. */
static __always_inline void nsec3_params(struct scratch *s, const struct nsec3_zone *nz)
{
#pragma unroll
	for (int j = 0; j < NSEC3_MAX_SALT / 8; j++)
		s->n3.salt[j] = ((__u64 *)nz->salt)[j];
	s->n3.salt[NSEC3_MAX_SALT / 8] = 0;
	s->n3.salt_len = nz->salt_len;
	s->n3.iterations = nz->iterations;
}

#define NXD_NSEC3_REF (1L << 34)
#define NXD_NOT_NSEC3 (-3) /* nsec3_nxd: not an NSEC3 zone (ask nsec_nxd) */

/* The entry at index i of generation gen's NSEC3 array, or NULL. */
static __always_inline struct nsec3_entry *nsec3_at(void *inner, __u32 i)
{
	return bpf_map_lookup_elem(inner, &i);
}

/* The piece ref of the NSEC3 that matches (match) or covers (!match) the
 * hash of the suffix of s->key at off, among the count entries from base;
 * -1 when it does the other or anything is missing. */
static __always_inline long nsec3_piece_for(__u32 gen, void *inner, __u64 off, __u32 base, __u32 count, int match)
{
	struct nsec3_entry *e;
	long r;

	if (nsec3_hash(off) < 0)
		return -1;
	r = nsec3_find(gen, base, count);
	if (r < 0 || !(r & NSEC3_MATCH) != !match)
		return -1;
	e = nsec3_at(inner, (__u32)r);
	if (!e)
		return -1;
	return e->ref;
}

/* NXD_NSEC3_REF | the ref of a zone's signed head (SOA and RRSIGs), read
 * through its slot (flipped with every SOA), or NXD_NONE. */
static __always_inline long signed_head(void *store, __u32 slot)
{
	__u32 block = slot >> REF_BLOCK_SHIFT;
	struct store_block *b = bpf_map_lookup_elem(store, &block);

	if (!b)
		return NXD_NONE;
	return NXD_NSEC3_REF |
	       reload(((struct answer_slot *)(b->bytes + (slot & REF_OFFSET_MASK) * STORE_ALIGN))->ref);
}

/* nsec3_nxd puts together the signed NXDOMAIN of an NSEC3 zone for the
 * QNAME in s->key, whose closest encloser nxd_step found at s->q.nxd_off
 * (its DO=1 entry says ANSWER_NXD3) and whose next closer name starts at
 * s->q.nxd_prev: the NSEC3 matching the closest encloser, the one
 * covering the next closer name and the one covering the wildcard, each
 * once, in that order (userspace/answer's closest encloser proof, and
 * compile.Table.nsec3NXD); the first and the last come from the
 * encloser's nsec_ces entry when it has one, else they are hashed too. Their pieces' refs go to s->q.n3_ref. Returns
 * NXD_NSEC3_REF | the ref of the zone's signed head (SOA and RRSIGs), or
 * NXD_NONE to pass: a hash that matches where the proof needs a cover
 * (the name exists after all, for all we can tell) or anything missing.
 * A global function: verified once. */
__attribute__((noinline)) long nsec3_nxd(__u32 gen)
{
	struct scratch *s;
	struct nsec3_zone *nz;
	struct nsec_ce *cep;
	void *zones, *inner, *store, *ces;
	__u32 zero = 0, zone, base, count, slot, ref[3], n;
	__u64 ce, nc;
	long r;

	s = bpf_map_lookup_elem(&scratch, &zero);
	gen &= GENERATIONS - 1;
	ces = bpf_map_lookup_elem(&nsec_ces, &gen);
	zones = bpf_map_lookup_elem(&nsec3_zones, &gen);
	inner = bpf_map_lookup_elem(&nsec3_hashes, &gen);
	store = bpf_map_lookup_elem(&answer_store, &gen);
	if (!s || !zones || !inner || !store)
		return NXD_NONE;
	zone = reload(s->q.zone);
	nz = bpf_map_lookup_elem(zones, &zone);
	if (!nz)
		return NXD_NOT_NSEC3;
	if (nz->salt_len > NSEC3_MAX_SALT)
		return NXD_NONE;
	nsec3_params(s, nz);
	base = nz->base;
	count = nz->count;
	slot = nz->head_slot;
	ce = reload(s->q.nxd_off);
	nc = reload(s->q.nxd_prev);
	if (ce < 2 || ce > MAX_NAME_LEN || nc >= ce)
		return NXD_NONE;

	/* The next closer name: covered, not matched. */
	if ((r = nsec3_piece_for(gen, inner, nc, base, count, 0)) < 0)
		return NXD_NONE;
	ref[1] = (__u32)r;
	cep = ces ? bpf_map_lookup_elem(ces, &s->q.nxd_hash) : NULL;
	if (cep && cep->zone == zone) {
		/* The encloser's own NSEC3 and the wildcard's cover do not
		 * depend on the QNAME: listed ahead (compile.NSEC3Enclosers). */
		ref[0] = cep->self_ref;
		ref[2] = cep->wild_ref;
	} else {
		/* The closest encloser: its own NSEC3. */
		if ((r = nsec3_piece_for(gen, inner, ce, base, count, 1)) < 0)
			return NXD_NONE;
		ref[0] = (__u32)r;
		/* The wildcard *.CE, written over the two bytes before the
		 * encloser (the next closer label is at least that long; the
		 * key is not read again): covered, not matched. */
		((__u8 *)s->key)[(ce - 2) & KEY_OFF_MASK] = 1;
		((__u8 *)s->key)[(ce - 1) & KEY_OFF_MASK] = '*';
		if ((r = nsec3_piece_for(gen, inner, ce - 2, base, count, 0)) < 0)
			return NXD_NONE;
		ref[2] = (__u32)r;
	}
	/* In the engine's order, each once (one piece per NSEC3 record). */
	s->q.n3_ref[0] = ref[0];
	n = 1;
	if (ref[1] != ref[0]) {
		s->q.n3_ref[1] = ref[1];
		n = 2;
	}
	if (ref[2] != ref[0] && ref[2] != ref[1]) {
		s->q.n3_ref[n & 3] = ref[2];
		n++;
	}
	s->q.n3_n = n;
	return signed_head(store, slot);
}

/* -1 or 1 as child label key e sorts before or after the QNAME's label
 * key k (struct nsec_ce); 0 when they cannot tell: the same first
 * NSEC_LABEL_PREFIX bytes, and one of the two labels is longer (or both
 * are the same label, which then exists). Zero-padded prefixes compare
 * as the labels do, the shorter of two that agree sorting first (RFC 4034
 * §6.1), so the length byte after them settles the rest. */
static __always_inline int nsec_label_cmp(const struct nsec3_entry *e, const __u32 *k)
{
	__u32 a, b;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		a = bpf_ntohl(((const __u32 *)e->hash)[i]);
		b = bpf_ntohl(k[i]);
		if (a != b)
			return a < b ? -1 : 1;
	}
	a = bpf_ntohl(((const __u32 *)e->hash)[4]);
	b = bpf_ntohl(k[4]);
	if (a >> 8 != b >> 8)
		return a >> 8 < b >> 8 ? -1 : 1;
	a &= 0xff;
	b &= 0xff;
	if (a > NSEC_LABEL_PREFIX || b > NSEC_LABEL_PREFIX || a == b)
		return 0;
	return a < b ? -1 : 1;
}

/* nsec_cover returns the ref of the piece whose NSEC covers the QNAME in
 * s->key, below the NSEC closest encloser ce, whose next closer label
 * starts at s->q.nxd_prev: that label placed among ce's children in the
 * array inner by a binary search. -1: it cannot be placed (passes). */
static __always_inline long nsec_cover(struct scratch *s, struct nsec_ce *ce, void *inner)
{
	struct nsec3_entry *e;
	__u32 lo = 0, hi, base, at;
	__u64 nc, l;

	base = ce->base;
	hi = ce->count;
	nc = reload(s->q.nxd_prev);
	if (nc >= MAX_NAME_LEN)
		return -1;
	l = ((__u8 *)s->key)[nc];
	if (l == 0 || l > MAX_LABEL_LEN)
		return -1;
	/* The next closer label's key, in the digest words (unused here). */
#pragma unroll
	for (int i = 0; i < NSEC_LABEL_PREFIX; i++)
		((__u8 *)s->n3.digest)[i] = i < l ? ((__u8 *)s->key)[(nc + 1 + i) & KEY_OFF_MASK] : 0;
	((__u8 *)s->n3.digest)[NSEC_LABEL_PREFIX] = l;
	/* lo becomes the number of children sorting before the label. */
	for (int i = 0; i < 33; i++) {
		__u32 mid;
		int c;

		if (lo >= hi)
			break;
		mid = lo + (hi - lo) / 2;
		at = base + mid;
		e = bpf_map_lookup_elem(inner, &at);
		if (!e)
			return -1;
		c = nsec_label_cmp(e, s->n3.digest);
		if (c == 0)
			return -1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return ce->self_ref;
	at = base + lo - 1;
	e = bpf_map_lookup_elem(inner, &at);
	if (!e)
		return -1;
	return e->ref;
}

/* nsec_nxd puts together the signed NXDOMAIN of an NSEC zone for the
 * QNAME in s->key, whose closest encloser nxd_step found (index key
 * s->q.nxd_hash, its DO=1 entry says ANSWER_NXD3) and whose next closer
 * label starts at s->q.nxd_prev: the NSEC covering the QNAME (nsec_cover)
 * and the one covering the wildcard, once each (compile's nsecnxd.go).
 * Their pieces' refs go to s->q.n3_ref. Returns NXD_NSEC3_REF | the ref
 * of the zone's signed head, or NXD_NONE to pass. A global function:
 * verified once. */
__attribute__((noinline)) long nsec_nxd(__u32 gen)
{
	struct scratch *s;
	struct nsec_ce *ce;
	void *ces, *inner, *store;
	__u32 zero = 0;
	long piece;

	s = bpf_map_lookup_elem(&scratch, &zero);
	gen &= GENERATIONS - 1;
	ces = bpf_map_lookup_elem(&nsec_ces, &gen);
	inner = bpf_map_lookup_elem(&nsec3_hashes, &gen);
	store = bpf_map_lookup_elem(&answer_store, &gen);
	if (!s || !ces || !inner || !store)
		return NXD_NONE;
	ce = bpf_map_lookup_elem(ces, &s->q.nxd_hash);
	if (!ce || ce->zone != reload(s->q.zone))
		return NXD_NONE;
	piece = nsec_cover(s, ce, inner);
	if (piece < 0)
		return NXD_NONE;
	s->q.n3_ref[0] = (__u32)piece;
	s->q.n3_n = 1;
	if (ce->wild_ref != (__u32)piece) {
		s->q.n3_ref[1] = ce->wild_ref;
		s->q.n3_n = 2;
	}
	return signed_head(store, ce->head_slot);
}

/* wild_proof chooses the proof a signed wildcard answer carries
 * (ANSWER_WILD_PROOF): for the QNAME in s->key, synthesised from the
 * wildcard below the closest encloser nxd_step found (index key
 * s->q.nxd_hash, next closer name at s->q.nxd_prev), the NSEC3 covering
 * the next closer name, or in an NSEC zone the NSEC covering the QNAME
 * (compile's wildproof.go). Its piece's ref goes to s->q.n3_ref[0].
 * Returns 0, or -1 to pass. A global function: verified once. */
__attribute__((noinline)) long wild_proof(__u32 gen)
{
	struct scratch *s;
	struct nsec3_zone *nz;
	struct nsec_ce *ce;
	void *zones, *ces, *inner;
	__u32 zero = 0, zone;
	long r;

	s = bpf_map_lookup_elem(&scratch, &zero);
	gen &= GENERATIONS - 1;
	zones = bpf_map_lookup_elem(&nsec3_zones, &gen);
	ces = bpf_map_lookup_elem(&nsec_ces, &gen);
	inner = bpf_map_lookup_elem(&nsec3_hashes, &gen);
	if (!s || !zones || !ces || !inner)
		return -1;
	zone = reload(s->q.zone);
	nz = bpf_map_lookup_elem(zones, &zone);
	if (nz) {
		if (nz->salt_len > NSEC3_MAX_SALT)
			return -1;
		nsec3_params(s, nz);
		r = nsec3_piece_for(gen, inner, reload(s->q.nxd_prev), nz->base, nz->count, 0);
		if (r < 0)
			return -1;
	} else {
		ce = bpf_map_lookup_elem(ces, &s->q.nxd_hash);
		if (!ce || ce->zone != zone)
			return -1;
		r = nsec_cover(s, ce, inner);
		if (r < 0)
			return -1;
	}
	s->q.n3_ref[0] = (__u32)r;
	s->q.n3_n = 1;
	return 0;
}

#endif
