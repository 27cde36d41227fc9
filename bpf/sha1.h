/* SHA-1 (FIPS 180-4 §6.1) for NSEC3 owner hashes with iterations 0 (RFC
 * 5155 §5, which RFC 9276 §3.1 makes the only count a validator must
 * accept at full strength). Not for anything that needs collision
 * resistance: NSEC3 only needs the zone's own hash order. */
#ifndef XDPNS_SHA1_H
#define XDPNS_SHA1_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

#define SHA1_BLOCK 64  /* bytes per block */
#define SHA1_DIGEST 20 /* bytes of a digest */

static __always_inline __u32 rol32(__u32 x, int n)
{
	return (x << n) | (x >> (32 - n));
}

/* Round i of 80 (constant when unrolled: the branches fold away). The
 * empty asm ends each round with the state in registers: without it clang
 * interleaves rounds until their temporaries spill past the 512-byte BPF
 * stack. */
#define SHA1_ROUND(i)                                                                   \
	do {                                                                            \
		__u32 f_, k_, t_;                                                       \
		if ((i) >= 16)                                                          \
			w[(i) & 15] = rol32(w[((i) - 3) & 15] ^ w[((i) - 8) & 15] ^     \
					    w[((i) - 14) & 15] ^ w[(i) & 15], 1);       \
		if ((i) < 20) {                                                         \
			f_ = d ^ (b & (c ^ d));                                         \
			k_ = 0x5A827999;                                                \
		} else if ((i) < 40) {                                                  \
			f_ = b ^ c ^ d;                                                 \
			k_ = 0x6ED9EBA1;                                                \
		} else if ((i) < 60) {                                                  \
			f_ = (b & c) | (d & (b | c));                                   \
			k_ = 0x8F1BBCDC;                                                \
		} else {                                                                \
			f_ = b ^ c ^ d;                                                 \
			k_ = 0xCA62C1D6;                                                \
		}                                                                       \
		t_ = rol32(a, 5) + f_ + e + k_ + w[(i) & 15];                           \
		e = d;                                                                  \
		d = c;                                                                  \
		c = rol32(b, 30);                                                       \
		b = a;                                                                  \
		a = t_;                                                                 \
		asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e) : : "memory"); \
	} while (0)

#define SHA1_ROUNDS10(i)                                                                \
	do {                                                                            \
		SHA1_ROUND((i) + 0);                                                    \
		SHA1_ROUND((i) + 1);                                                    \
		SHA1_ROUND((i) + 2);                                                    \
		SHA1_ROUND((i) + 3);                                                    \
		SHA1_ROUND((i) + 4);                                                    \
		SHA1_ROUND((i) + 5);                                                    \
		SHA1_ROUND((i) + 6);                                                    \
		SHA1_ROUND((i) + 7);                                                    \
		SHA1_ROUND((i) + 8);                                                    \
		SHA1_ROUND((i) + 9);                                                    \
	} while (0)

/* Compresses the 64-byte block m (read as big-endian words) into h. w is
 * the message schedule's 16 words: scratch memory, not the stack, which
 * the rounds' spills would push past what a BPF call chain may use. */
static __always_inline void sha1_compress(__u32 h[5], const __u32 *m, __u32 *w)
{
	__u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

#pragma unroll
	for (int i = 0; i < 16; i++)
		w[i] = bpf_ntohl(m[i]);
	/* Spelled out: clang will not unroll 80 rounds, and a loop would index
	 * w by a variable and test the round's range at run time. */
	SHA1_ROUNDS10(0);
	SHA1_ROUNDS10(10);
	SHA1_ROUNDS10(20);
	SHA1_ROUNDS10(30);
	SHA1_ROUNDS10(40);
	SHA1_ROUNDS10(50);
	SHA1_ROUNDS10(60);
	SHA1_ROUNDS10(70);
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

static __always_inline void sha1_init(__u32 h[5])
{
	h[0] = 0x67452301;
	h[1] = 0xEFCDAB89;
	h[2] = 0x98BADCFE;
	h[3] = 0x10325476;
	h[4] = 0xC3D2E1F0;
}

#endif
