// Package compile lists every answer the engine can foresee for a zone, as
// wire-format bodies keyed by (lowercased QNAME, QTYPE, DO). The Go responder
// serves from the table before it runs the engine; the XDP loader copies the
// same entries into BPF maps. Both get their bytes from answer.Lookup, so a
// compiled answer is the engine's answer by construction.
package compile

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/answer"
	"github.com/xdpns/xdpns/userspace/wire"
	"github.com/xdpns/xdpns/userspace/zone"
)

// TypeDefault keys the entry that answers every "ordinary" QTYPE not listed
// explicitly at a name (see Defaultable). It is 0, a type never asked for.
const TypeDefault = 0

// probeType is the QTYPE asked of the engine to compute a default entry: a
// private-use type (RFC 6895 §3.1) no zone data uses in practice. New checks
// that the zone really has none.
const probeType = 65534

// Defaultable reports whether the answer for qtype at a name is the name's
// default entry when qtype has no entry of its own. It is false for the types
// whose answers differ from plain "no such type" handling: DS (parent side),
// RRSIG, NSEC and ANY (answered by type), and meta types.
func Defaultable(qtype uint16) bool {
	switch qtype {
	case TypeDefault, dns.TypeOPT, dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeANY:
		return false
	}
	return qtype < 128 || qtype > 255 // 128-255: QTYPEs and meta types
}

// Entry is one compiled answer.
type Entry struct {
	Name []byte // lowercased QNAME, wire form
	Type uint16 // QTYPE, or TypeDefault
	DO   bool
	Kind answer.Kind
	Body wire.Body
}

// Each calls fn for every compiled answer of z. Entries with DO=true are
// listed only for signed zones: for an unsigned zone the answer does not
// depend on DO (Table.Lookup and the XDP key account for that).
func Each(z *zone.Zone, fn func(*Entry) error) error {
	zoneTypes := typesOf(z)
	if slices.Contains(zoneTypes, probeType) {
		return fmt.Errorf("zone %s uses type %d, reserved for compiling", z.Origin, probeType)
	}
	var e Entry
	var types []uint16
	for _, name := range z.Names() {
		n := z.Node(name)
		wname, err := wireName(name)
		if err != nil {
			return err
		}
		types = types[:0]
		probe := answer.Lookup(z, answer.Query{Name: name, Type: probeType})
		if len(probe.Answer) > 0 {
			// The name answers through a CNAME or DNAME chain, whose end
			// may be anywhere: list every type of the zone.
			types = append(types, zoneTypes...)
		} else {
			types = n.Types(types)
		}
		if n.Has(zone.Delegation) && !n.HasType(dns.TypeDS) {
			types = append(types, dns.TypeDS)
		}
		types = append(types, TypeDefault)
		for _, do := range []bool{false, true} {
			if do && !z.Signed {
				break
			}
			for _, t := range types {
				if t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeANY {
					continue // answered by type: left to the engine
				}
				qt := t
				if t == TypeDefault {
					qt = probeType
				}
				res := answer.Lookup(z, answer.Query{Name: name, Type: qt, DO: do})
				body, err := wire.Encode(name, qt, res.Rcode, res.Authoritative, res.Answer, res.Ns, res.Extra)
				if err != nil {
					return err
				}
				e = Entry{Name: wname, Type: t, DO: do, Kind: res.Kind, Body: body}
				if err := fn(&e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func typesOf(z *zone.Zone) []uint16 {
	seen := map[uint16]bool{}
	var out []uint16
	for _, name := range z.Names() {
		for _, t := range z.Node(name).Types(nil) {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

func wireName(name string) ([]byte, error) {
	buf := make([]byte, wire.MaxNameLen)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", name, err)
	}
	return buf[:n:n], nil
}

// Table is a zone's compiled answers for the Go responder.
type Table struct {
	signed  bool
	entries map[string]wire.Body // by value: no allocation per entry
	// Bytes is the total size of the distinct bodies, for memory reports.
	Bytes int
}

// Build compiles z into a Table. Identical bodies are stored once: many
// names share an answer's bytes (same address and TTL, same SOA for NODATA
// at names of one length), since names compress to the question.
func Build(z *zone.Zone) (*Table, error) {
	t := &Table{signed: z.Signed, entries: make(map[string]wire.Body, z.Len()*2)}
	intern := map[string][]byte{}
	err := Each(z, func(e *Entry) error {
		b := e.Body
		if s, ok := intern[string(b.Bytes)]; ok {
			b.Bytes = s
		} else {
			intern[string(b.Bytes)] = b.Bytes
			t.Bytes += len(b.Bytes)
		}
		t.entries[string(key(nil, e.Name, e.Type, e.DO))] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// key is the table key: wire name, QTYPE, DO.
func key(dst, name []byte, qtype uint16, do bool) []byte {
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint16(dst, qtype)
	if do {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// Len is the number of entries.
func (t *Table) Len() int { return len(t.entries) }

// Lookup returns the compiled body for a query key (lowercased wire QNAME
// followed by QTYPE, as wire.Query.Key); false when the engine must answer.
func (t *Table) Lookup(qkey []byte, do bool) (wire.Body, bool) {
	do = do && t.signed
	var buf [wire.MaxNameLen + 3]byte
	k := append(buf[:0], qkey...)
	k = append(k, 0)
	if do {
		k[len(k)-1] = 1
	}
	if b, ok := t.entries[string(k)]; ok {
		return b, true
	}
	qtype := binary.BigEndian.Uint16(qkey[len(qkey)-2:])
	if !Defaultable(qtype) {
		return wire.Body{}, false
	}
	k[len(k)-3], k[len(k)-2] = 0, 0
	b, ok := t.entries[string(k)]
	return b, ok
}
