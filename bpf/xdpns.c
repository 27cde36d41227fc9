// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* xdpns fast path: answers UDP DNS queries from precompiled answers with
 * XDP_TX, byte for byte what the Go responder (userspace/responder) sends,
 * and passes everything it cannot answer exactly. docs/xdp.md describes the
 * maps and the ABI. */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "consts.h"
#include "csum.h"
#include "dns.h"
#include "maps.h"
#include "parse.h"
#include "stats.h"
#include "rrl.h"
#include "cookie.h"
#include "nsec3.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Put these structs in BTF whole: bpf2go generates their Go types, and the
 * inner map definitions only reach them through two pointers, which clang
 * emits as forward declarations. */
const struct answer *unused_answer __attribute__((unused));
const struct index_bucket *unused_index_bucket __attribute__((unused));
const struct index_val *unused_index_val __attribute__((unused));
const struct store_block *unused_store_block __attribute__((unused));
const struct answer_link *unused_answer_link __attribute__((unused));
const struct answer_slot *unused_answer_slot __attribute__((unused));
const struct nsec3_entry *unused_nsec3_entry __attribute__((unused));
const struct nsec3_zone *unused_nsec3_zone __attribute__((unused));
const struct nsec_ce *unused_nsec_ce __attribute__((unused));

/* Only the service addresses, when configured: those in the map, and
 * every address of a family whose wildcard the server listens on. */
static __always_inline int check_service_addr(void *data, void *data_end,
					      const struct config *cfg, struct scratch *s)
{
	struct service_addr key = {};
	__u64 l3 = reload(s->p.l3_off);

	if (cfg->flags & (reload(s->p.v6) ? CONFIG_ANY_V6 : CONFIG_ANY_V4))
		return 0;

	opaque(l3);
	if (l3 > MAX_L3_OFF)
		return STAT_ABORTED;
	if (reload(s->p.v6)) {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > data_end)
			return STAT_PASS_MALFORMED;
		__builtin_memcpy(key.addr, &ip6->daddr, 16);
	} else {
		struct iphdr *ip = data + l3;

		if ((void *)(ip + 1) > data_end)
			return STAT_PASS_MALFORMED;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &ip->daddr, 4);
	}
	if (!bpf_map_lookup_elem(&service_addrs, &key))
		return STAT_PASS_NOT_OURS;
	return 0;
}

/* Piece i of those nsec3_nxd chose (s->q.n3_ref), or NULL. */
static __always_inline struct answer *nsec3_piece(void *store, struct scratch *s, __u32 i)
{
	__u32 ref = reload(s->q.n3_ref[i & 3]), block = ref >> REF_BLOCK_SHIFT;
	struct store_block *b = bpf_map_lookup_elem(store, &block);

	if (!b)
		return NULL;
	return (struct answer *)(b->bytes + (ref & REF_OFFSET_MASK) * STORE_ALIGN);
}

/* The NSEC3 pieces nsec3_nxd chose (s->q.n3_ref): their total length in
 * the low 32 bits, their NSCOUNT above; a negative PASS reason when one
 * is missing or not stored. A global function: verified once. */
__attribute__((noinline)) long nsec3_pieces(__u32 g)
{
	struct scratch *s;
	void *store;
	__u32 zero = 0, n;
	__u64 total = 0, count = 0;

	g &= GENERATIONS - 1;
	s = bpf_map_lookup_elem(&scratch, &zero);
	store = bpf_map_lookup_elem(&answer_store, &g);
	if (!s || !store)
		return -STAT_PASS_NO_ENTRY;
	n = reload(s->q.n3_n);
	if (n == 0 || n > 3)
		return -STAT_PASS_NO_ENTRY;
	for (__u32 i = 0; i < 3; i++) {
		struct answer *p;

		if (i >= n)
			break;
		p = nsec3_piece(store, s, i);
		if (!p)
			return -STAT_PASS_NO_ENTRY;
		if ((p->flags & ANSWER_OVERSIZE) || p->body_len == 0 || p->body_len > MAX_BODY_LEN || p->name_len)
			return -STAT_PASS_OVERSIZE;
		total += p->body_len;
		count += bpf_ntohs(p->ns);
	}
	return (long)(count << 32 | total);
}

