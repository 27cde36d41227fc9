/* The DNS gate and the lookup key, mirroring userspace/wire.ParseQuery: what
 * it accepts and the responder answers from compiled tables is answered here;
 * everything else is passed with its reason. */
#ifndef XDPNS_DNS_H
#define XDPNS_DNS_H

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "consts.h"
#include "csum.h"
#include "maps.h"

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

/* Name hash, loader/hash.go mirrors it: 64-bit words of the lowercased,
 * zero-padded wire name, little-endian, each mixed in by xor, multiply and
 * xor-shift; the QTYPE then goes through a final avalanche. */
#define HASH_SEED 0x6a09e667f3bcc908ULL  /* fractional bits of sqrt(2) */
#define HASH_MUL 0x9e3779b97f4a7c15ULL   /* 2^64 / golden ratio, odd */
#define HASH_FMIX 0xbf58476d1ce4e5b9ULL  /* splitmix64 finaliser constant */

static __always_inline __u64 hash_word(__u64 h, __u64 w)
{
	h ^= w;
	h *= HASH_MUL;
	return h ^ (h >> 32);
}

static __always_inline __u64 name_hash_type(__u64 h, __u16 qtype)
{
	h = hash_word(h, qtype);
	h ^= h >> 29;
	h *= HASH_FMIX;
	h ^= h >> 32;
	return h | (((h | -h) >> 63) ^ 1); /* never 0, the index's free slot */
}

/* ASCII lowercase of 8 bytes at once. A wire name can be lowercased whole:
 * label lengths are <= 63, below 'A'. */
static __always_inline __u64 lower8(__u64 w)
{
	__u64 hept = w & 0x7f7f7f7f7f7f7f7fULL;
	__u64 ge_a = hept + 0x3f3f3f3f3f3f3f3fULL; /* high bit: byte >= 'A' */
	__u64 gt_z = hept + 0x2525252525252525ULL; /* high bit: byte > 'Z' */
	__u64 upper = ge_a & ~gt_z & ~w & 0x8080808080808080ULL;

	return w | (upper >> 2); /* 0x80 >> 2 is the case bit 0x20 */
}

/* Keeps the first len % 8 bytes of a little-endian word (all when 0). */
static __always_inline __u64 tail_mask(__u64 len)
{
	__u64 r = len & 7;

	return r ? ~0ULL >> (64 - 8 * r) : ~0ULL;
}

/* The QTYPEs the Go responder answers before its table (FORMERR, NOTIMP,
 * REFUSED, or the engine for ANY). */
static __always_inline int qtype_special(__u16 t)
{
	switch (t) {
	case DNS_TYPE_OPT:
	case DNS_TYPE_TKEY:
	case DNS_TYPE_TSIG:
	case DNS_TYPE_IXFR:
	case DNS_TYPE_AXFR:
	case DNS_TYPE_MAILB:
	case DNS_TYPE_MAILA:
	case DNS_TYPE_ANY:
		return 1;
	}
	return 0;
}

/* compile.Defaultable: a QTYPE without its own entry takes the name's
 * default entry (NODATA and the like). */
static __always_inline int qtype_defaultable(__u16 t)
{
	switch (t) {
	case 0:
	case DNS_TYPE_OPT:
	case DNS_TYPE_DS:
	case DNS_TYPE_RRSIG:
	case DNS_TYPE_NSEC:
		return 0;
	}
	return t < DNS_META_FIRST || t > DNS_META_LAST;
}

/* compile.NXDable: a QTYPE for a name that does not exist may get the
 * zone's NXDOMAIN. */
static __always_inline int qtype_nxdable(__u16 t)
{
	return t != DNS_TYPE_OPT && (t < DNS_META_FIRST || t > DNS_META_LAST);
}

/* Header checks: a query, opcode QUERY, one question, AN = NS = 0, AR <= 1. */
static __always_inline int parse_dns_header(void *data, void *data_end,
					    struct scratch *s, __u16 *arcount)
{
	__u64 off = reload(s->p.dns_off);
	struct dnshdr *h;
	__u16 flags;

