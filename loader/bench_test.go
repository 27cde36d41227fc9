package loader

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// emptyProgram is the floor of BPF_PROG_RUN: an XDP program that returns.
func emptyProgram(b *testing.B) *ebpf.Program {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpTx), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// loadExact loads zs into maps sized to fit exactly (no headroom), so that
// the memory per entry is the layout's, not the spare capacity's.
func loadExact(b *testing.B, zs ...*zone.Zone) *env {
	b.Helper()
	requireRoot(b)
	entries, err := Zones(zs...)
	if err != nil {
		b.Fatal(err)
	}
	im, err := BuildImage(entries...)
	if err != nil {
		b.Fatal(err)
	}
	x, err := New(Config{}.SizeFor(im, 0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Close() })
	if err := x.Load(im); err != nil {
		b.Fatal(err)
	}
	r := responder.New(responder.Config{})
	r.SetZones(zs)
	return &env{x: x, resp: r, im: im}
}

// BenchmarkHit measures BPF_PROG_RUN time per answered query. Repeat > 1
// would run the program again on the frame it just rewrote (a response,
// passed at once), in live-frame mode too, so each run gets a fresh copy
// with Repeat 1 and the kernel-measured duration is summed; the counters
// prove every run was an answer. ns/hit is net of an empty program's
// duration measured the same way, interleaved.
func BenchmarkHit(b *testing.B) {
	requireRoot(b)
	floor := emptyProgram(b)
	sizes := []struct {
		name  string
		names int // 2.5 entries a name: A, AAAA for half, default
	}{{"1k", 400}, {"1M", 400_000}}
	queries := []struct {
		name  string
		qname string
		qtype uint16
		v     variant
	}{
		{"short", "host0000123.bench.test.", dns.TypeA, noEDNS},
		{"short-edns-do", "hOsT0000122.bench.test.", dns.TypeAAAA, ednsDO},
		{"255-byte-edns-do", longBenchName, dns.TypeA, ednsDO},
		{"random-short-edns", "", dns.TypeA, edns},                       // a different name each run
		{"nodata-edns", "host0000123.bench.test.", dns.TypeMX, edns},     // shared body, through its slot
		{"nxdomain-edns", "nosuch-0000123.bench.test.", dns.TypeA, edns}, // the walk to the apex, the zone's NXDOMAIN
		{"nxdomain-random-edns", "*", dns.TypeA, edns},                   // a different missing name each run
	}
	for _, size := range sizes {
		b.Run(size.name, func(b *testing.B) {
			e := loadExact(b, bigZone(b, size.names))
			for _, qc := range queries {
				b.Run(qc.name, func(b *testing.B) {
					names := []string{qc.qname}
					if qc.qname == "" || qc.qname == "*" {
						rng := rand.New(rand.NewPCG(1, 2))
						names = make([]string, 4096)
						for i := range names {
							names[i] = fmt.Sprintf("host%07d.bench.test.", rng.IntN(size.names))
							if qc.qname == "*" {
								names[i] = fmt.Sprintf("r%x.bench.test.", rng.Uint64())
							}
						}
					}
					var pkts [][]byte
					for _, name := range names {
						query := q(b, name, qc.qtype, qc.v)
						f := frame{}
						want := f.response(e.resp.Respond(&responder.Scratch{}, nil, query, false))
						pkt := f.build(query)
						if ret, out := run(b, e.x.Program(), pkt); ret != xdpTx || string(out) != string(want) {
							b.Fatalf("verdict %d, output differs from Go:\n%s", ret, hexDiff(out, want))
						}
						pkts = append(pkts, pkt)
					}
					measureHits(b, e, floor, pkts)
				})
			}
		})
	}
}