/* Writes the answer's tail, len bytes at packet offset off, where the
 * message has done bytes after its header: the link record's own part
 * (s->q.tail_kind 0: the record at tail_ref, from tail_off) or the NSEC3
 * pieces nsec3_nxd chose (1). Returns its checksum, each part's sum
 * added at the parity it lands on (folded), or -1. A global function,
 * so the program is verified through one call instead of a path per
 * kind of tail. */
__attribute__((noinline)) long write_tail(struct xdp_md *ctx, __u32 g, __u32 off, __u32 done, __u32 len)
{
	struct scratch *s;
	struct store_block *b;
	struct answer *p;
	void *store;
	__u32 zero = 0, n, ref, block, toff;
	__u64 acc = 0, l = len;

	g &= GENERATIONS - 1;
	s = bpf_map_lookup_elem(&scratch, &zero);
	store = bpf_map_lookup_elem(&answer_store, &g);
	if (!s || !store)
		return -1;
	opaque(l); /* two plain tests the verifier follows, not clang's one */
	if (l > MAX_TAIL_LEN)
		return -1;
	opaque(l);
	if (l == 0)
		return -1;
	if (reload(s->q.tail_kind) == 0) {
		ref = reload(s->q.tail_ref);
		toff = reload(s->q.tail_off);
		block = ref >> REF_BLOCK_SHIFT;
		b = bpf_map_lookup_elem(store, &block);
		if (!b || toff > ANSWER_HDR_LEN + NAME_WORDS * 8 + LINK_LEN)
			return -1;
		p = (struct answer *)(b->bytes + (ref & REF_OFFSET_MASK) * STORE_ALIGN);
		if (bpf_xdp_store_bytes(ctx, off, (__u8 *)p + toff, l))
			return -1;
		return csum_fold64(csum_add_at(0, p->csum, done & 1));
	}
	n = reload(s->q.n3_n);
	if (n > 3)
		return -1;
	for (__u32 i = 0; i < 3; i++) {
		__u32 plen;

		if (i >= n)
			break;
		p = nsec3_piece(store, s, i);
		if (!p)
			return -1;
		plen = p->body_len;
		if (plen == 0 || plen > MAX_BODY_LEN || bpf_xdp_store_bytes(ctx, off, (__u8 *)p + ANSWER_HDR_LEN, plen))
			return -1;
		acc = csum_add_at(acc, p->csum, done & 1);
		off += plen;
		done += plen;
	}
	return csum_fold64(acc);
}

/* Makes the frame new_len bytes long: at the tail, else at the head (moving
 * headers and question forward), else fails. */
static __always_inline int resize(struct xdp_md *ctx, const struct config *cfg,
				  struct scratch *s, __u64 new_len)
{
	long delta = (long)new_len - (long)reload(s->p.frame_len);
	__u64 plen = reload(s->p.dns_off) + DNS_HDR_LEN + reload(s->q.qlen);

	if (delta <= 0)
		return delta ? bpf_xdp_adjust_tail(ctx, (int)delta) : 0;
	if (delta > 0xffff)
		return -1;
	if (!(cfg->flags & CONFIG_NO_TAIL_GROW) && bpf_xdp_adjust_tail(ctx, (int)delta) == 0)
		return 0;
	if (plen > PREFIX_LEN || plen == 0)
		return -1;
	if (bpf_xdp_load_bytes(ctx, 0, s->prefix, plen))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)delta))
		return -1;
	return bpf_xdp_store_bytes(ctx, 0, s->prefix, plen);
}

/* Writes L2-L4 of the response (addresses and ports swapped) and returns the
 * UDP checksum's partial sum over pseudo header and UDP header. */
