/* Constants of the XDP fast path. Sizes shared with Go live in abi.h. */
#ifndef XDPNS_CONSTS_H
#define XDPNS_CONSTS_H

#define ETH_P_IPV4 0x0800  /* EtherType of IPv4 */
#define ETH_P_IPV6_ 0x86DD /* EtherType of IPv6 */
#define ETH_P_8021Q_ 0x8100  /* EtherType of a C-VLAN tag */
#define ETH_P_8021AD_ 0x88A8 /* EtherType of an S-VLAN tag (QinQ) */
#define MAX_VLAN_TAGS 2      /* tags walked; a third one is passed */

#define IPPROTO_UDP_ 17        /* IP protocol number of UDP */
#define IPV4_HDR_LEN 20        /* IPv4 header without options */
#define IPV6_HDR_LEN 40        /* fixed IPv6 header */
#define UDP_HDR_LEN 8          /* UDP header */
#define IPV4_FRAG_MASK 0x3FFF  /* MF flag and fragment offset */
#define IPV4_DF 0x4000         /* don't-fragment flag of responses */
#define REPLY_TTL 64           /* TTL / hop limit of responses, as Linux sends */

/* Largest header offsets: Ethernet and two VLAN tags, then IPv6, then UDP. */
#define MAX_L3_OFF (14 + 2 * 4)
#define MAX_L4_OFF (MAX_L3_OFF + IPV6_HDR_LEN)
#define MAX_L4_END (MAX_L4_OFF + UDP_HDR_LEN)

/* Hides a value's range from the compiler, so that a bounds check the
 * verifier needs (on an offset it cannot track) is not optimised away. */
#define opaque(v) asm volatile("" : "+r"(v))

#define DNS_HDR_LEN 12       /* DNS header */

/* DNS header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2), host order. */
#define DNS_QR 0x8000
#define DNS_OPCODE_MASK 0x7800
#define DNS_AA 0x0400
#define DNS_TC 0x0200
#define DNS_RD 0x0100
#define DNS_CD 0x0010

#define DNS_CLASS_IN 1
#define DNS_TYPE_OPT 41    /* EDNS pseudo-record (RFC 6891) */
#define DNS_TYPE_DS 43     /* answered from the parent side */
#define DNS_TYPE_RRSIG 46  /* answered by type, never defaulted */
#define DNS_TYPE_NSEC 47   /* answered by type, never defaulted */
#define DNS_TYPE_TKEY 249  /* FORMERR in Go */
#define DNS_TYPE_TSIG 250  /* FORMERR in Go */
#define DNS_TYPE_IXFR 251  /* REFUSED in Go */
#define DNS_TYPE_AXFR 252  /* REFUSED in Go */
#define DNS_TYPE_MAILB 253 /* NOTIMP in Go */
#define DNS_TYPE_MAILA 254 /* NOTIMP in Go */
#define DNS_TYPE_ANY 255   /* engine-only in Go (RFC 8482) */
#define DNS_META_FIRST 128 /* 128..255: QTYPEs and meta types, never defaulted */
#define DNS_META_LAST 255

#define DNS_MIN_UDP_LIMIT 512  /* limit without EDNS, and the floor with it */
#define EDNS_OPTION_NSID 3     /* RFC 5001: Go answers it when NSID is set */
#define EDNS_OPTION_COOKIE 10   /* RFC 7873 */
#define EDNS_OPTION_EXPIRE 9   /* RFC 7314: Go answers it with the time left */
#define EDNS_DO 0x8000         /* DO bit in the OPT TTL's low 16 bits */
#define OPT_RR_LEN 11          /* root owner, type, class, TTL, RDLENGTH */
#define OPT_OPTION_HDR 4       /* option code and length */
#define MAX_EDNS_OPTIONS 16    /* options walked; more are passed */
#define MAX_OPT_RDLEN 4096     /* longer OPT RDATA is passed */

#define MAX_NAME_LEN 255  /* wire length of a name, root label included */
#define MAX_LABEL_LEN 63  /* longest label; larger bytes mean compression */
#define MAX_LABELS 128    /* labels in a 255-byte name, root included */
#define QBUF_LEN 264      /* question buffer: name + QTYPE + QCLASS, rounded to 8 */
#define QBUF_WORDS (QBUF_LEN / 8)

#endif