// measureHits runs pkts (each must be answered) through the program and
// reports ns per hit net of the empty program, and map memory per entry.
func measureHits(b *testing.B, e *env, floor *ebpf.Program, pkts [][]byte) {
	before, err := e.x.Stats()
	if err != nil {
		b.Fatal(err)
	}
	var prog, empty time.Duration
	n := 0
	for b.Loop() {
		pkt := pkts[n%len(pkts)]
		ret, d, err := e.x.Program().Benchmark(pkt, 1, nil)
		if err != nil || ret != xdpTx {
			b.Fatalf("verdict %d: %v", ret, err)
		}
		_, d0, err := floor.Benchmark(pkt, 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		prog += d
		empty += d0
		n++
	}
	after, err := e.x.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if got := after.Sub(before).Get("tx__answer") + after.Sub(before).Get("tx__nxdomain") + after.Sub(before).Get("tx__wildcard") + after.Sub(before).Get("tx__referral"); got != uint64(n) {
		b.Fatalf("%d answers in %d runs: not the hit path", got, n)
	}
	b.ReportMetric(float64(prog-empty)/float64(n), "ns/hit")
	b.ReportMetric(float64(empty)/float64(n), "ns/floor")
	idx, st, err := e.x.MapMemory()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(idx+st)/float64(e.im.Entries), "B/entry")
}

// benchAnswer measures one query that XDP must answer with the Go
// responder's bytes (checked once first).
func benchAnswer(b *testing.B, e *env, floor *ebpf.Program, qname string, qtype uint16, v variant) {
	b.Helper()
	query := q(b, qname, qtype, v)
	f := frame{}
	want := f.response(e.resp.Respond(&responder.Scratch{}, nil, query, false))
	pkt := f.build(query)
	if ret, out := run(b, e.x.Program(), pkt); ret != xdpTx || string(out) != string(want) {
		b.Fatalf("verdict %d, output differs from Go:\n%s", ret, hexDiff(out, want))
	}
	measureHits(b, e, floor, [][]byte{pkt})
}

// BenchmarkHitSigned: DO=1 answers of a signed zone, a positive one with
// its RRSIG and a NODATA one in two parts (the shared SOA and RRSIG, then
// the name's NSEC) through its slot.
func BenchmarkHitSigned(b *testing.B) {
	requireRoot(b)
	floor := emptyProgram(b)
	e := loadExact(b, loadZone(b, "testdata/example.net.zone", "example.net."))
	for _, qc := range []struct {
		name  string
		qtype uint16
	}{{"positive-do", dns.TypeA}, {"nodata-do", dns.TypeMX}} {
		b.Run(qc.name, func(b *testing.B) {
			benchAnswer(b, e, floor, "web.example.net.", qc.qtype, ednsDO)
		})
	}
}

// BenchmarkLoad1MNames compiles and loads an A/AAAA-heavy zone of a million
// names and reports map memory per entry and per name.
func BenchmarkLoad1MNames(b *testing.B) {
	requireRoot(b)
	z := bigZone(b, 1_000_000)
	for b.Loop() {
		// As the daemon does: the responder's table, its entries read
		// from it as the image is laid out in the new generation's store
		// (LoadZonesFrom).
		start := time.Now()
		t, err := compile.Build(z)
		if err != nil {
			b.Fatal(err)
		}
		compiled := time.Now()
		x, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		im, err := x.LoadZonesFrom(func(*zone.Zone) *compile.Table { return t }, nil, z)
		if err != nil {
			b.Fatal(err)
		}
		loaded := time.Now()
		idx, st, err := x.MapMemory()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(compiled.Sub(start).Seconds(), "s/compile")
		b.ReportMetric(loaded.Sub(compiled).Seconds(), "s/xdp-load")
		b.ReportMetric(float64(idx+st)/float64(im.Entries), "B/entry")
		b.ReportMetric(float64(idx)/float64(im.Entries), "index-B/entry")
		b.ReportMetric(float64(st)/float64(im.Entries), "store-B/entry")
		b.ReportMetric(float64(idx+st)/float64(z.Len()), "B/name")
		b.ReportMetric(float64(im.Entries), "entries")
		x.Close()
	}
}

// BenchmarkZonesFromTable: the entries of a 1M-name zone listed from the
// responder's compiled table (what the daemon's full loads do) against
// compiling the zone again (what Zones does without a table).
func BenchmarkZonesFromTable(b *testing.B) {
	z := bigZone(b, 1_000_000)
	t, err := compile.Build(z)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		tables Tables
	}{{"compile", nil}, {"table", func(*zone.Zone) *compile.Table { return t }}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				es, err := ZonesFrom(bc.tables, nil, z)
				n := 0
				if err == nil {
					err = es[0].each(func(*compile.Entry) error { n++; return nil })
				}
				if err != nil || n != t.Len() {
					b.Fatalf("%d entries, table %d: %v", n, t.Len(), err)
				}
			}
		})
	}
}