static __always_inline int write_l2_l4(void *data, void *data_end, struct scratch *s,
				       __u32 dns_len, __u64 *sum)
{
	struct ethhdr *eth = data;
	__u64 l3 = reload(s->p.l3_off), l4 = reload(s->p.l4_off);
	__u32 udp_len = UDP_HDR_LEN + dns_len;
	struct udphdr *udp;
	__u8 mac[ETH_ALEN];
	__u64 acc = 0;

	opaque(l3);
	opaque(l4);
	if (l3 > MAX_L3_OFF || l4 > MAX_L4_OFF)
		return -1;
	udp = data + l4;
	if ((void *)(eth + 1) > data_end || (void *)(udp + 1) > data_end)
		return -1;
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

	if (reload(s->p.v6)) {
		struct ipv6hdr *ip6 = data + l3;
		struct in6_addr a;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		*(__be32 *)ip6 = bpf_htonl(0x60000000); /* version 6, class 0, flow 0 */
		ip6->payload_len = bpf_htons(udp_len);
		ip6->hop_limit = REPLY_TTL;
#pragma unroll
		for (int i = 0; i < 4; i++)
			acc += (__u64)ip6->saddr.in6_u.u6_addr32[i] + ip6->daddr.in6_u.u6_addr32[i];
		acc += (__u64)bpf_htonl(udp_len) + bpf_htonl(IPPROTO_UDP_);
	} else {
		struct iphdr *ip = data + l3;
		__u64 ipsum = 0;
		__be32 a;

		if ((void *)(ip + 1) > data_end)
			return -1;
		a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tos = 0;
		ip->tot_len = bpf_htons(IPV4_HDR_LEN + udp_len);
		ip->id = 0;
		ip->frag_off = bpf_htons(IPV4_DF);
		ip->ttl = REPLY_TTL;
		ip->check = 0;
#pragma unroll
		for (int i = 0; i < IPV4_HDR_LEN / 2; i++)
			ipsum += ((__u16 *)ip)[i];
		ip->check = csum_finish(ipsum);
		acc += (__u64)ip->saddr + ip->daddr;
		acc += (__u64)bpf_htons(udp_len) + bpf_htons(IPPROTO_UDP_);
	}

	__be16 port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	udp->len = bpf_htons(udp_len);
	udp->check = 0;
	acc += (__u64)udp->source + udp->dest + udp->len;
	*sum = acc;
	return 0;
}

/* The OPT record we send (wire.appendOPT), with the COOKIE option when
 * cookie is set (s->cookie_out), zero-padded to OPT_BUF_LEN so the
 * checksum can take 16-bit words. */
#define COOKIE_OPT_LEN (OPT_OPTION_HDR + 24)
#define OPT_BUF_LEN 40 /* OPT_RR_LEN + COOKIE_OPT_LEN, rounded up to 2 */
static __always_inline void build_opt(__u8 opt[OPT_BUF_LEN], const struct config *cfg, __u64 dnssec_ok,
				      int cookie, const struct scratch *s)
{
	__builtin_memset(opt, 0, OPT_BUF_LEN);
	opt[2] = DNS_TYPE_OPT;            /* root owner, type */
	opt[3] = cfg->udp_payload >> 8;   /* our payload size */
	opt[4] = cfg->udp_payload & 0xff;
	opt[7] = dnssec_ok ? EDNS_DO >> 8 : 0; /* extended RCODE 0, version 0 */
	if (cookie) {
		opt[10] = COOKIE_OPT_LEN; /* RDLENGTH */
		opt[12] = EDNS_OPTION_COOKIE;
		opt[14] = 24;
		__builtin_memcpy(opt + OPT_RR_LEN + OPT_OPTION_HDR, s->cookie_out, 24);
	}
}

