// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Test programs for nsec3.h, run by loader/nsec3_test.go through
 * BPF_PROG_RUN: the packet is a frame of parameters, and the results are
 * written back into it. Not part of the fast path (nothing attaches
 * them); they check the SHA-1 and the search against Go's. */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "consts.h"
#include "dns.h"
#include "maps.h"
#include "nsec3.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The inner maps' value types in BTF whole (see xdpns.c). */
const struct answer *unused_answer __attribute__((unused));
const struct index_bucket *unused_index_bucket __attribute__((unused));
const struct index_val *unused_index_val __attribute__((unused));
const struct store_block *unused_store_block __attribute__((unused));
const struct nsec3_entry *unused_nsec3_entry __attribute__((unused));
const struct nsec3_zone *unused_nsec3_zone __attribute__((unused));
const struct nsec_ce *unused_nsec_ce __attribute__((unused));

/* nsec3_hash_test's frame: all little-endian. */
#define HT_MODE 0      /* u32: 0 copies the name only (the baseline), 1 hashes */
#define HT_OFF 4       /* u32: the suffix's offset in the name */
#define HT_NLEN 8      /* u32: the name's wire length */
#define HT_SALT_LEN 12 /* u32 */
#define HT_SALT 16     /* 32 bytes, zero-padded */
#define HT_NAME 48     /* 256 bytes: the name as sent (any case) */
#define HT_OUT 304     /* 20 bytes: the digest */
#define HT_KEY 324     /* 4 bytes pad, then 256 bytes: s->key as hashed */
#define HT_ITER (HT_KEY + 4 + 256) /* u32: iterations */
#define HT_LEN (HT_ITER + 4)

/* Copies the name into s->key as key_and_sum does (lowercased, the rest
 * of the key cleared), then hashes the suffix at HT_OFF. XDP_TX: done;
 * XDP_DROP: nsec3_hash refused; XDP_ABORTED: a malformed frame. */
SEC("xdp")
int nsec3_hash_test(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct scratch *s;
	__u32 zero = 0, mode, off, nlen, salt_len;
	__u64 nw;

	if (data + HT_LEN > end)
		return XDP_ABORTED;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return XDP_ABORTED;
	mode = *(__u32 *)(data + HT_MODE);
	off = *(__u32 *)(data + HT_OFF);
	nlen = *(__u32 *)(data + HT_NLEN);
	salt_len = *(__u32 *)(data + HT_SALT_LEN);
	if (nlen == 0 || nlen > MAX_NAME_LEN)
		return XDP_ABORTED;
	nw = (nlen + 7) / 8;
	for (__u32 i = 0; i < KEY_WORDS; i++) {
		__u64 w = 0;

		if (i < NAME_WORDS && i < nw)
			w = lower8(*(__u64 *)(data + HT_NAME + i * 8));
		if (i + 1 == nw)
			w &= tail_mask(nlen);
		s->key[i] = w;
	}
	for (__u32 j = 0; j < NSEC3_MAX_SALT / 8; j++)
		s->n3.salt[j] = *(__u64 *)(data + HT_SALT + j * 8);
	s->n3.salt[NSEC3_MAX_SALT / 8] = 0;
	s->n3.salt_len = salt_len;
	s->n3.iterations = *(__u32 *)(data + HT_ITER);
	s->q.nlen = nlen;
	for (__u32 i = 0; i < NAME_WORDS; i++)
		*(__u64 *)(data + HT_KEY + 4 + i * 8) = s->key[i];
	if (mode == 0)
		return XDP_TX;
	if (nsec3_hash(off) < 0)
		return XDP_DROP;
	for (int k = 0; k < 5; k++)
		*(__u32 *)(data + HT_OUT + k * 4) = s->n3.digest[k];
	return XDP_TX;
}

/* nsec3_find_test's frame: little-endian. */
#define FT_GEN 0     /* u32 */
#define FT_BASE 4    /* u32 */
#define FT_COUNT 8   /* u32 */
#define FT_TARGET 12 /* 20 bytes: the digest searched for */
#define FT_OUT 32    /* s64: nsec3_find's result */
#define FT_LEN 40

SEC("xdp")
int nsec3_find_test(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct scratch *s;
	__u32 zero = 0;

	if (data + FT_LEN > end)
		return XDP_ABORTED;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return XDP_ABORTED;
	for (int k = 0; k < 5; k++)
		s->n3.digest[k] = *(__u32 *)(data + FT_TARGET + k * 4);
	*(__s64 *)(data + FT_OUT) = nsec3_find(*(__u32 *)(data + FT_GEN), *(__u32 *)(data + FT_BASE),
					       *(__u32 *)(data + FT_COUNT));
	return XDP_TX;
}