// BenchmarkImage measures laying out records and index for 500k entries
// (200k names), no BPF involved.
func BenchmarkImage(b *testing.B) {
	z := bigZone(b, 200_000)
	entries, err := Zones(z)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := BuildImage(entries...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate applies IXFR-like changes to a zone of 1M names (the SOA
// serial and k addresses each time) through responder.CompileFrom and
// UpdateZone, and reports the time of each and what was written. Every
// change rewrites the shared negative bodies (one per QNAME length here),
// not the million NODATA entries.
func BenchmarkUpdate(b *testing.B) {
	requireRoot(b)
	const names = 1_000_000
	z := bigZone(b, names)
	x, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Close() })
	im, err := x.LoadZones(z)
	if err != nil {
		b.Fatal(err)
	}
	prev, err := responder.Compile(z)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d entries, %d link records, %d shared bodies", im.Entries, im.Links, im.Shared)
	for _, k := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("%d-changes", k), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(5, uint64(k)))
			var compile, update time.Duration
			var updates []time.Duration
			var keys, records, shared, n int
			for b.Loop() {
				soa := dns.Copy(prev.Zone.SOA).(*dns.SOA)
				soa.Serial++
				del, add := []dns.RR{dns.Copy(prev.Zone.SOA)}, []dns.RR{soa}
				seen := map[int]bool{}
				for len(seen) < k {
					i := rng.IntN(names)
					if seen[i] {
						continue
					}
					seen[i] = true
					name := fmt.Sprintf("host%07d.bench.test.", i)
					old := prev.Zone.Node(name).Get(dns.TypeA).RRs[0]
					del = append(del, old)
					a := dns.Copy(old).(*dns.A)
					a.A = []byte{198, 19, byte(rng.IntN(256)), byte(rng.IntN(256))}
					if a.A.Equal(old.(*dns.A).A) {
						a.A[2]++
					}
					add = append(add, a)
				}
				t0 := time.Now()
				nz, _, err := prev.Zone.Apply(del, add, zone.Options{})
				if err != nil {
					b.Fatal(err)
				}
				served, ch, err := responder.CompileFrom(prev, nz)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				res, err := x.UpdateZone(nz, ch)
				if err != nil {
					b.Fatal(err)
				}
				update += time.Since(t1)
				updates = append(updates, time.Since(t1))
				compile += t1.Sub(t0)
				keys, records, shared = keys+res.Keys, records+res.Records, shared+res.Shared
				n++
				prev = served
			}
			b.ReportMetric(float64(compile.Microseconds())/float64(n), "us/apply+compile")
			// The mean includes the grace-period waits that settle freed
			// space after some updates (~8 ms each, after publishing).
			b.ReportMetric(float64(update.Microseconds())/float64(n), "us/UpdateZone")
			b.ReportMetric(float64(percentile(updates, 0.5).Microseconds()), "us/UpdateZone-p50")
			b.ReportMetric(float64(keys)/float64(n), "keys/op")
			b.ReportMetric(float64(records)/float64(n), "records/op")
			b.ReportMetric(float64(shared)/float64(n), "shared/op")
		})
	}
}