SEC("xdp")
int xdpns_answer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 key;
	long e;
	struct answer *a;
	void *index, *store;
	__u32 *gen, g;
	struct config *cfg;
	struct scratch *s;
	struct dnshdr *h;
	__u8 *body = NULL;
	__u8 *opt;
	__u64 optlen = 0;
	int cookie = 0;
	__u32 zero = 0, ref;
	__u64 qlen, edns, dnssec_ok, limit, full, len, blen = 0, tc = 0, off;
	__u64 tlen = 0, tl = 0, shift = 0;
	__u16 tail_ns = 0;
	__u16 want, qtype, arcount = 0, aflags, out_flags;
	__u64 sum;
	int r, collision = 0, nxd = 0, nodata = 0;

	cfg = bpf_map_lookup_elem(&config_map, &zero);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!cfg || !s)
		return PASS(STAT_PASS_NOT_OURS);

	r = parse_headers(ctx, cfg, &s->p);
	if (r)
		return PASS(r);
	if (cfg->flags & CONFIG_ADDR_FILTER) {
		r = check_service_addr(data, data_end, cfg, s);
		if (r)
			return PASS(r);
	}
	r = parse_dns_header(data, data_end, s, &arcount);
	if (r)
		return PASS(r);
	r = parse_question(ctx, s);
	if (r)
		return PASS(r);
	s->q.edns = 0;
	s->q.dnssec_ok = 0;
	s->q.has_cookie = 0;
	s->q.cookie_valid = 0;
	s->q.zone = 0;
	if (arcount) {
		r = parse_opt(data, data_end, s, cfg);
		if (r)
			return PASS(r);
	} else if (reload(s->p.dns_len) != DNS_HDR_LEN + reload(s->q.qlen)) {
		return PASS(STAT_PASS_TRAILING);
	}

	/* Lookup: (name, QTYPE), else the name's default entry when the QTYPE
	 * takes it; the DO=1 record when the client set DO. */
	if (key_and_sum(s))
		return count(STAT_ABORTED, XDP_ABORTED);
	qtype = reload(s->q.qtype);
	want = qtype;
	gen = bpf_map_lookup_elem(&active_gen, &zero);
	if (!gen)
		return PASS(STAT_PASS_NO_ENTRY);
	g = *gen & (GENERATIONS - 1);
	index = bpf_map_lookup_elem(&answer_buckets, &g);
	store = bpf_map_lookup_elem(&answer_store, &g);
	if (!index || !store)
		return PASS(STAT_PASS_NO_ENTRY); /* nothing loaded yet */
	key = name_hash_type(reload(s->q.name_hash), want);
	dnssec_ok = reload(s->q.dnssec_ok) & 1;
	e = index_entry(g, key, dnssec_ok);
	if (e < 0) {
		/* The name's default entry: its answer for this QTYPE, or,
		 * when there is none, the proof that the name does not exist
		 * (compile.Table.Lookup). An entry changed while we read is
		 * changed in its slot, so the key is not missed meanwhile, as
		 * it could be in a hash map (a lookup asked twice there). */
		want = 0;
		key = name_hash_type(reload(s->q.name_hash), want);
		e = index_entry(g, key, dnssec_ok);
		if (e < 0 && qtype_nxdable(qtype)) {
			long found = nxd_find(g, dnssec_ok);
			int pieces = 0;
			__u32 block;
			struct store_block *b;

			if (found > 0 && (found & NXD_NSEC3_WALK) && (found & NXD_WILD_REF)) {
				/* A signed wildcard NODATA (wild_find): the
				 * NXDOMAIN's head and pieces, RCODE 0; NSEC3 ones
				 * only from the encloser's nsec_ces entry, whose
				 * Wild is the wildcard's own NSEC3 (the fallback
				 * wants a cover, and passes). */
				found = nsec3_nxd(g);
				if (found == NXD_NOT_NSEC3)
					found = nsec_nxd(g);
				nodata = 1;
			} else if (found > 0 && (found & NXD_NSEC3_WALK)) {
				/* The signed NXDOMAIN's head, pieces chosen. */
				found = nsec3_nxd(g);
				if (found == NXD_NOT_NSEC3)
					found = nsec_nxd(g);
			}
			block = (__u32)found >> REF_BLOCK_SHIFT;
			if (found < 0)
				return PASS(found == NXD_CLASH ? STAT_PASS_COLLISION : STAT_PASS_NO_ENTRY);
			b = bpf_map_lookup_elem(store, &block);
			if (!b)
				return PASS(STAT_PASS_NO_ENTRY);
			a = (struct answer *)(b->bytes + ((__u32)found & REF_OFFSET_MASK) * STORE_ALIGN);
			s->q.body_off = ANSWER_HDR_LEN;
			nxd = 1;
			if (found & NXD_WILD_REF) {
				/* A wildcard's record: the body follows its name. */
				s->q.body_off = ANSWER_HDR_LEN + ((a->name_len + 7) & ~7);
				nxd = 2;
				if (a->flags & ANSWER_WILD_PROOF) {
					/* Signed: the proof that the QNAME does not
					 * exist, one piece, follows. */
					if (!dnssec_ok || wild_proof(g) < 0)
						return PASS(STAT_PASS_NO_ENTRY);
					pieces = 1;
				}
			}
			if (found & NXD_NSEC3_REF) {
				/* The zone's signed head (a shared record), then
				 * the NSEC3 or NSEC pieces chosen. */
				nxd = 1;
				pieces = 1;
			}
			if (pieces) {
				/* The pieces chosen (s->q.n3_ref) are the tail. */
				long pl = nsec3_pieces(g);

				if (pl < 0)
					return PASS(-pl);
				tlen = (__u32)pl;
				tail_ns = (__u16)(pl >> 32);
				s->q.tail_kind = 1;
			}
			if (found & NXD_REFERRAL_REF) {
				/* The cut's (or a name's below it): the body follows
				 * its name, moved by the labels in front of it. */
				s->q.body_off = ANSWER_HDR_LEN + ((a->name_len + 7) & ~7);
				nxd = 3;
				ref = (__u32)found;
				shift = reload(s->q.nxd_off);
				if (found & NXD_WILD_REF) {
					/* A wildcard's NODATA (wild_find): moved
					 * by the labels in place of its '*'. */
					nxd = 2;
					shift -= 2;
				}
			}
			goto compose;
		}
		if (e < 0 || !qtype_defaultable(qtype))
			return PASS(STAT_PASS_NO_ENTRY);
	}
	ref = ENTRY_REF(e);
	if (ref == REF_NONE)
		return PASS(STAT_PASS_NO_ENTRY);
	s->q.zone = ENTRY_ZONE(e);
	a = answer_at(store, ref, s, want, &collision);
	if (!a && collision) {
		/* The slot may have been freed and taken by another key
		 * between our reading its key and its value (loader updates
		 * run while we read). Look the key up again: it names the
		 * record written for it. */
		e = index_entry(g, key, dnssec_ok);
		if (e < 0)
			return PASS(STAT_PASS_COLLISION);
		ref = ENTRY_REF(e);
		if (ref == REF_NONE)
			return PASS(STAT_PASS_NO_ENTRY);
		s->q.zone = ENTRY_ZONE(e);
		collision = 0;
		a = answer_at(store, ref, s, want, &collision);
	}
	if (!a)
		return PASS(collision ? STAT_PASS_COLLISION : STAT_PASS_NO_ENTRY);
	if (a->flags & ANSWER_PASS)
		return PASS(STAT_PASS_NO_ENTRY);
	if (a->flags & ANSWER_LINK) {
		/* The link record's own part, if any, follows the link. */
		tlen = a->body_len;
		tail_ns = bpf_ntohs(a->ns);
		s->q.tail_kind = 0;
		s->q.tail_ref = ref;
		s->q.tail_off = reload(s->q.body_off) + LINK_LEN;
		a = follow_link(store, a, s);
		if (!a)
			return PASS(STAT_PASS_NO_ENTRY);
	}