	opaque(off);
	if (off > MAX_L4_END)
		return STAT_ABORTED;
	h = data + off;
	if ((void *)(h + 1) > data_end)
		return STAT_PASS_MALFORMED;
	flags = bpf_ntohs(h->flags);
	s->q.flags = flags;
	if (flags & DNS_QR)
		return STAT_PASS_QR;
	if (flags & DNS_OPCODE_MASK)
		return STAT_PASS_OPCODE;
	if (h->qdcount != bpf_htons(1) || h->ancount || h->nscount)
		return STAT_PASS_COUNTS;
	*arcount = bpf_ntohs(h->arcount);
	if (*arcount > 1)
		return STAT_PASS_COUNTS;
	return 0;
}

/* Reads the question into s->qbuf and finds the name's length: uncompressed,
 * labels <= 63, at most 255 bytes, as wire.parseName. */
static __always_inline int parse_question(struct xdp_md *ctx, struct scratch *s)
{
	__u64 avail = reload(s->p.dns_len) - DNS_HDR_LEN;
	__u64 n = avail, off = 0, nlen;
	__u16 qtype;

	if (avail > 0xffff)
		return STAT_ABORTED;
	if (n > QBUF_LEN)
		n = QBUF_LEN;
	if (n == 0)
		return STAT_PASS_NAME;
	if (bpf_xdp_load_bytes(ctx, reload(s->p.dns_off) + DNS_HDR_LEN, s->qbuf.b, n))
		return STAT_PASS_MALFORMED;
	s->q.nlen = 0;
	for (int i = 0; i < MAX_LABELS; i++) {
		__u8 l;

		if (off >= n || off >= QBUF_LEN)
			return STAT_PASS_NAME; /* cut short */
		l = s->qbuf.b[off];
		if (l == 0) {
			s->q.nlen = off + 1;
			break;
		}
		if (l > MAX_LABEL_LEN)
			return STAT_PASS_NAME; /* compression pointer or bad label */
		off += l + 1;
		if (off > MAX_NAME_LEN - 1)
			return STAT_PASS_NAME;
	}
	nlen = reload(s->q.nlen);
	if (nlen == 0 || nlen > MAX_NAME_LEN)
		return STAT_PASS_NAME;
	if (nlen + 4 > avail)
		return STAT_PASS_NAME; /* QTYPE/QCLASS cut short */
	s->q.qlen = nlen + 4;
	qtype = (__u16)s->qbuf.b[nlen] << 8 | s->qbuf.b[nlen + 1];
	s->q.qtype = qtype;
	if (s->qbuf.b[nlen + 2] != 0 || s->qbuf.b[nlen + 3] != DNS_CLASS_IN)
		return STAT_PASS_CLASS;
	if (qtype_special(qtype))
		return STAT_PASS_QTYPE;
	return 0;
}

/* The one additional record must be an OPT at the root, version 0, ending
 * the message, with options the responder ignores (RFC 6891 §6.1.2); NSID is
 * passed when configured, since Go answers it. */
