/* What crosses the kernel/user line. bpf2go generates the Go mirror types
 * (loader/xdpns_bpfel.go); the loader builds values with them. The program is
 * built for little-endian targets only (bpfel): "host order" below means
 * little-endian, "network order" big-endian as on the wire. */
#ifndef XDPNS_ABI_H
#define XDPNS_ABI_H

#include <linux/types.h>

/* The answer store is an mmapable array of blocks. A record starts at an
 * 8-byte aligned offset below STORE_BLOCK_LEN and may run into the block's
 * slack, which is sized so the verifier can bound every access by constants. */
#define STORE_BLOCK_SHIFT 16
#define STORE_BLOCK_LEN (1 << STORE_BLOCK_SHIFT) /* addressable start offsets */
#define STORE_ALIGN 8                            /* record alignment */
#define ANSWER_HDR_LEN 16                        /* sizeof(struct answer) */
#define MAX_BODY_LEN 2048                        /* larger bodies: ANSWER_OVERSIZE */
#define LINK_LEN 8                               /* sizeof(struct answer_link) */
#define MAX_TAIL_LEN (MAX_BODY_LEN - LINK_LEN)   /* a link record fits the slack too */
#define NAME_WORDS 32                            /* 255-byte name in u64 words */
#define STORE_SLACK (ANSWER_HDR_LEN + NAME_WORDS * 8 + MAX_BODY_LEN)
#define STORE_VALUE_LEN (STORE_BLOCK_LEN + STORE_SLACK)

/* Generations of answer maps (see maps.h): the served one and the next. */
#define GENERATIONS 2

/* A ref names a record: its offset in the store divided by STORE_ALIGN
 * (block = ref >> REF_BLOCK_SHIFT). REF_NONE: no answer for this DO. */
#define REF_BLOCK_SHIFT (STORE_BLOCK_SHIFT - 3)
#define REF_OFFSET_MASK ((1 << REF_BLOCK_SHIFT) - 1)
#define REF_NONE 0xFFFFFFFF

/* answer.flags */
#define ANSWER_RCODE_MASK 0x000F /* low 4 bits of the RCODE */
#define ANSWER_AA 0x0010         /* authoritative answer */
#define ANSWER_OVERSIZE 0x0020   /* body_len > MAX_BODY_LEN: not stored; TC only */
#define ANSWER_LINK 0x0040       /* body shared: struct answer_link follows the name */
#define ANSWER_NXD 0x0080        /* on a link: names below without entries get the
				  * zone's NXDOMAIN record, whose slot is an << 16 | ar */
#define ANSWER_EXTRA_OPT 0x0200  /* the additional records are optional (NS target
				  * addresses): over the client's limit Go sends the
				  * answer without them, so pass rather than truncate */
#define ANSWER_WILD 0x0400       /* on a default entry: names below without entries,
				  * whose closest encloser this is, are answered from
				  * the wildcard "*." + this name (compile.Entry.Wild) */
#define ANSWER_WILD_SAFE 0x0800  /* on a wildcard's entry: the body answers every
				  * name it synthesises (compile.Entry.WildSafe) */
#define ANSWER_REFERRAL 0x1000   /* on a default entry at or below a cut: names below
				  * without entries, whose closest encloser this is,
				  * get this body with every pointer the list after
				  * it names moved by the extra QNAME length
				  * (compile.Entry.Referral) */
#define MAX_REF_PTRS 32          /* pointers a referral record lists at most */
#define ANSWER_NXD3 0x2000       /* on a DO=1 default entry of an NSEC3 zone (iterations 0):
				  * names below without entries, whose closest encloser
				  * this is, get the zone's signed NXDOMAIN, put together
				  * from its head and NSEC3 pieces (nsec3.h nsec3_nxd,
				  * compile.Entry.NXD) */
