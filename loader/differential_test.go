package loader

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// testZones lists the zone files of the tests with their origins: every
// zone under userspace/*/testdata (signed ones included) and ours. The
// origin is the owner of the file's SOA; fragments without one are skipped.
func testZones(t testing.TB) map[string]string {
	t.Helper()
	var files []string
	for _, pat := range []string{"../userspace/*/testdata/*.zone", "../userspace/*/testdata/*.zone.signed", "testdata/*.zone"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	out := map[string]string{}
	for _, f := range files {
		o := soaOwner(t, f)
		if o == "" {
			continue
		}
		// Files the zone loader rejects (fixtures of its error tests)
		// cannot be served by the responder either.
		if _, _, err := zone.Load(f, o, zone.LoadOptions{AllowInclude: true}); err != nil {
			t.Logf("%s: not a servable zone: %v", f, err)
			continue
		}
		out[f] = o
	}
	if len(out) < 4 {
		t.Fatalf("found %d test zones, want the responder's and ours", len(out))
	}
	return out
}

func soaOwner(t testing.TB, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, ".", file)
	zp.SetIncludeAllowed(true)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype == dns.TypeSOA {
			return dns.CanonicalName(rr.Header().Name)
		}
	}
	return ""
}

// variant is one way of asking: EDNS or not, DO, size, options, flags.
type variant struct {
	name    string
	edns    bool
	do      bool
	size    uint16
	rd, cd  bool
	options []dns.EDNS0
}

var variants = []variant{
	{name: "plain"},
	{name: "rd+cd", rd: true, cd: true},
	{name: "edns", edns: true, size: 1232},
	{name: "edns+do", edns: true, do: true, size: 1232, rd: true},
	{name: "edns+do+4096+cookie", edns: true, do: true, size: 4096, cd: true,
		options: []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}},
	{name: "edns+512+do", edns: true, do: true, size: 512},
	{name: "edns+small+padding+ecs", edns: true, size: 100,
		options: []dns.EDNS0{
			&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IP{198, 18, 0, 0}},
			&dns.EDNS0_PADDING{Padding: make([]byte, 37)},
		}},
}

// randomCase flips the case of letters at random (0x20 encoding).
func randomCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') && rng.IntN(2) == 0 {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}

func packQuery(t testing.TB, id uint16, name string, qtype uint16, v variant) []byte {
	t.Helper()
	m := &dns.Msg{Question: []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}}
	m.Id = id
	m.RecursionDesired = v.rd
	m.CheckingDisabled = v.cd
	if v.edns {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(v.size)
		o.SetDo(v.do)
		o.Option = v.options
		m.Extra = []dns.RR{o}
	}
	q, err := m.Pack()
	if err != nil {
		t.Fatalf("pack %s/%d: %v", name, qtype, err)
	}
	return q
}

// defaultProbe returns a QTYPE answered by the name's default entry.
func defaultProbe(explicit map[uint16]bool, rng *rand.Rand) uint16 {
	for _, c := range []uint16{dns.TypeMX, dns.TypeTXT, dns.TypeSRV, dns.TypeCAA, dns.TypeHINFO} {
		if !explicit[c] && rng.IntN(2) == 0 {
			return c
		}
	}
	return 65280 // private use: never in zone data
}

