/* Header parsing with a cursor (xdp-tutorial parsing_helpers style): each step
 * checks its bounds, advances, and returns 0 or the stat to pass with. Offsets
 * are kept as numbers as well, since pointers die when the frame is resized. */
#ifndef XDPNS_PARSE_H
#define XDPNS_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

#include "abi.h"
#include "consts.h"
#include "csum.h"
#include "maps.h"

struct vlan_tag {
	__be16 tci;
	__be16 proto; /* encapsulated EtherType */
};

struct cursor {
	void *pos;
	void *end;
};

/* Ethernet and up to MAX_VLAN_TAGS tags; *proto is the inner EtherType. */
static __always_inline int parse_l2(struct cursor *c, __be16 *proto)
{
	struct ethhdr *eth = c->pos;
	__be16 p;

	if ((void *)(eth + 1) > c->end)
		return STAT_PASS_NOT_IP;
	p = eth->h_proto;
	c->pos = eth + 1;
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_tag *v = c->pos;

		if (p != bpf_htons(ETH_P_8021Q_) && p != bpf_htons(ETH_P_8021AD_))
			break;
		if ((void *)(v + 1) > c->end)
			return STAT_PASS_NOT_IP;
		p = v->proto;
		c->pos = v + 1;
	}
	*proto = p; /* still a tag after MAX_VLAN_TAGS: not IP, passed */
	return 0;
}

/* IPv4 without options or fragments, carrying UDP; *plen is the IP payload
 * length. The header checksum is checked: the kernel drops bad ones. */
static __always_inline int parse_ipv4(struct cursor *c, __u32 *plen)
{
	struct iphdr *ip = c->pos;
	__u32 tot, avail = c->end - c->pos;
	__u64 sum = 0;

	if ((void *)(ip + 1) > c->end)
		return STAT_PASS_MALFORMED;
	if (ip->version != 4)
		return STAT_PASS_MALFORMED;
	if (ip->ihl != IPV4_HDR_LEN / 4)
		return STAT_PASS_IP_OPTIONS;
	if (ip->frag_off & bpf_htons(IPV4_FRAG_MASK))
		return STAT_PASS_FRAGMENT;
	if (ip->protocol != IPPROTO_UDP_)
		return STAT_PASS_NOT_UDP;
	/* Not strict equality: Ethernet pads short frames. */
	tot = bpf_ntohs(ip->tot_len);
	if (tot < IPV4_HDR_LEN + UDP_HDR_LEN || tot > avail)
		return STAT_PASS_MALFORMED;
#pragma unroll
	for (int i = 0; i < IPV4_HDR_LEN / 2; i++)
		sum += ((__u16 *)ip)[i];
	if (csum_fold64(sum) != 0xffff)
		return STAT_PASS_MALFORMED;
	*plen = tot - IPV4_HDR_LEN;
	c->pos = ip + 1;
	return 0;
}

/* IPv6 headers that may sit between the fixed header and UDP. */
static __always_inline int ipv6_ext(__u8 nh)
{
	switch (nh) {
	case 0:   /* hop-by-hop */
	case 43:  /* routing */
	case 50:  /* ESP */
	case 51:  /* AH */
	case 60:  /* destination options */
	case 135: /* mobility */
	case 139: /* HIP */
	case 140: /* shim6 */
		return 1;
	}
	return 0;
}

/* IPv6 with UDP right after the fixed header (no extension headers). */
static __always_inline int parse_ipv6(struct cursor *c, __u32 *plen)
{
	struct ipv6hdr *ip6 = c->pos;
	__u32 avail = c->end - c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return STAT_PASS_MALFORMED;
	if (ip6->version != 6)
		return STAT_PASS_MALFORMED;
	if (ip6->nexthdr == 44) /* fragment header */
		return STAT_PASS_FRAGMENT;
	if (ipv6_ext(ip6->nexthdr))
		return STAT_PASS_IP_OPTIONS;
	if (ip6->nexthdr != IPPROTO_UDP_)
		return STAT_PASS_NOT_UDP;
	*plen = bpf_ntohs(ip6->payload_len);
	if (*plen + IPV6_HDR_LEN > avail)
		return STAT_PASS_MALFORMED;
	c->pos = ip6 + 1;
	return 0;
}

/* UDP to our port whose length matches the IP payload exactly. */
static __always_inline int parse_udp(struct cursor *c, const struct config *cfg,
				     __u32 plen, __u64 *dns_len)
{
	struct udphdr *udp = c->pos;
	__u32 len;

	if ((void *)(udp + 1) > c->end)
		return STAT_PASS_MALFORMED;
	if (udp->dest != cfg->port || cfg->port == 0)
		return STAT_PASS_NOT_OURS;
	len = bpf_ntohs(udp->len);
	if (len != plen || len < UDP_HDR_LEN + DNS_HDR_LEN)
		return STAT_PASS_MALFORMED;
	*dns_len = len - UDP_HDR_LEN;
	c->pos = udp + 1;
	return 0;
}

/* Parses Ethernet to the DNS header. Returns 0 or the stat to pass with. */
static __always_inline int parse_headers(struct xdp_md *ctx, const struct config *cfg,
					 struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	struct cursor c = {.pos = data, .end = (void *)(long)ctx->data_end};
	__u32 plen = 0;
	__be16 proto;
	int r;

	p->frame_len = c.end - c.pos;
	r = parse_l2(&c, &proto);
	if (r)
		return r;
	p->l3_off = c.pos - data;
	p->v6 = 0;
	if (proto == bpf_htons(ETH_P_IPV4)) {
		r = parse_ipv4(&c, &plen);
	} else if (proto == bpf_htons(ETH_P_IPV6_)) {
		p->v6 = 1;
		r = parse_ipv6(&c, &plen);
	} else {
		return STAT_PASS_NOT_IP;
	}
	if (r)
		return r;
	p->l4_off = c.pos - data;
	r = parse_udp(&c, cfg, plen, &p->dns_len);
	if (r)
		return r;
	p->dns_off = c.pos - data;
	return 0;
}

#endif