static __always_inline int parse_opt(void *data, void *data_end, struct scratch *s,
				     const struct config *cfg)
{
	__u64 qlen = reload(s->q.qlen);
	__u64 off = reload(s->p.dns_off) + DNS_HDR_LEN + qlen;
	__u64 rest = reload(s->p.dns_len) - DNS_HDR_LEN - qlen;
	__u64 rdlen, pos = 0;
	__u8 *o;

	opaque(off);
	if (rest < OPT_RR_LEN || rest > 0xffff)
		return STAT_PASS_ADDITIONAL;
	if (off > MAX_L4_END + DNS_HDR_LEN + MAX_NAME_LEN + 4)
		return STAT_ABORTED;
	o = data + off;
	if ((void *)(o + OPT_RR_LEN) > data_end)
		return STAT_PASS_MALFORMED;
	if (o[0] != 0 || o[1] != 0 || o[2] != DNS_TYPE_OPT)
		return STAT_PASS_ADDITIONAL; /* another record, or an OPT not at the root */
	rdlen = (__u64)o[9] << 8 | o[10];
	if (OPT_RR_LEN + rdlen > rest)
		return STAT_PASS_ADDITIONAL; /* cut short: FORMERR in Go */
	if (OPT_RR_LEN + rdlen < rest)
		return STAT_PASS_TRAILING;
	if (rdlen > MAX_OPT_RDLEN)
		return STAT_PASS_ADDITIONAL;
	for (int i = 0; i < MAX_EDNS_OPTIONS; i++) {
		__u8 *opt;
		__u64 code, olen;

		if (pos >= rdlen)
			break;
		if (rdlen - pos < OPT_OPTION_HDR)
			return STAT_PASS_ADDITIONAL;
		opt = o + OPT_RR_LEN + (pos & (MAX_OPT_RDLEN - 1));
		if ((void *)(opt + OPT_OPTION_HDR) > data_end)
			return STAT_PASS_MALFORMED;
		code = (__u64)opt[0] << 8 | opt[1];
		olen = (__u64)opt[2] << 8 | opt[3];
		if (OPT_OPTION_HDR + olen > rdlen - pos)
			return STAT_PASS_ADDITIONAL;
		if (code == EDNS_OPTION_NSID && (cfg->flags & CONFIG_NSID))
			return STAT_PASS_NSID;
		if (code == EDNS_OPTION_EXPIRE)
			return STAT_PASS_EXPIRE; /* secondaries asking: Go adds the time left */
		if (code == EDNS_OPTION_COOKIE && !s->q.has_cookie) {
			/* The first one counts, as in Go (cookie.h). */
			s->q.has_cookie = 1;
			s->q.cookie_off = off + OPT_RR_LEN + pos + OPT_OPTION_HDR;
			s->q.cookie_len = olen;
		}
		pos += OPT_OPTION_HDR + olen;
	}
	if (pos < rdlen)
		return STAT_PASS_ADDITIONAL; /* more than MAX_EDNS_OPTIONS */
	if (o[6] != 0)
		return STAT_PASS_EDNS_VERSION;
	s->q.edns = 1;
	s->q.udp_size = (__u16)o[3] << 8 | o[4];
	s->q.dnssec_ok = (o[7] & (EDNS_DO >> 8)) != 0;
	return 0;
}

/* Lowercases the name into s->key, hashes it, and sums the question for the
 * UDP checksum, 8 bytes at a time. The loop has one exit test so that the
 * verifier walks it once per length, not once per combination of lengths. */
static __always_inline int key_and_sum(struct scratch *s)
{
	__u64 nlen = reload(s->q.nlen), nfull, rem, t, k;
	__u64 h = HASH_SEED ^ nlen, sum = 0;
	__u32 i;

	if (nlen == 0 || nlen > MAX_NAME_LEN)
		return -1;
	nfull = nlen / 8;
	rem = nlen & 7;
	for (i = 0; i < NAME_WORDS; i++) {
		__u64 w;

		if (i >= nfull)
			break;
		w = s->qbuf.w[i];
		sum += (w & 0xffffffff) + (w >> 32);
		k = lower8(w);
		s->key[i] = k;
		h = hash_word(h, k);
	}
	if (nfull >= NAME_WORDS)
		return -1;
	/* Last partial word of the name, then QTYPE and QCLASS: rem + 4 bytes
	 * from word nfull, spilling into the next when rem > 4. */
	t = s->qbuf.w[nfull];
	if (rem) {
		k = lower8(t & tail_mask(rem));
		s->key[nfull] = k;
		h = hash_word(h, k);
	}
	if (rem + 4 <= 8) {
		t &= tail_mask(rem + 4);
	} else {
		__u64 t2 = s->qbuf.w[nfull + 1] & tail_mask(rem + 4 - 8);

		sum += (t2 & 0xffffffff) + (t2 >> 32);
	}
	sum += (t & 0xffffffff) + (t >> 32);
	s->q.name_hash = h;
	s->q.qsum = sum;
	return 0;
}

/* Generation gen's index entry for key (name_hash_type): its zone (the
 * slot in zone_stats) << 32 | its ref for DO dnssec_ok, or -1 when absent.
 * Both home buckets are scanned; a delete leaves a hole, moving no other
 * key, and the loader never moves a key, so a key that stays is always
 * found. A slot freed and taken by another key between our reading its key
 * and its value gives another name's record: the record check (answer_at)
 * sees it.
 *
 * A global function, verified once, returning a scalar: the program after
 * each lookup goes on in one state. A pointer into one of two buckets,
 * inlined at seven call sites, took the verifier past its million
 * instructions. */
