package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// Entry is one member zone a producer lists.
type Entry struct {
	Zone  string // any case; written canonical
	Group string // empty: no group property
}

// UniqueID is the unique-id label a producer gives a member zone: the
// first 64 bits of the SHA-256 of its canonical wire name, in hex. A
// function of the name alone, so it survives restarts and reloads and a
// member keeps its state downstream (a changed unique-id resets it, RFC
// 9432 §5.3).
func UniqueID(member string) string {
	wire := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(member), wire, 0, nil, false)
	if err != nil { // not a name: hash the text (never a valid member)
		wire, n = []byte(member), len(member)
	}
	sum := sha256.Sum256(wire[:n])
	return hex.EncodeToString(sum[:8])
}

// Generate writes the records of a catalog zone listing entries (RFC 9432
// §4): SOA and NS (invalid., as §4.1 suggests) at the apex, version "2",
// then a member node and, when given, a group property per entry. TTLs
// are 0: nobody resolves a catalog. Entries naming the same zone twice
// are written once (the first group wins).
func Generate(catalog string, entries []Entry, serial uint32) []dns.RR {
	cat := dns.CanonicalName(catalog)
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 0}
	}
	out := []dns.RR{
		&dns.SOA{Hdr: hdr(cat, dns.TypeSOA), Ns: "invalid.", Mbox: "invalid.", Serial: serial,
			Refresh: 3600, Retry: 600, Expire: 2147483646, Minttl: 0},
		&dns.NS{Hdr: hdr(cat, dns.TypeNS), Ns: "invalid."},
		&dns.TXT{Hdr: hdr(child("version", cat), dns.TypeTXT), Txt: []string{Version}},
	}
	zones := child("zones", cat)
	seen := map[string]bool{}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int {
		return strings.Compare(dns.CanonicalName(a.Zone), dns.CanonicalName(b.Zone))
	})
	for _, e := range sorted {
		member := dns.CanonicalName(e.Zone)
		if seen[member] || member == cat {
			continue
		}
		seen[member] = true
		node := UniqueID(member) + "." + zones
		out = append(out, &dns.PTR{Hdr: hdr(node, dns.TypePTR), Ptr: member})
		if e.Group != "" {
			out = append(out, &dns.TXT{Hdr: hdr("group."+node, dns.TypeTXT), Txt: splitTXT(e.Group)})
		}
	}
	return out
}

// splitTXT cuts text into character-strings of at most 255 bytes.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// Build is Generate as a zone snapshot, ready to serve and transfer.
func Build(catalog string, entries []Entry, serial uint32) (*zone.Zone, error) {
	z, _, err := zone.New(catalog, Generate(catalog, entries, serial), zone.Options{RequireNS: true}, nil)
	return z, err
}