#define ANSWER_WILD_PROOF 0x4000 /* on a wildcard's DO=1 entry (with WILD_SAFE): the body is
				  * the answer section; the proof that the QNAME does not
				  * exist follows, one piece chosen per QNAME (nsec3.h
				  * wild_proof, compile's wildproof.go); on a wildcard's
				  * DO=1 default entry of an NSEC zone: a QNAME it synthesises
				  * gets, for a type it lacks, the NXDOMAIN's head and pieces
				  * under RCODE 0 (compile.Entry.WildNoDataSigned) */
#define ANSWER_WILD_NODATA 0x8000 /* on a wildcard's DO=0 default entry: the NODATA it gives
				   * for types it has no entry of; a QNAME it synthesises
				   * gets it with every pointer the list after the body
				   * names moved by the QNAME's extra length, as a
				   * referral's (compile.Entry.WildNoData) */
#define ANSWER_PASS 0x0100       /* no answer: pass this name and, for the walk to a
				  * closest encloser, the names below it */

/* Index value: the records answering DO=0 and DO=1 queries. An unsigned zone
 * points both at one record (its answers do not depend on DO). */
struct index_val {
	__u32 ref[2]; /* host order; [0]: DO=0, [1]: DO=1 */
	__u32 zone;   /* host order: the zone's slot in zone_stats (0: none) */
};

/* The index is an array of buckets (maps.h answer_buckets): a key is the
 * 64-bit name hash (loader/hash.go, dns.h name_hash_type) of the lowercased
 * wire name and QTYPE (0: the name's default entry), never 0, which marks a
 * free slot. A key sits in one of two buckets, chosen by the high and the
 * low 32 bits of the hash (index_home); bucket 0 is the header, its key[0]
 * the number of buckets after it. The loader writes slots through a
 * mapping: a value before its key, the key with one aligned store. Keys
 * first, so that a bucket's scan reads two cache lines. */
#define INDEX_SLOTS 16
struct index_bucket {
	__u64 key[INDEX_SLOTS]; /* host order; 0: free */
	struct index_val val[INDEX_SLOTS];
};

/* Slots of zone_stats by default (loader.Config.MaxZones sets it); zone 0
 * counts zones beyond. */
#define DEFAULT_MAX_ZONES 65536

/* A record in the store: this header, the lowercased wire name zero-padded to
 * 8 bytes (checked on every hit: the index holds hashes only), the body
 * (answer, authority and additional records as they follow the question,
 * userspace/wire.Body.Bytes). */
struct answer {
	__u16 body_len; /* host order: bytes of body (even when OVERSIZE) */
	__u16 flags;    /* host order: ANSWER_* */
	__be16 an;      /* network order: ANCOUNT */
	__be16 ns;      /* network order: NSCOUNT */
	__be16 ar;      /* network order: ARCOUNT, our OPT not counted */
	__u16 qtype;    /* host order: QTYPE answered, 0 for the default entry */
	__u16 csum;     /* host order: folded one's-complement sum of the body
			 * read as host-order 16-bit words from its first byte
			 * (odd tail padded with zero), what csum_partial gives */
	__u8 name_len;  /* wire name length, root label included */
	__u8 pad;
};

/* Plain NODATA answers (only the SOA in authority) of a zone are the same
 * bytes for every name of one QNAME length, and change with every SOA. Such a
 * name's record holds no body: its header carries ANSWER_LINK and after the
 * name comes this link to a slot, an 8-byte word in the store holding the ref
 * of the shared record (a struct answer with name_len 0, qtype 0, then the
 * body). A new SOA is one new shared record per length and one aligned 4-byte
 * store to each slot, not a rewrite of every name.
 *
 * Signed NODATA answers (DO=1) start the same way for every name of one
 * length (the SOA and its RRSIGs: the shared record) and end with the name's
 * own NSEC or NSEC3 proof, whose compression pointers point into the question
 * or into the proof itself. That tail follows the link; the link record's
 * body_len, ns and csum are the tail's (all zero without one), the other
 * fields but qtype and name_len unused. The answer is the shared body, then
 * the tail, with NSCOUNT the sum. */
struct answer_link {
	__u32 slot; /* host order: ref of the struct answer_slot */
	__u32 pad;
};

struct answer_slot {
	__u32 ref; /* host order: ref of the shared record; written atomically */
	__u32 pad;
};

/* One block of the answer store. */
struct store_block {
	__u8 bytes[STORE_VALUE_LEN];
};

/* NSEC3 (nsec3.h). One NSEC3 record of a zone: its owner's hash and the
 * ref of its piece, a shared record holding the NSEC3 and its RRSIGs
 * uncompressed. Per generation the zones' entries sit in one array, each
 * zone's in a range [base, base + count) sorted by hash. The children of
 * NSEC zones' closest enclosers sit there too (struct nsec_ce). */
#define NSEC3_HASH_LEN 20
#define NSEC3_MAX_SALT 32 /* longer salts: Go answers */
#define NSEC3_MAX_ITERATIONS 50 /* more: Go answers (each is one SHA-1 block per name
				 * hashed, ~0.2 us, in the NIC's softirq) */
struct nsec3_entry {
	__u8 hash[NSEC3_HASH_LEN];
	__u32 ref; /* host order */
};

/* A zone's NSEC3 parameters in a generation, by its zone_stats slot. */
struct nsec3_zone {
	__u32 head_slot; /* host order: slot of the signed NXDOMAIN head (SOA, RRSIGs) */
	__u32 base;      /* host order: its first entry */
	__u32 count;     /* host order: its entries */
	__u32 salt_len;  /* host order */
	__u8 salt[NSEC3_MAX_SALT]; /* zero-padded */
	__u32 iterations; /* host order: additional hashes (RFC 5155 §5) */
	__u32 pad;
};

/* NSEC (nsec3.h nsec_nxd). A closest encloser of an NSEC zone whose
 * signed NXDOMAIN is composed, by its index key (name, type 0): its
 * children's entries are the range [base, base + count) of the NSEC3
 * array, sorted canonically, each a label key (NSEC_LABEL_PREFIX bytes of
 * the lowercased label, zero-padded, then its length) in place of a hash
 * and the ref of the piece (NSEC and RRSIGs) covering the names after
 * that child's subtree and before the next child. */
#define NSEC_LABEL_PREFIX 19
struct nsec_ce {
	__u32 head_slot; /* host order: slot of the zone's signed head (SOA, RRSIGs) */
	__u32 base;      /* host order */
	__u32 count;     /* host order */
	__u32 self_ref;  /* host order: piece covering the names before the first child */
	__u32 wild_ref;  /* host order: piece covering "*." + the encloser */
	__u32 zone;      /* host order: the zone's zone_stats slot */
};

/* config.flags */
#define CONFIG_NSID 0x0001         /* NSID is configured: NSID queries go to Go */
#define CONFIG_ADDR_FILTER 0x0002  /* answer only for service_addrs */
#define CONFIG_NO_TAIL_GROW 0x0004 /* grow at the head only (tests, odd drivers) */
#define CONFIG_ANY_V4 0x0008       /* with ADDR_FILTER: every IPv4 address is ours */
#define CONFIG_ANY_V6 0x0010       /* with ADDR_FILTER: every IPv6 address is ours */

/* Runtime configuration, key 0 of the config array. port 0: serve nothing. */
struct config {
	__be16 port;         /* network order: UDP port served */
	__u16 udp_payload;   /* host order: our EDNS payload size, as the Go responder */
	__u16 max_dns;       /* host order: largest DNS message sent (MTU bound) */
	__u16 flags;         /* host order: CONFIG_* */
};

/* DNS cookies (cookie.h), key 0 of cookie_config: the jar's secrets. */
#define COOKIE_ON 0x0001       /* answer COOKIE options (Go's server.cookies) */
#define COOKIE_PREVIOUS 0x0002 /* previous holds the secret before the last rotation */
#define COOKIE_REQUIRE 0x0004  /* UDP queries without a valid server cookie: BADCOOKIE (Go) */
struct cookie_config {
	__u8 current[16];
	__u8 previous[16];
	__s64 clock_offset_ns; /* wall clock less CLOCK_BOOTTIME, in ns */
	__u32 flags;           /* COOKIE_* */
	__u32 pad;
};

/* Service address key: IPv6, or IPv4 mapped as ::ffff:a.b.c.d. */
struct service_addr {
	__u8 addr[16]; /* network order */
};

/* Verdict counters, one per reason, in a per-CPU array. Names follow
 * verdict__reason; loader/stats.go lists them in this order. */
enum stat {
	STAT_TX_ANSWER = 0,     /* answered with the stored body */
	STAT_TX_TRUNCATED,      /* answered TC=1: over the client's limit */
	STAT_TX_NXDOMAIN,       /* a name without entries: the zone's NXDOMAIN */
	STAT_PASS_NOT_IP,       /* not IPv4/IPv6, or > MAX_VLAN_TAGS tags */
	STAT_PASS_IP_OPTIONS,   /* IPv4 options or IPv6 extension headers */
	STAT_PASS_FRAGMENT,     /* IPv4 fragment */
	STAT_PASS_NOT_UDP,      /* TCP, ICMP, ... */
	STAT_PASS_NOT_OURS,     /* other UDP port or address, or not configured */
	STAT_PASS_MALFORMED,    /* lengths disagree, short packet, bad IP checksum */
	STAT_PASS_QR,           /* a response: never answered (reflection) */
	STAT_PASS_OPCODE,       /* opcode != QUERY */
	STAT_PASS_COUNTS,       /* QDCOUNT != 1, AN/NS != 0, AR > 1 */
	STAT_PASS_NAME,         /* compression, long label, name > 255, cut short */
	STAT_PASS_CLASS,        /* class != IN */
	STAT_PASS_QTYPE,        /* OPT, TSIG, TKEY, MAILA/B, AXFR, IXFR, ANY */
	STAT_PASS_ADDITIONAL,   /* the additional record is not a well-formed OPT */
	STAT_PASS_EDNS_VERSION, /* EDNS version != 0 (Go answers BADVERS) */
	STAT_PASS_NSID,         /* NSID asked while configured */
	STAT_PASS_EXPIRE,       /* EDNS EXPIRE asked (RFC 7314): Go answers it */
	STAT_PASS_TRAILING,     /* bytes after the message */
	STAT_PASS_NO_ENTRY,     /* no compiled answer (or no generation loaded) */
	STAT_PASS_COLLISION,    /* hash hit, name or type differ */
	STAT_PASS_OVERSIZE,     /* full answer not stored or over max_dns */
	STAT_PASS_NO_ROOM,      /* driver refused to grow the frame */
	STAT_ABORTED,           /* frame shorter than just set: cannot happen */
	STAT_TX_WILDCARD,       /* a name without entries: its wildcard's answer */
	STAT_TX_REFERRAL,       /* a name below a cut without entries: the referral */
	STAT_PASS_COOKIE,       /* cookies on: a malformed COOKIE option (FORMERR), or
				 * no valid server cookie while one is required (BADCOOKIE) */
	STAT_MAX
};

#endif