// BenchmarkWildcard: an answer synthesised from a wildcard (the walk to
// the closest encloser, then the wildcard's record) against an exact hit
// of the same size in the same zone, EDNS; and the wildcard's NODATA (its
// pointers moved) against an existing name's NODATA.
func BenchmarkWildcard(b *testing.B) {
	requireRoot(b)
	floor := emptyProgram(b)
	e := loadExact(b, wildZone(b))
	for _, qc := range []struct{ name, qname string }{
		{"exact", "host.wild.test."},
		{"wildcard-apex", "abcd.wild.test."},
		{"wildcard-2-labels", "x.abcd.wild.test."},
		{"wildcard-deep", "x.deep.a.b.wild.test."},
		{"nodata-exact", "host.wild.test."},
		{"wildcard-nodata", "abcd.wild.test."},
		{"wildcard-nodata-2-labels", "x.abcd.wild.test."},
	} {
		b.Run(qc.name, func(b *testing.B) {
			qt := dns.TypeA
			switch qc.name {
			case "wildcard-deep":
				qt = dns.TypeAAAA
			case "nodata-exact", "wildcard-nodata", "wildcard-nodata-2-labels":
				qt = dns.TypeMX // a link to the shared NODATA; the wildcard's, moved
			}
			benchAnswer(b, e, floor, qc.qname, qt, edns)
		})
	}
}

// BenchmarkReferral: BPF_PROG_RUN ns per referral below a cut (the cut's
// record found by the walk, its pointers moved: ref_patch), DO=0 and DO=1
// in a signed zone, against an exact hit and the cut's own name (no walk)
// in the same run.
func BenchmarkReferral(b *testing.B) {
	requireRoot(b)
	floor := emptyProgram(b)
	e := loadExact(b, loadZone(b, "testdata/example.net.zone", "example.net."))
	for _, qc := range []struct {
		name, qname string
		v           variant
	}{
		{"exact", "ns.sub.example.net.", edns},
		{"at-cut", "sub.example.net.", edns},
		{"below-cut", "www.sub.example.net.", edns},
		{"below-cut-3-labels", "a.b.www.sub.example.net.", edns},
		{"below-cut-do", "www.sub.example.net.", ednsDO},
	} {
		b.Run(qc.name, func(b *testing.B) {
			benchAnswer(b, e, floor, qc.qname, dns.TypeA, qc.v)
		})
	}
}

// BenchmarkNXDomainSigned: BPF_PROG_RUN ns per signed NXDOMAIN (DO=1) in
// an NSEC3 zone with iterations 0 (the walk, three SHA-1 hashes and three
// searches of the zone's NSEC3 array, head and pieces copied) and in an
// NSEC zone (the walk, one search of the encloser's children), against an
// exact DO=1 hit and the DO=0 NXDOMAIN of the same zone in the same run;
// the salted zone's hashes take a 16-byte longer message, and each NSEC3
// iteration is one more SHA-1 block per name.
func BenchmarkNXDomainSigned(b *testing.B) {
	requireRoot(b)
	floor := emptyProgram(b)
	for _, zc := range []struct{ file, origin string }{
		{"../userspace/nsddiff/testdata/nsec3z.test.zone.signed", "nsec3z.test."},
		{"../userspace/nsddiff/testdata/nsec3s.test.zone.signed", "nsec3s.test."},
		{"../userspace/nsddiff/testdata/nsec3.test.zone.signed", "nsec3.test."}, // 1 iteration, 4-byte salt
		{"../userspace/nsddiff/testdata/nsec.test.zone.signed", "nsec.test."},
	} {
		e := loadExact(b, loadZone(b, zc.file, zc.origin))
		for _, qc := range []struct {
			name, qname string
			v           variant
		}{
			{"exact-do", "web." + zc.origin, ednsDO},
			{"nxdomain", "nosuch." + zc.origin, edns},
			{"nxdomain-do", "nosuch." + zc.origin, ednsDO},
			{"nxdomain-do-3-labels", "a.b.nosuch.a.b.ent." + zc.origin, ednsDO},
			{"wildcard", "random7.wild." + zc.origin, edns},
			{"wildcard-do", "random7.wild." + zc.origin, ednsDO},
			{"wildcard-nodata", "random7.wild." + zc.origin, edns},
			{"wildcard-nodata-do", "random7.wild." + zc.origin, ednsDO},
		} {
			b.Run(strings.TrimSuffix(zc.origin, ".")+"/"+qc.name, func(b *testing.B) {
				qt := dns.TypeA
				if strings.HasPrefix(qc.name, "wildcard-nodata") {
					qt = dns.TypeMX // the wildcard has none
				}
				benchAnswer(b, e, floor, qc.qname, qt, qc.v)
			})
		}
	}
}