__attribute__((noinline)) long index_entry(__u32 gen, __u64 key, __u32 dnssec_ok)
{
	struct index_bucket *b;
	struct index_val *v;
	void *index;
	__u32 at = 0;
	__u64 n;

	gen &= GENERATIONS - 1;
	index = bpf_map_lookup_elem(&answer_buckets, &gen);
	if (!index)
		return -1;
	b = bpf_map_lookup_elem(index, &at);
	if (!b)
		return -1;
	n = (__u32)reload(b->key[0]);
	for (int t = 0; t < 2; t++) {
		at = 1 + ((((t ? key : key >> 32) & 0xffffffff) * n) >> 32);
		b = bpf_map_lookup_elem(index, &at);
		if (!b)
			return -1;
		for (int i = 0; i < INDEX_SLOTS; i++) {
			if (reload(b->key[i]) != key)
				continue;
			v = &b->val[i];
			return (long)(reload(v->zone) & 0x7fffffff) << 32 |
			       reload(v->ref[dnssec_ok & 1]);
		}
	}
	return -1;
}

#define ENTRY_REF(e) ((__u32)(e))
#define ENTRY_ZONE(e) ((__u32)((__u64)(e) >> 32))

/* The record for (name, qtype) at ref, if it really is for them: the index
 * holds hashes only. *collision tells a foreign record from a missing one.
 * The body's offset in the record goes to s->q.body_off. */
static __always_inline struct answer *answer_at(void *store, __u32 ref, struct scratch *s,
						__u16 qtype, int *collision)
{
	__u32 block = ref >> REF_BLOCK_SHIFT;
	__u64 off = (ref & REF_OFFSET_MASK) * STORE_ALIGN;
	__u64 nlen = reload(s->q.nlen), nwords;
	struct store_block *b;
	struct answer *a;

	if (nlen > MAX_NAME_LEN)
		return NULL;
	nwords = (nlen + 7) / 8;
	b = bpf_map_lookup_elem(store, &block);
	if (!b)
		return NULL;
	a = (struct answer *)(b->bytes + off);
	if (a->qtype != qtype || a->name_len != nlen) {
		*collision = 1;
		return NULL;
	}
	for (__u32 i = 0; i < NAME_WORDS; i++) {
		if (i >= nwords)
			break;
		if (*(__u64 *)(b->bytes + off + ANSWER_HDR_LEN + i * 8) != s->key[i]) {
			*collision = 1;
			return NULL;
		}
	}
	s->q.body_off = ANSWER_HDR_LEN + nwords * 8;
	return a;
}

/* The shared record an ANSWER_LINK record points to, through its slot. The
 * slot is read once: the loader flips it with one aligned store after
 * writing the new shared record, so either record is whole. */
static __always_inline struct answer *follow_link(void *store, struct answer *a,
						  struct scratch *s)
{
	__u64 off = reload(s->q.body_off);
	struct store_block *b;
	struct answer_slot *slot;
	__u32 ref, block;

	opaque(off);
	if (off > ANSWER_HDR_LEN + NAME_WORDS * 8)
		return NULL;
	ref = ((struct answer_link *)((__u8 *)a + off))->slot;
	block = ref >> REF_BLOCK_SHIFT;
	b = bpf_map_lookup_elem(store, &block);
	if (!b)
		return NULL;
	slot = (struct answer_slot *)(b->bytes + (ref & REF_OFFSET_MASK) * STORE_ALIGN);
	ref = reload(slot->ref);
	block = ref >> REF_BLOCK_SHIFT;
	b = bpf_map_lookup_elem(store, &block);
	if (!b)
		return NULL;
	s->q.body_off = ANSWER_HDR_LEN;
	return (struct answer *)(b->bytes + (ref & REF_OFFSET_MASK) * STORE_ALIGN);
}

/* A query for a name without entries: the zone's NXDOMAIN record when the
 * name's closest encloser (its longest suffix with a default entry) says
 * names below it get it (ANSWER_NXD on its link record, the Go responder's
 * compile.Table.nxdomain), else NULL: pass. Suffixes are hashed and
 * compared from the lowercased name in s->key at their byte offset, 8 bytes
 * at a time (unaligned loads; the last one masked). One suffix per bpf_loop
 * step: the verifier checks the step once, not once per depth. */
