/* DNS cookies (RFC 7873) with RFC 9018 server cookies, as
 * userspace/cookie.Jar.Answer computes them: the same secrets (the loader
 * copies the jar's into cookie_config), the same SipHash-2-4 input, the
 * same age rules. The clock is CLOCK_BOOTTIME plus the offset to the wall
 * clock the loader writes (and refreshes), so XDP's seconds are Go's. */
#ifndef XDPNS_COOKIE_H
#define XDPNS_COOKIE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "maps.h"

#define COOKIE_CLIENT_LEN 8
#define COOKIE_SERVER_LEN 16 /* RFC 9018 */
#define COOKIE_MIN_SERVER 8  /* RFC 7873 §4: a server cookie is 8 to 32 bytes */
#define COOKIE_MAX_SERVER 32
#define COOKIE_VERSION 1
#define COOKIE_MAX_AGE 3600  /* RFC 9018 §4.3 */
#define COOKIE_MAX_AHEAD 300
#define COOKIE_RENEW_AGE 1800

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cookie_config);
} cookie_config SEC(".maps");

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                               \
	do {                                                                                   \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);                  \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                                       \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                                       \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);                  \
	} while (0)

/* SipHash-2-4 of the n (20 or 32) bytes in m, zero-padded to 5 words,
 * under the key k (two little-endian words). */
static __always_inline __u64 siphash24(const __u8 k[16], const __u64 m[5], __u64 n)
{
	__u64 k0 = *(const __u64 *)k, k1 = *(const __u64 *)(k + 8);
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	__u64 full = n / 8, w;

	for (__u64 i = 0; i < 4; i++) {
		if (i >= full)
			break;
		w = m[i];
		v3 ^= w;
		SIPROUND;
		SIPROUND;
		v0 ^= w;
	}
	w = (full < 4 ? m[full & 3] : 0) | n << 56;
	v3 ^= w;
	SIPROUND;
	SIPROUND;
	v0 ^= w;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The query's COOKIE option (s->q.cookie_off, cookie_len): what to answer
 * with goes to s->cookie_out (client cookie, server cookie) and
 * s->q.cookie_valid says whether the server cookie received was valid.
 * Returns 0, or a STAT_PASS_* reason: a malformed option (Go answers
 * FORMERR), or no valid server cookie while one is required (BADCOOKIE).
 * A global function: verified once. */
__attribute__((noinline)) int cookie_answer(struct xdp_md *ctx)
{
	struct cookie_config *c;
	struct scratch *s;
	__u32 zero = 0;
	__u64 len, now, slen, n, h;
	__u32 ts;
	int fresh = 0, valid = 0;

	s = bpf_map_lookup_elem(&scratch, &zero);
	c = bpf_map_lookup_elem(&cookie_config, &zero);
	if (!s || !c)
		return STAT_PASS_COOKIE;
	s->q.cookie_valid = 0;
	len = s->q.cookie_len & 63;
	if (len != s->q.cookie_len || (len != COOKIE_CLIENT_LEN &&
	    (len < COOKIE_CLIENT_LEN + COOKIE_MIN_SERVER || len > COOKIE_CLIENT_LEN + COOKIE_MAX_SERVER)))
		return STAT_PASS_COOKIE;
	if (len < COOKIE_CLIENT_LEN || bpf_xdp_load_bytes(ctx, s->q.cookie_off & 0xffff, s->cookie_in, len))
		return STAT_PASS_COOKIE;
	/* The hash's input: client cookie, the server cookie's first 8 bytes,
	 * the client's address (IPv4-mapped IPv6 as IPv4, as Go unmaps). */
	__builtin_memcpy(s->cookie_msg, s->cookie_in, 8);
	if (s->p.v6) {
		__u8 *a = (__u8 *)s->cookie_msg + 16;

		if (bpf_xdp_load_bytes(ctx, (s->p.l3_off & 0xff) + 8, a, 16))
			return STAT_PASS_COOKIE;
		n = 32;
		if (s->cookie_msg[2] == 0 && *(__u32 *)(a + 8) == bpf_htonl(0xffff)) {
			/* IPv4-mapped: the IPv4 address alone */
			*(__u32 *)a = *(__u32 *)(a + 12);
			n = 20;
		}
	} else {
		if (bpf_xdp_load_bytes(ctx, (s->p.l3_off & 0xff) + 12, (__u8 *)s->cookie_msg + 16, 4))
			return STAT_PASS_COOKIE;
		n = 20;
	}
	if (n == 20) {
		((__u32 *)s->cookie_msg)[5] = 0;
		s->cookie_msg[3] = 0;
	}
	s->cookie_msg[4] = 0;
	now = (__u64)((__s64)bpf_ktime_get_boot_ns() + c->clock_offset_ns) / 1000000000ULL;
	slen = len - COOKIE_CLIENT_LEN;
	if (slen == COOKIE_SERVER_LEN && s->cookie_in[8] == COOKIE_VERSION) {
		__s32 age;

		ts = (__u32)s->cookie_in[12] << 24 | (__u32)s->cookie_in[13] << 16 |
		     (__u32)s->cookie_in[14] << 8 | s->cookie_in[15];
		age = (__s32)((__u32)now - ts); /* RFC 1982 arithmetic */
		if (age <= COOKIE_MAX_AGE && age >= -COOKIE_MAX_AHEAD) {
			s->cookie_msg[1] = *(__u64 *)(s->cookie_in + 8); /* as received */
			h = *(__u64 *)(s->cookie_in + 16);
			if (siphash24(c->current, s->cookie_msg, n) == h) {
				valid = 1;
				fresh = age < COOKIE_RENEW_AGE;
			} else if ((c->flags & COOKIE_PREVIOUS) && siphash24(c->previous, s->cookie_msg, n) == h) {
				valid = 1;
			}
		}
	}
	__builtin_memcpy(s->cookie_out, s->cookie_in, 8);
	if (fresh) {
		__builtin_memcpy(s->cookie_out + 8, s->cookie_in + 8, 16);
	} else {
		__u8 *o = s->cookie_out + 8;

		ts = (__u32)now;
		o[0] = COOKIE_VERSION;
		o[1] = o[2] = o[3] = 0;
		o[4] = ts >> 24;
		o[5] = ts >> 16;
		o[6] = ts >> 8;
		o[7] = ts;
		s->cookie_msg[1] = *(__u64 *)o;
		*(__u64 *)(o + 8) = siphash24(c->current, s->cookie_msg, n);
	}
	s->q.cookie_valid = valid;
	if (!valid && (c->flags & COOKIE_REQUIRE))
		return STAT_PASS_COOKIE;
	return 0;
}

#endif