compose:
	off = reload(s->q.body_off);
	if (off > ANSWER_HDR_LEN + NAME_WORDS * 8)
		return count(STAT_ABORTED, XDP_ABORTED);
	body = (__u8 *)a + off;

	/* Size: wire.Compose truncates to header, question and OPT when the
	 * whole answer exceeds the client's limit. */
	qlen = reload(s->q.qlen);
	edns = reload(s->q.edns);
	if (qlen > MAX_NAME_LEN + 4)
		return count(STAT_ABORTED, XDP_ABORTED);
	aflags = a->flags;
	if (nodata) {
		aflags &= ~ANSWER_RCODE_MASK;
		nxd = 2;
	}
	if (tlen > MAX_TAIL_LEN)
		return PASS(STAT_PASS_OVERSIZE);
	if (edns) {
		struct cookie_config *cc;

		optlen = OPT_RR_LEN;
		if (reload(s->q.has_cookie) && (cc = bpf_map_lookup_elem(&cookie_config, &zero)) &&
		    (cc->flags & COOKIE_ON)) {
			/* Cookies on (Go's server.cookies): the COOKIE option
			 * answered, as userspace/cookie.Jar.Answer. */
			r = cookie_answer(ctx);
			if (r)
				return PASS(r);
			cookie = 1;
			optlen = OPT_RR_LEN + COOKIE_OPT_LEN;
		}
	}
	full = DNS_HDR_LEN + qlen + a->body_len + tlen + optlen;
	limit = DNS_MIN_UDP_LIMIT;
	if (edns) {
		__u64 client = reload(s->q.udp_size);

		limit = client < cfg->udp_payload ? client : cfg->udp_payload;
		if (limit < DNS_MIN_UDP_LIMIT)
			limit = DNS_MIN_UDP_LIMIT;
	}
	if (full > limit && (aflags & ANSWER_EXTRA_OPT))
		return PASS(STAT_PASS_OVERSIZE); /* Go drops the optional records */
	if (full > limit && !a->ar &&
	    (((aflags & ANSWER_RCODE_MASK) == RCODE_NXDOMAIN && !a->an && bpf_ntohs(a->ns) + tail_ns > 1) ||
	     ((aflags & ANSWER_RCODE_MASK) == 0 && a->an && bpf_ntohs(a->ns) + tail_ns > 0) ||
	     ((aflags & ANSWER_RCODE_MASK) == 0 && !a->an && bpf_ntohs(a->ns) + tail_ns > 1)))
		return PASS(STAT_PASS_OVERSIZE); /* a signed NXDOMAIN, wildcard answer or NODATA:
						  * Go compresses it first (wire.UncompressedProof) */
	if (full > limit) {
		tc = 1;
		len = DNS_HDR_LEN + qlen + optlen;
	} else {
		if ((aflags & ANSWER_OVERSIZE) || a->body_len > MAX_BODY_LEN || full > cfg->max_dns)
			return PASS(STAT_PASS_OVERSIZE);
		len = full;
		blen = a->body_len;
		tl = tlen;
	}
	/* Response rate limiting (rrl.h), once XDP knows it answers: over the
	 * budget, drop, or slip to the truncated answer below. */
	r = rrl_check(ctx, s, aflags & ANSWER_RCODE_MASK);
	if (r == RRL_DROP)
		return XDP_DROP; /* counted in rrl_stats */
	if (r == RRL_SLIP && !tc) {
		tc = 1;
		len = DNS_HDR_LEN + qlen + optlen;
		blen = 0;
		tl = 0;
	}
	out_flags = DNS_QR | (reload(s->q.flags) & (DNS_RD | DNS_CD)) | (aflags & ANSWER_RCODE_MASK);
	if (aflags & ANSWER_AA)
		out_flags |= DNS_AA;
	if (tc)
		out_flags |= DNS_TC;
	__be16 an = tc ? 0 : a->an;
	__be16 ns = tc ? 0 : bpf_htons(bpf_ntohs(a->ns) + tail_ns);
	__u16 ar = tc ? 0 : bpf_ntohs(a->ar);
	__u16 body_csum = a->csum;

	if (resize(ctx, cfg, s, reload(s->p.dns_off) + len)) {
		rrl_refund(ctx, s, r, aflags & ANSWER_RCODE_MASK);
		return PASS(STAT_PASS_NO_ROOM);
	}

	/* From here the frame is ours. A failed bounds check cannot happen (the
	 * length was just set) but the verifier needs them: abort, never pass
	 * a half-written packet. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (write_l2_l4(data, data_end, s, len, &sum))
		return count(STAT_ABORTED, XDP_ABORTED);
	off = reload(s->p.dns_off);
	opaque(off);
	if (off > MAX_L4_END)
		return count(STAT_ABORTED, XDP_ABORTED);
	h = data + off;
	if ((void *)(h + 1) > data_end)
		return count(STAT_ABORTED, XDP_ABORTED);
	h->flags = bpf_htons(out_flags);
	h->ancount = an;
	h->nscount = ns;
	h->arcount = bpf_htons(ar + (edns ? 1 : 0));
	/* Header words (ID and QDCOUNT as received), the question as sent. */
	sum += (__u64)((__u32 *)h)[0] + ((__u32 *)h)[1] + ((__u32 *)h)[2];
	sum += reload(s->q.qsum);

	off += DNS_HDR_LEN + qlen;
	if (blen) {
		if (blen > MAX_BODY_LEN || bpf_xdp_store_bytes(ctx, off, body, blen))
			return count(STAT_ABORTED, XDP_ABORTED);
		if (shift) {
			long d = ref_patch(ctx, g, ref, off, shift);

			if (d < 0)
				return count(STAT_ABORTED, XDP_ABORTED);
			body_csum = csum_fold64((__u64)body_csum + (__u64)d);
		}
		sum = csum_add_at(sum, body_csum, qlen & 1);
		off += blen;
	}
	if (tl) {
		long ts = write_tail(ctx, g, off, qlen + blen, tl);

		if (ts < 0)
			return count(STAT_ABORTED, XDP_ABORTED);
		sum += ts;
		off += tl;
	}
	if (edns) {
		__u64 osum = 0;
		__u8 *o;

		opt = s->opt;
		build_opt(opt, cfg, dnssec_ok, cookie, s);
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		opaque(off);
		if (off > MAX_L4_END + DNS_HDR_LEN + MAX_NAME_LEN + 4 + MAX_BODY_LEN + MAX_TAIL_LEN)
			return count(STAT_ABORTED, XDP_ABORTED);
		o = data + off;
		if ((void *)(o + OPT_RR_LEN) > data_end)
			return count(STAT_ABORTED, XDP_ABORTED);
		if (cookie) {
			if ((void *)(o + OPT_RR_LEN + COOKIE_OPT_LEN) > data_end)
				return count(STAT_ABORTED, XDP_ABORTED);
			__builtin_memcpy(o, opt, OPT_RR_LEN + COOKIE_OPT_LEN);
		} else {
			__builtin_memcpy(o, opt, OPT_RR_LEN);
		}
#pragma unroll
		for (int i = 0; i < OPT_BUF_LEN / 2; i++)
			osum += ((__u16 *)opt)[i];
		sum = csum_add_at(sum, csum_fold64(osum), (qlen + blen + tl) & 1);
	}

	/* Pointers do not survive helpers that may change the packet. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	off = reload(s->p.l4_off);
	opaque(off);
	if (off > MAX_L4_OFF)
		return count(STAT_ABORTED, XDP_ABORTED);
	struct udphdr *udp = data + off;
	if ((void *)(udp + 1) > data_end)
		return count(STAT_ABORTED, XDP_ABORTED);
	udp->check = csum_finish_udp(sum);
	{
		__u64 *zc = bpf_map_lookup_elem(&zone_stats, &s->q.zone);

		if (zc)
			*zc += 1; /* per CPU: no atomic needed */
	}
	return count(tc ? STAT_TX_TRUNCATED : nxd == 3 ? STAT_TX_REFERRAL : nxd == 2 ? STAT_TX_WILDCARD : nxd ? STAT_TX_NXDOMAIN : STAT_TX_ANSWER, XDP_TX);
}