#define MAX_NXD_DEPTH 8 /* labels dropped at most; deeper misses are passed */

enum nxd_result { NXD_SEARCHING, NXD_FOUND, NXD_PASS, NXD_COLLISION, NXD_WILD, NXD_REFERRAL, NXD_NSEC3 };

struct nxd_walk {
	__u32 gen;       /* generation of the maps */
	__u32 dnssec_ok; /* which record of the encloser's entry */
	__u32 ref;       /* NXD_FOUND: the zone's NXDOMAIN record; NXD_REFERRAL: the encloser's */
	__u32 result;    /* enum nxd_result */
};

/* 8 bytes of the lowercased name from byte off (masked: the verifier gets
 * its bound without a branch, and bytes past the name are masked out by the
 * caller). */
static __always_inline __u64 key_word(struct scratch *s, __u64 off)
{
	return *(__u64 *)((__u8 *)s->key + (off & KEY_OFF_MASK));
}

/* All ones when a < b, else zero, without a branch (a, b < 2^63); opaque
 * keeps clang from turning it back into a compare and a jump, which would
 * double the verifier's paths at every step of a loop. */
static __always_inline __u64 lt_mask(__u64 a, __u64 b)
{
	__u64 d = a - b, m;

	opaque(d);
	m = (__u64)((__s64)d >> 63);
	opaque(m);
	return m;
}

static long nxd_step(__u64 index_unused, void *ctx)
{
	struct nxd_walk *w = ctx;
	__u64 nlen, off, l, slen, nw, rem, h, roff, tmask, last, diff = 0;
	__u64 key;
	long e;
	struct store_block *b;
	struct answer *a;
	void *store;
	struct scratch *s;
	__u32 zero = 0, gen = w->gen & (GENERATIONS - 1), ref, block;

	w->result = NXD_PASS;
	s = bpf_map_lookup_elem(&scratch, &zero);
	store = bpf_map_lookup_elem(&answer_store, &gen);
	if (!s || !store)
		return 1;
	/* Through scratch memory, unknown to the verifier, so that every
	 * step starts from one state and the callback is verified once. */
	nlen = reload(s->q.nlen);
	off = reload(s->q.nxd_off);
	if (nlen > MAX_NAME_LEN || off >= MAX_NAME_LEN)
		return 1;
	l = ((__u8 *)s->key)[off];
	if (l == 0 || l > MAX_LABEL_LEN)
		return 1;
	s->q.nxd_prev = off; /* the next closer name, should the suffix at off + l + 1 be the encloser */
	off += l + 1;
	if (off >= nlen)
		return 1;
	s->q.nxd_off = off;
	slen = nlen - off;
	nw = slen / 8;
	rem = slen & 7;
	tmask = rem ? tail_mask(rem) : 0;
	last = rem ? nw + 1 : nw; /* words hashed */
	/* Word i counts when i < last; it is whole when i < nw, else the
	 * tail. Masks instead of branches: the loop is one straight path. */
	h = HASH_SEED ^ slen;
	for (__u64 i = 0; i < NAME_WORDS; i++) {
		__u64 whole = lt_mask(i, nw);

		if (i >= last)
			break;
		h = hash_word(h, key_word(s, off + i * 8) & (whole | (~whole & tmask)));
	}
	key = name_hash_type(h, 0);
	e = index_entry(gen, key, w->dnssec_ok);
	if (e < 0) {
		w->result = NXD_SEARCHING;
		return 0; /* not this one: the next suffix */
	}
	/* The closest encloser: check it is (the index holds hashes). */
	ref = ENTRY_REF(e);
	s->q.zone = ENTRY_ZONE(e);
	if (ref == REF_NONE)
		return 1;
	block = ref >> REF_BLOCK_SHIFT;
	roff = (ref & REF_OFFSET_MASK) * STORE_ALIGN;
	b = bpf_map_lookup_elem(store, &block);
	if (!b)
		return 1;
	a = (struct answer *)(b->bytes + roff);
	w->result = NXD_COLLISION;
	if (a->qtype != 0 || a->name_len != slen)
		return 1;
	for (__u64 i = 0; i < NAME_WORDS; i++) {
		__u64 whole = lt_mask(i, nw);

		if (i >= last)
			break;
		diff |= *(__u64 *)(b->bytes + roff + ANSWER_HDR_LEN + i * 8) ^
			(key_word(s, off + i * 8) & (whole | (~whole & tmask)));
	}
	if (diff)
		return 1;
	w->result = NXD_PASS;
	if ((a->flags & (ANSWER_WILD | ANSWER_PASS)) == ANSWER_WILD) {
		/* A wildcard child: nxd_find looks it up (s->q.nxd_off is
		 * this encloser's offset; nxd_hash its key, for a proof). */
		s->q.nxd_hash = key;
		w->result = NXD_WILD;
		return 1;
	}
	if ((a->flags & (ANSWER_REFERRAL | ANSWER_LINK | ANSWER_OVERSIZE | ANSWER_PASS)) == ANSWER_REFERRAL) {
		/* At or below a cut: its referral, moved (ref_patch). */
		w->ref = ref;
		w->result = NXD_REFERRAL;
		return 1;
	}
	if (w->dnssec_ok && (a->flags & (ANSWER_NXD3 | ANSWER_PASS)) == ANSWER_NXD3) {
		/* A signed zone's closest encloser: nsec3_nxd or nsec_nxd
		 * puts the signed NXDOMAIN together (s->q.nxd_off, nxd_prev
		 * and nxd_hash say where). */
		s->q.nxd_hash = key;
		w->result = NXD_NSEC3;
		return 1;
	}
	if ((a->flags & (ANSWER_LINK | ANSWER_NXD | ANSWER_PASS)) != (ANSWER_LINK | ANSWER_NXD))
		return 1;
	/* Its slot holds the ref of the zone's NXDOMAIN record. */
	ref = (__u32)a->an << 16 | a->ar;
	block = ref >> REF_BLOCK_SHIFT;
	b = bpf_map_lookup_elem(store, &block);
	if (!b)
		return 1;
	w->ref = reload(((struct answer_slot *)(b->bytes + (ref & REF_OFFSET_MASK) * STORE_ALIGN))->ref);
	w->result = NXD_FOUND;
	return 1;
}