// TestDifferential is the invariant: for every compiled entry of every test
// zone and every way of asking, XDP_TX sends the Go responder's bytes.
func TestDifferential(t *testing.T) {
	// The default payload, and a large one under which answers between
	// 1232 bytes and the MTU bound go out whole and larger ones are passed.
	// And the ways of loading: an image built and then loaded, laid out
	// in the generation's store (the daemon's), and that after a short
	// estimate of the store and of the index.
	configs := []struct {
		name string
		cfg  Config
		rcfg responder.Config
		load string
	}{
		{"1232", Config{}, responder.Config{}, ""},
		{"4096", Config{MaxDNS: 1452}, responder.Config{UDPPayload: 4096}, ""},
		{"1232-" + loadInPlace, Config{}, responder.Config{}, loadInPlace},
		{"4096-" + loadShort, Config{MaxDNS: 1452}, responder.Config{UDPPayload: 4096}, loadShort},
		{"1232-" + loadShortKeys, Config{}, responder.Config{}, loadShortKeys},
	}
	for file, origin := range testZones(t) {
		for _, c := range configs {
			t.Run(filepath.Base(file)+"/"+c.name, func(t *testing.T) {
				z := loadZone(t, file, origin)
				e := newEnvLoad(t, c.cfg, c.rcfg, c.load, z)
				zes, err := Zones(z)
				if err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, uint64(len(origin))))
				types := map[string]map[uint16]bool{}
				var keys []compile.Entry
				for _, en := range zes[0].Entries {
					n := string(en.Name)
					if types[n] == nil {
						types[n] = map[uint16]bool{}
					}
					if !types[n][en.Type] {
						keys = append(keys, en)
					}
					types[n][en.Type] = true
				}
				table := e.resp.Zone(origin).Table
				var tx, tc, oversize, engine int
				for i, en := range keys {
					name, _, err := dns.UnpackDomainName(en.Name, 0)
					if err != nil {
						t.Fatal(err)
					}
					qtype := en.Type
					if qtype == compile.TypeDefault {
						qtype = defaultProbe(types[string(en.Name)], rng)
					}
					for j, v := range variants {
						f := frame{v6: (i+j)%2 == 1, vlans: (i + j) % 3}
						q := packQuery(t, uint16(rng.Uint32()), randomCase(rng, name), qtype, v)
						want := e.resp.Respond(&responder.Scratch{}, nil, q, false)
						ret, out, st := e.query(t, f.build(q))
						qkey := binary.BigEndian.AppendUint16(append([]byte{}, en.Name...), qtype)
						if _, ok := table.Lookup(qkey, v.edns && v.do); !ok {
							// Not compiled (DO=1 negative answers in
							// signed zones): Go runs the engine.
							if ret != xdpPass || st["pass__no_entry"] != 1 {
								t.Errorf("%s %d %s: not compiled, XDP verdict %d %v, want pass__no_entry", name, qtype, v.name, ret, st)
							}
							engine++
							continue
						}
						switch ret {
						case xdpTx:
							if exp := f.response(want); string(out) != string(exp) {
								t.Errorf("%s %d %s: XDP differs from Go:\n%s", name, qtype, v.name, hexDiff(out, exp))
								continue
							}
							checkChecksums(t, out)
							tx++
							tc += int(st["tx__truncated"])
						case xdpPass:
							if st["pass__oversize"] != 1 {
								t.Errorf("%s %d %s: passed %v, want an answer", name, qtype, v.name, st)
							}
							oversize++
						default:
							t.Errorf("%s %d %s: verdict %d", name, qtype, v.name, ret)
						}
					}
				}
				t.Logf("%d entries: %d answered in XDP (%d truncated), %d passed as oversize, %d left to the engine", len(keys), tx, tc, oversize, engine)
				if tx == 0 {
					t.Error("nothing answered")
				}
			})
		}
	}
}

// TestDifferentialBelow: names that do not exist, one and more labels
// below every name of every test zone (up to 255 octets), every way of
// asking: what XDP answers (the zone's NXDOMAIN, a wildcard's answer, a
// referral with its pointers moved) is the Go responder's bytes, and what
// Go's table answers XDP answers too unless it is too large or deeper
// than the walk.
func TestDifferentialBelow(t *testing.T) {
	for file, origin := range testZones(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			z := loadZone(t, file, origin)
			e := newEnv(t, Config{}, responder.Config{}, z)
			table := e.resp.Zone(origin).Table
			rng := rand.New(rand.NewPCG(3, uint64(len(origin))))
			var names []string
			z.Each(func(n *zone.Node) bool {
				names = append(names, n.Name)
				return true
			})
			kinds := map[string]int{}
			for i, n := range names {
				qs := []string{"xq." + n, "a.b7." + n}
				if fill := 254 - len(n) - 1; fill > 2 {
					// Up to 255 octets on the wire: labels of 63 and the rest.
					var labels []string
					for fill > 0 {
						l := min(fill-1, 63)
						if fill-1-l == 1 {
							l--
						}
						labels = append(labels, strings.Repeat("m", l))
						fill -= l + 1
					}
					qs = append(qs, strings.Join(labels, ".")+"."+n)
				}
				for _, qn := range qs {
					if _, ok := dns.IsDomainName(qn); !ok || len(qn) > 254 || z.Node(qn) != nil {
						continue
					}
					for j, v := range variants {
						qtype := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeDS, dns.TypeMX}[(i+j)%4]
						f := frame{v6: (i+j)%2 == 1, vlans: (i + j) % 3}
						q := packQuery(t, uint16(rng.Uint32()), randomCase(rng, qn), qtype, v)
						want := e.resp.Respond(&responder.Scratch{}, nil, q, false)
						ret, out, st := e.query(t, f.build(q))
						qkey := binary.BigEndian.AppendUint16(mustWireName(t, qn), qtype)
						_, inTable := table.Lookup(qkey, v.edns && v.do)
						switch ret {
						case xdpTx:
							if exp := f.response(want); string(out) != string(exp) {
								t.Errorf("%s %d %s: XDP differs from Go %v:\n%s", qn, qtype, v.name, st, hexDiff(out, exp))
								continue
							}
							checkChecksums(t, out)
							for k := range st {
								kinds[k]++
							}
						case xdpPass:
							if inTable && st["pass__no_entry"] == 1 {
								// The walk drops at most 4 labels here:
								// what Go's table answers, XDP must.
								t.Errorf("%s %d %s: Go answers from its table, XDP passed %v", qn, qtype, v.name, st)
							}
						default:
							t.Errorf("%s %d %s: verdict %d", qn, qtype, v.name, ret)
						}
					}
				}
			}
			t.Logf("%d names: XDP answered %v", len(names), kinds)
		})
	}
}

func mustWireName(t testing.TB, name string) []byte {
	t.Helper()
	b := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(name), b, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}
