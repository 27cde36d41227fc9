/* Maps of the fast path. Sizes marked "set by the loader" are placeholders
 * that loader/ replaces on the spec before loading (and checks). */
#ifndef XDPNS_MAPS_H
#define XDPNS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "consts.h"

/* Runtime configuration (struct config), one element. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config_map SEC(".maps");

/* Answers come in generations: a full reload fills the maps of the idle
 * generation, then flips active_gen. Each generation is a pair of inner
 * maps, created by the loader at the size the answers need. */

/* (name, QTYPE) to the records answering it: buckets of hashed keys
 * (abi.h struct index_bucket). Mmapable, written by the loader in place:
 * 20 bytes a slot, where a preallocated hash map took about 90 an entry
 * and a syscall to fill. */
struct index_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1); /* per generation, set by the loader */
	__type(key, __u32);
	__type(value, struct index_bucket);
};

/* Records (struct answer, name, body) packed in blocks. Mmapable: the loader
 * writes records straight into it, then publishes them through the index.
 * BPF_F_INNER_MAP lets generations differ in size. */
struct store_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1); /* per generation, set by the loader */
	__type(key, __u32);
	__type(value, struct store_block);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, GENERATIONS);
	__type(key, __u32);
	__array(values, struct index_inner);
} answer_buckets SEC(".maps"); /* was answer_index, a hash: renamed so that no
				* pin of the old layout is adopted */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, GENERATIONS);
	__type(key, __u32);
	__array(values, struct store_inner);
} answer_store SEC(".maps");

/* Key 0: the generation served (0 or 1). One aligned word, so a reader
 * sees the old or the new value, never a mix. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} active_gen SEC(".maps");

/* Destination addresses answered when CONFIG_ADDR_FILTER is set. */
#define MAX_SERVICE_ADDRS 64
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICE_ADDRS);
	__type(key, struct service_addr);
	__type(value, __u8);
} service_addrs SEC(".maps");

/* Verdict counters (enum stat). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, enum stat);
	__type(value, __u64);
} stats SEC(".maps");

/* Answers sent per zone (index_val.zone), per CPU: per-zone query
 * counters for the metrics. max_entries is set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DEFAULT_MAX_ZONES);
	__type(key, __u32);
	__type(value, __u64);
} zone_stats SEC(".maps");

/* What the parse learned about the query packet. */
struct pkt {
	__u64 frame_len; /* data_end - data, Ethernet padding included */
	__u64 l3_off;    /* IP header */
	__u64 l4_off;    /* UDP header */
	__u64 dns_off;   /* DNS header */
	__u64 dns_len;   /* DNS message: UDP length less its header */
	__u64 v6;        /* IPv6, else IPv4 */
};

/* What the DNS gate learned about the query. */
struct query {
	__u64 nlen;      /* QNAME wire length, root included */
	__u64 qlen;      /* question: nlen + QTYPE + QCLASS */
	__u64 flags;     /* header flags as received, host order */
	__u64 qtype;     /* host order */
	__u64 udp_size;  /* the client's EDNS payload size, host order */
	__u64 edns;      /* an OPT was present */
	__u64 dnssec_ok; /* its DO bit */
	__u64 name_hash; /* hash of the lowercased name (name_hash_type adds QTYPE) */
	__u64 qsum;      /* one's-complement partial sum of the question */
	__u64 body_off;  /* offset of the body in the answer record */
	__u64 nxd_off;   /* nxd_step: the label it drops next, in key */
	__u64 has_cookie;   /* a COOKIE option: the first one's data at cookie_off */
	__u64 cookie_off;   /* its data's offset in the packet */
	__u64 cookie_len;   /* its data's length */
	__u64 cookie_valid; /* cookie_answer: the server cookie received was valid */
	__u32 zone;         /* the answer's zone (index_val.zone): counted in zone_stats,
			     * looked up from here (no stack) */
	__u32 n3_n;         /* nsec3_nxd: pieces in n3_ref */
	__u64 nxd_prev;     /* nxd_step: the offset before nxd_off (the next closer name) */
	__u64 nxd_hash;     /* nxd_step: the closest encloser's index key (NXD_NSEC3) */
	__u32 n3_ref[4];    /* nsec3_nxd: refs of the NSEC3 pieces, in answer order */
	__u32 tail_kind;    /* write_tail: 0 the link record's own part, 1 NSEC3 pieces */
	__u32 tail_ref;     /* kind 0: the link record */
	__u32 tail_off;     /* kind 0: where its part starts in it */
	__u32 tail_pad;
};

/* Per-packet working memory. Parse results live here rather than on the
 * stack on purpose: read back through memory (reload()), they are unknown
 * to the verifier, so the paths out of a parse loop merge instead of each
 * being verified again through the rest of the program; every use bounds
 * them explicitly. Per-CPU arrays are preallocated, so the lookup fails only
 * if the index is out of range. */
#define KEY_OFF_MASK 511 /* nxd_step loads 8 bytes at (offset & this) */
#define KEY_WORDS ((KEY_OFF_MASK + 1 + 8) / 8)
#define PREFIX_LEN 352 /* >= MAX_L4_END + DNS_HDR_LEN + MAX question, 8-aligned */

/* NSEC3 hashing (nsec3.h): the message SHA-1 reads, 5 blocks: a 255-byte
 * suffix of the QNAME, a salt of at most NSEC3_MAX_SALT bytes (longer:
 * Go answers), the 0x80 byte and the 64-bit length. */
#define NSEC3_MSG_WORDS 40
struct nsec3_work {
	__u64 msg[NSEC3_MSG_WORDS];
	__u64 salt[NSEC3_MAX_SALT / 8 + 1]; /* the zone's salt, zero-padded */
	__u64 salt_len;
	__u64 iterations; /* the zone's NSEC3 iterations (<= NSEC3_MAX_ITERATIONS) */
	__u32 digest[5]; /* the hash: its 20 bytes in order */
	__u32 h[5];      /* SHA-1 state */
	__u32 w[16];     /* SHA-1 message schedule */
};

struct scratch {
	struct pkt p;
	struct query q;
	union {
		__u8 b[QBUF_LEN];
		__u64 w[QBUF_WORDS];
	} qbuf;                    /* the question as sent */
	__u64 key[KEY_WORDS];      /* the name lowercased, zero-padded; room for
				    * nxd_step's loads at any offset & KEY_OFF_MASK */
	__u8 prefix[PREFIX_LEN];   /* headers and question, for head growth */
	__u8 cookie_in[64];        /* cookie.h: the COOKIE option's data */
	__u64 cookie_msg[5];       /* SipHash input */
	__u8 cookie_out[24];       /* the client cookie and server cookie answered */
	__u8 opt[40];              /* the OPT record sent (build_opt), off the stack */
	struct nsec3_work n3;      /* nsec3.h */
};

/* Reads a scratch field from memory, never from a register copy. */
#define reload(x) (*(volatile typeof(x) *)&(x))

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

#endif