/* The wildcard "*." + the closest encloser at s->q.nxd_off, for the
 * QTYPE asked (a global function: its stack is not added to nxd_find's,
 * which the walk's callback adds to): "\x01*" is written over the two bytes before the encloser
 * in s->key (the label dropped last is at least that long; the key is not
 * used for the answer), the suffix from there hashed and compared as in
 * nxd_step. Only a whole record marked ANSWER_WILD_SAFE answers: its
 * body points to the QNAME for the owner and nowhere else into the
 * question, so it is the engine's answer for this QNAME too. For a QTYPE
 * the wildcard has no entry of, its default entry answers when marked
 * ANSWER_WILD_NODATA: the NODATA, its pointers moved (ref_patch). Returns
 * NXD_WILD_REF | ref, NXD_WILD_REF | NXD_REFERRAL_REF | ref (the NODATA),
 * or NXD_NONE / NXD_CLASH. */
#define NXD_NONE (-1)
#define NXD_CLASH (-2)
#define NXD_WILD_REF (1L << 32)
#define NXD_REFERRAL_REF (1L << 33)
/* nxd_find found a signed zone's closest encloser (the caller asks
 * nsec3_nxd or nsec_nxd, nsec3.h); with NXD_WILD_REF, a wildcard's signed
 * NODATA there (nsec_nxd, RCODE 0). */
