/* Response rate limiting (docs/rrl.md): the XDP half of userspace/rrl.
 * Buckets live in rrl_buckets, shared with the Go server, which reads and
 * writes them through the loader with the same arithmetic (rrl.Params.Step):
 * a client network has one budget whichever of the two answers it. */
#ifndef XDPNS_RRL_H
#define XDPNS_RRL_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "maps.h"

/* Budgets (rrl.Kind). */
enum rrl_kind {
	RRL_KIND_ANSWER = 0,   /* NOERROR */
	RRL_KIND_NXDOMAIN = 1, /* NXDOMAIN */
	RRL_KIND_ERROR = 2,    /* any other RCODE */
	RRL_KINDS
};

/* Decisions (rrl.Decision). */
enum rrl_decision {
	RRL_SEND = 0,
	RRL_SLIP = 1, /* send the truncated response (TC=1) */
	RRL_DROP = 2,
};

#define RCODE_NXDOMAIN 3      /* RFC 1035 §4.1.1 */
#define RRL_BUCKETS 65536     /* client networks x kinds remembered (LRU) */
#define RRL_MAX_EXEMPT 256    /* exempt networks */
#define RRL_V4_MAPPED_BITS 96 /* IPv4 sits after ::ffff: */

/* rrl_params.flags */
#define RRL_ON 0x0001 /* limiting configured */

/* Key 0 of rrl_config (rrl.Params). */
struct rrl_params {
	__u64 interval[RRL_KINDS]; /* host order: ns of budget a response costs; 0: unlimited */
	__u64 window_ns;           /* host order: burst tolerance */
	__u32 slip;                /* every slip-th limited response is truncated; 0: none */
	__u8 v4_prefix;            /* client network: IPv4 prefix length */
	__u8 v6_prefix;            /* client network: IPv6 prefix length */
	__u16 flags;               /* host order: RRL_* */
};

/* A bucket's key (rrl.Key): the client network, host bits zero. */
struct rrl_key {
	__u8 net[16]; /* network order: IPv6, or IPv4 as ::ffff:a.b.c.d */
	__u32 kind;   /* host order: enum rrl_kind */
};

/* A bucket (rrl.Entry): the GCRA's theoretical arrival time. */
struct rrl_entry {
	__u64 tat;     /* host order: CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
	__u32 limited; /* host order: responses over the limit, for slip */
	__u32 pad;
};

/* An exempt network: an LPM trie key over the same 16-byte address. */
struct rrl_exempt_key {
	__u32 prefixlen; /* host order: bits, IPv4 ones + 96 */
	__u8 net[16];    /* network order */
};

/* Counters of rrl_stats, loader/rrl.go rrlStatNames in this order. */
enum rrl_stat {
	RRL_STAT_SENT = 0, /* limited kind, within the budget */
	RRL_STAT_SLIPPED,  /* over it, sent truncated */
	RRL_STAT_DROPPED,  /* over it, dropped (XDP_DROP) */
	RRL_STAT_EXEMPT,   /* from an exempt network */
	RRL_STAT_MAX
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rrl_params);
} rrl_config SEC(".maps");

/* Shared with the Go server (loader.XDP.RRLTable). Updates from CPUs and
 * from Go race without locks: two updates of one bucket at once can lose
 * one, which lets a response more through, never one less. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RRL_BUCKETS);
	__type(key, struct rrl_key);
	__type(value, struct rrl_entry);
} rrl_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, RRL_MAX_EXEMPT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rrl_exempt_key);
	__type(value, __u8);
} rrl_exempt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RRL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} rrl_stats SEC(".maps");

static __always_inline void rrl_count(enum rrl_stat st)
{
	__u32 key = st;
	__u64 *n = bpf_map_lookup_elem(&rrl_stats, &key);

	if (n)
		*n += 1;
}

/* rrl.Params.Step, the same arithmetic: a response costs interval ns; it
 * is sent while the bucket's TAT is at most window - interval ahead. */
static __always_inline int rrl_step(const struct rrl_params *c, struct rrl_entry *e,
				    __u64 interval, __u64 now)
{
	__u64 tat = e->tat;

	if (tat < now)
		tat = now;
	if (tat - now + interval > c->window_ns) {
		__u32 n = e->limited + 1;

		e->limited = n;
		if (c->slip && n % c->slip == 0)
			return RRL_SLIP;
		return RRL_DROP;
	}
	e->tat = tat + interval;
	return RRL_SEND;
}