#define NXD_NSEC3_WALK (1L << 35)
__attribute__((noinline)) long wild_find(__u32 gen, __u32 dnssec_ok)
{
	struct scratch *s;
	__u32 zero = 0;
	__u64 nlen, off, slen, nw, rem, h, roff, tmask, last, diff = 0;
	__u16 qtype;
	long e;
	struct store_block *b;
	struct answer *a;
	void *store;
	__u32 ref, block;
	__u8 saved0, saved1;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return NXD_NONE;
	gen &= GENERATIONS - 1;
	store = bpf_map_lookup_elem(&answer_store, &gen);
	if (!store)
		return NXD_NONE;
	nlen = reload(s->q.nlen);
	off = reload(s->q.nxd_off);
	qtype = reload(s->q.qtype);
	if (nlen > MAX_NAME_LEN || off < 2 || off >= nlen)
		return NXD_NONE;
	off -= 2;
	/* Kept: a signed answer's proof reads the next closer label. */
	saved0 = ((__u8 *)s->key)[off & KEY_OFF_MASK];
	saved1 = ((__u8 *)s->key)[(off + 1) & KEY_OFF_MASK];
	((__u8 *)s->key)[off & KEY_OFF_MASK] = 1;
	((__u8 *)s->key)[(off + 1) & KEY_OFF_MASK] = '*';
	slen = nlen - off;
	nw = slen / 8;
	rem = slen & 7;
	tmask = rem ? tail_mask(rem) : 0;
	last = rem ? nw + 1 : nw;
	h = HASH_SEED ^ slen;
	for (__u64 i = 0; i < NAME_WORDS; i++) {
		__u64 whole = lt_mask(i, nw);

		if (i >= last)
			break;
		h = hash_word(h, key_word(s, off + i * 8) & (whole | (~whole & tmask)));
	}
	e = index_entry(gen, name_hash_type(h, qtype), dnssec_ok);
	if (e < 0 && qtype_defaultable(qtype)) {
		/* A type the wildcard lacks: its default entry, the NODATA. */
		qtype = 0;
		e = index_entry(gen, name_hash_type(h, 0), dnssec_ok);
	}
	if (e < 0)
		return NXD_NONE;
	ref = ENTRY_REF(e);
	if (ref == REF_NONE)
		return NXD_NONE;
	block = ref >> REF_BLOCK_SHIFT;
	roff = (ref & REF_OFFSET_MASK) * STORE_ALIGN;
	b = bpf_map_lookup_elem(store, &block);
	if (!b)
		return NXD_NONE;
	a = (struct answer *)(b->bytes + roff);
	if (a->qtype != qtype || a->name_len != slen)
		return NXD_CLASH;
	for (__u64 i = 0; i < NAME_WORDS; i++) {
		__u64 whole = lt_mask(i, nw);

		if (i >= last)
			break;
		diff |= *(__u64 *)(b->bytes + roff + ANSWER_HDR_LEN + i * 8) ^
			(key_word(s, off + i * 8) & (whole | (~whole & tmask)));
	}
	if (diff)
		return NXD_CLASH;
	((__u8 *)s->key)[off & KEY_OFF_MASK] = saved0;
	((__u8 *)s->key)[(off + 1) & KEY_OFF_MASK] = saved1;
	if (!qtype && dnssec_ok && (a->flags & ANSWER_WILD_PROOF)) {
		/* Signed (compile.Entry.WildNoDataSigned): the caller
		 * composes the NXDOMAIN's head and pieces under RCODE 0. */
		if (a->flags & (ANSWER_OVERSIZE | ANSWER_PASS))
			return NXD_NONE;
		return NXD_NSEC3_WALK | NXD_WILD_REF;
	}
	if (!qtype) {
		/* Moved by the labels in place of the '*', as a referral;
		 * passed when the next closer label is the one an SOA name
		 * has there (its two exception words, compile.LabelWord). */
		__u64 boff, lo, nc, nl, w;

		if ((a->flags & (ANSWER_WILD_NODATA | ANSWER_LINK | ANSWER_OVERSIZE | ANSWER_PASS)) != ANSWER_WILD_NODATA)
			return NXD_NONE;
		boff = roff + ANSWER_HDR_LEN + ((a->name_len + 7) & ~7);
		lo = ((a->body_len + 1) & ~1) + 2 + 2 * MAX_REF_PTRS;
		nc = reload(s->q.nxd_prev);
		if (a->name_len > MAX_NAME_LEN || lo > MAX_BODY_LEN - 16 || nc >= nlen)
			return NXD_NONE;
		nl = ((__u8 *)s->key)[nc & KEY_OFF_MASK];
		w = key_word(s, nc) & tail_mask(nl + 1 < 8 ? nl + 1 : 8);
		if (w == *(__u64 *)(b->bytes + boff + lo) || w == *(__u64 *)(b->bytes + boff + lo + 8))
			return NXD_NONE;
		return NXD_WILD_REF | NXD_REFERRAL_REF | ref;
	}
	if ((a->flags & (ANSWER_WILD_SAFE | ANSWER_LINK | ANSWER_OVERSIZE | ANSWER_PASS)) != ANSWER_WILD_SAFE)
		return NXD_NONE;
	return NXD_WILD_REF | ref;
}


/* The walk, as a global function: the verifier checks it once, on its
 * own, rather than once for every state the program reaches it in. It
 * returns the ref of the zone's NXDOMAIN record, or NXD_NONE / NXD_CLASH
 * (a hash hit on another name) to pass. */
__attribute__((noinline)) long nxd_find(__u32 gen, __u32 dnssec_ok)
{
	struct nxd_walk w = {.gen = gen, .dnssec_ok = dnssec_ok};
	struct scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return NXD_NONE;
	s->q.nxd_off = 0;
	bpf_loop(MAX_NXD_DEPTH, nxd_step, &w, 0);
	if (w.result == NXD_COLLISION)
		return NXD_CLASH;
	if (w.result == NXD_WILD)
		return wild_find(gen, dnssec_ok);
	if (w.result == NXD_REFERRAL)
		return NXD_REFERRAL_REF | w.ref;
	if (w.result == NXD_NSEC3)
		return NXD_NSEC3_WALK; /* the caller calls nsec3_nxd: a call less deep */
	if (w.result != NXD_FOUND)
		return NXD_NONE;
	return w.ref;
}

/* A referral answering a QNAME shift bytes longer than the name it was
 * compiled for (ANSWER_REFERRAL): its body, at packet offset pos, gets
 * shift added to each compression pointer the record lists after the body
 * (a count, then offsets from the body's first byte, host order; each
 * points into the QNAME's suffix or into the body, which both moved by
 * shift). Returns what that adds to the body's checksum (folded, the
 * record's csum convention: host-order words from the body's first byte),
 * or -1. One's-complement sums are byte-order independent, so a pointer at
 * an even offset adds the byte-swapped shift, one at an odd offset the
 * shift itself. A global function: verified once. */
__attribute__((noinline)) long ref_patch(struct xdp_md *ctx, __u32 gen, __u32 ref, __u32 pos, __u32 shift)
{
	__u32 block = ref >> REF_BLOCK_SHIFT;
	__u64 roff = (ref & REF_OFFSET_MASK) * STORE_ALIGN, boff, blen, lo, cnt, delta = 0;
	__u16 swapped = (__u16)((shift & 0xff) << 8 | (shift >> 8 & 0xff));
	struct store_block *b;
	struct answer *a;
	void *store;

	gen &= GENERATIONS - 1;
	store = bpf_map_lookup_elem(&answer_store, &gen);
	if (!store || shift > MAX_NAME_LEN)
		return -1;
	b = bpf_map_lookup_elem(store, &block);
	if (!b)
		return -1;
	a = (struct answer *)(b->bytes + roff);
	boff = roff + ANSWER_HDR_LEN + ((a->name_len + 7) & ~7);
	blen = a->body_len;
	lo = (blen + 1) & ~1;
	if (a->name_len > MAX_NAME_LEN || blen > MAX_BODY_LEN || lo > MAX_BODY_LEN - 2 - 2 * MAX_REF_PTRS)
		return -1;
	cnt = *(__u16 *)(b->bytes + boff + lo);
	for (__u32 i = 0; i < MAX_REF_PTRS; i++) {
		__u64 o, v;
		__be16 nv;

		if (i >= cnt)
			break;
		o = *(__u16 *)(b->bytes + boff + lo + 2 + i * 2);
		if (o + 2 > blen || o >= MAX_BODY_LEN)
			return -1;
		v = (__u64)b->bytes[boff + o] << 8 | b->bytes[boff + o + 1];
		nv = bpf_htons((__u16)(v + shift));
		if (bpf_xdp_store_bytes(ctx, pos + o, &nv, 2))
			return -1;
		delta += (o & 1) ? shift : swapped;
	}
	return csum_fold64(delta);
}

#endif