/* Keeps the first bits of a 16-byte address, zeroes the rest. */
static __always_inline void rrl_mask(__u8 net[16], __u32 bits)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (bits >= 8)
			bits -= 8;
		else if (bits > 0) {
			net[i] &= (__u8)(0xff << (8 - bits));
			bits = 0;
		} else
			net[i] = 0;
	}
}

/* The bucket key of the query in the frame (not yet rewritten: its source
 * is the client), and the exempt check's key. Returns -1 when the frame
 * cannot be read (then nothing is limited). */
static __always_inline int rrl_key_of(struct xdp_md *ctx, struct scratch *s,
				      const struct rrl_params *c, __u32 kind,
				      struct rrl_key *key, struct rrl_exempt_key *ek)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 l3 = reload(s->p.l3_off);

	opaque(l3);
	if (l3 > MAX_L3_OFF)
		return -1;
	if (reload(s->p.v6)) {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(key->net, &ip6->saddr, 16);
	} else {
		struct iphdr *ip = data + l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		key->net[10] = 0xff;
		key->net[11] = 0xff;
		__builtin_memcpy(&key->net[12], &ip->saddr, 4);
	}
	ek->prefixlen = 128;
	__builtin_memcpy(ek->net, key->net, 16);
	rrl_mask(key->net, reload(s->p.v6) ? c->v6_prefix : RRL_V4_MAPPED_BITS + c->v4_prefix);
	key->kind = kind;
	return 0;
}

static __always_inline __u32 rrl_kind(__u16 rcode)
{
	return rcode == 0 ? RRL_KIND_ANSWER : rcode == RCODE_NXDOMAIN ? RRL_KIND_NXDOMAIN : RRL_KIND_ERROR;
}

/* Decides a response with this RCODE to the query in the frame. */
static __always_inline int rrl_check(struct xdp_md *ctx, struct scratch *s, __u16 rcode)
{
	struct rrl_exempt_key ek = {};
	struct rrl_key key = {};
	struct rrl_entry fresh = {}, *e;
	struct rrl_params *c;
	__u32 zero = 0, kind = rrl_kind(rcode);
	__u64 interval;
	int d;

	c = bpf_map_lookup_elem(&rrl_config, &zero);
	if (!c || !(c->flags & RRL_ON))
		return RRL_SEND;
	if (reload(s->q.cookie_valid)) {
		/* A valid server cookie proves the source address (RFC 7873):
		 * not limited, as in Go (server.limit). */
		rrl_count(RRL_STAT_EXEMPT);
		return RRL_SEND;
	}
	interval = c->interval[kind];
	if (!interval)
		return RRL_SEND;
	if (rrl_key_of(ctx, s, c, kind, &key, &ek))
		return RRL_SEND;
	if (bpf_map_lookup_elem(&rrl_exempt, &ek)) {
		rrl_count(RRL_STAT_EXEMPT);
		return RRL_SEND;
	}
	e = bpf_map_lookup_elem(&rrl_buckets, &key);
	if (e) {
		d = rrl_step(c, e, interval, bpf_ktime_get_ns());
	} else {
		d = rrl_step(c, &fresh, interval, bpf_ktime_get_ns());
		bpf_map_update_elem(&rrl_buckets, &key, &fresh, BPF_ANY);
	}
	rrl_count(d == RRL_SEND ? RRL_STAT_SENT : d == RRL_SLIP ? RRL_STAT_SLIPPED : RRL_STAT_DROPPED);
	return d;
}

/* Gives back what rrl_check charged for a response XDP then could not
 * send (the frame did not grow): Go answers the passed query and charges
 * it once. Slips and drops spent nothing but the slip count. */
static __always_inline void rrl_refund(struct xdp_md *ctx, struct scratch *s, int decision, __u16 rcode)
{
	struct rrl_exempt_key ek = {};
	struct rrl_key key = {};
	struct rrl_entry *e;
	struct rrl_params *c;
	__u32 zero = 0, kind = rrl_kind(rcode);
	__u64 interval;

	if (decision != RRL_SEND || reload(s->q.cookie_valid))
		return;
	c = bpf_map_lookup_elem(&rrl_config, &zero);
	if (!c || !(c->flags & RRL_ON))
		return;
	interval = c->interval[kind];
	if (!interval || rrl_key_of(ctx, s, c, kind, &key, &ek))
		return;
	e = bpf_map_lookup_elem(&rrl_buckets, &key);
	if (e && e->tat >= interval)
		e->tat -= interval;
}

#endif
