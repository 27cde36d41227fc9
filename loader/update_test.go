package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func mustZone(t testing.TB, origin, text string) *zone.Zone {
	t.Helper()
	z, _, err := zone.Parse(strings.NewReader(text), origin, origin, zone.LoadOptions{DefaultTTL: 300})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// changer makes random IXFR-like changes to a zone: a new SOA serial, some
// records deleted, a few added (addresses, CNAMEs, delegations, DNAMEs,
// MX, TXT), at names from a small set so that changes meet.
type changer struct {
	t      testing.TB
	rng    *rand.Rand
	origin string
	labels []string
	mname  int // bumped to force a full recompile (the SOA's names changed)
	sigs   int // signatures over the SOA replaced
}

func (c *changer) name() string {
	var parts []string
	for i := 0; i <= c.rng.IntN(3); i++ {
		parts = append(parts, c.labels[c.rng.IntN(len(c.labels))])
	}
	return strings.Join(parts, ".") + "." + c.origin
}

func (c *changer) change(z *zone.Zone, full bool) (del, add []dns.RR) {
	soa := dns.Copy(z.SOA).(*dns.SOA)
	del = append(del, dns.Copy(z.SOA))
	soa.Serial++
	if full {
		c.mname++
		soa.Ns = fmt.Sprintf("primary%d.%s", c.mname, c.origin)
	}
	add = append(add, soa)
	// A signed zone's new SOA comes with a new signature over it: the
	// shared first part of every signed negative answer changes.
	for _, r := range z.Node(c.origin).Get(dns.TypeSOA).Sigs {
		sig := dns.Copy(r).(*dns.RRSIG)
		first := "A"
		if sig.Signature[0] == 'A' {
			first = "B"
		}
		sig.Signature = first + sig.Signature[1:] // other bytes, same length
		c.sigs++
		del, add = append(del, r), append(add, sig)
	}
	recs := z.Records()
	for range c.rng.IntN(3) {
		r := recs[c.rng.IntN(len(recs))]
		switch r.Header().Rrtype {
		case dns.TypeSOA, dns.TypeDNSKEY, dns.TypeNSEC3PARAM:
			continue
		}
		if r.Header().Name != c.origin || r.Header().Rrtype != dns.TypeNS {
			del = append(del, r)
		}
	}
	for range 1 + c.rng.IntN(3) {
		n := c.name()
		var s string
		switch c.rng.IntN(9) {
		case 0, 1:
			s = fmt.Sprintf("%s 300 A 198.18.%d.%d", n, c.rng.IntN(4), c.rng.IntN(250))
		case 2:
			s = fmt.Sprintf("%s 300 AAAA 2001:2::%x", n, c.rng.IntN(4096))
		case 3:
			s = fmt.Sprintf("%s 300 CNAME %s", n, c.name())
		case 4:
			s = fmt.Sprintf("%s 300 NS %s", n, c.name())
		case 5:
			s = fmt.Sprintf("%s 300 MX 10 %s", n, c.name())
		case 6:
			s = fmt.Sprintf("%s 300 DNAME %s", n, c.name())
		default:
			s = fmt.Sprintf("%s 300 TXT \"%s\"", n, strings.Repeat("t", c.rng.IntN(300)))
		}
		add = append(add, mustRR(c.t, s))
	}
	return del, add
}

// updateEnv serves zones from XDP and the Go responder, updated together.
type updateEnv struct {
	x      *XDP
	resp   *responder.Responder
	served map[string]*responder.Zone // by origin
	mirror map[uint64]mirrorKey       // what the index must hold
}

type mirrorKey struct {
	name  string
	qtype uint16
	has   [2]bool // records for DO=0, DO=1
}

func (u *updateEnv) put(e *compile.Entry, signed bool) {
	h := keyHash(e.Name, e.Type)
	k := u.mirror[h]
	k.name, k.qtype = string(e.Name), e.Type
	k.has[do(e.DO)] = true
	if !signed {
		k.has = [2]bool{true, true}
	}
	u.mirror[h] = k
}

func newUpdateEnv(t *testing.T, cfg Config, zs ...*zone.Zone) *updateEnv {
	t.Helper()
	requireRoot(t)
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	im, err := x.LoadZones(zs...)
	if err != nil {
		t.Fatal(err)
	}
	if im.Links == 0 || im.Shared == 0 {
		t.Errorf("no shared negative answers: %d links, %d shared bodies", im.Links, im.Shared)
	}
	u := &updateEnv{x: x, resp: responder.New(responder.Config{}), served: map[string]*responder.Zone{}, mirror: map[uint64]mirrorKey{}}
	var list []*responder.Zone
	for _, z := range zs {
		s, err := responder.Compile(z)
		if err != nil {
			t.Fatal(err)
		}
		u.served[z.Origin] = s
		list = append(list, s)
	}
	u.resp.SetServed(list)
	zes, err := Zones(zs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, ze := range zes {
		for i := range ze.Entries {
			u.put(&ze.Entries[i], ze.Signed)
		}
	}
	return u
}

// step applies one change to the zone with z's origin in Go and in XDP.
func (u *updateEnv) step(t *testing.T, z *zone.Zone) (*compile.Changes, UpdateResult) {
	t.Helper()
	s, ch, err := responder.CompileFrom(u.served[z.Origin], z)
	if err != nil {
		t.Fatal(err)
	}
	u.served[z.Origin] = s
	u.resp.Put(s)
	res, err := u.x.UpdateZone(z, ch)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	// The mirror: what the index holds after the change.
	origins := map[string]int{}
	for o := range u.served {
		w, _ := wireName(o)
		origins[string(w)] = len(origins)
	}
	w, _ := wireName(z.Origin)
	ours := func(name []byte) bool { return servedIndex(origins, name) == origins[string(w)] }
	if ch == nil || ch.Full {
		for h, k := range u.mirror {
			if ours([]byte(k.name)) {
				delete(u.mirror, h)
			}
		}
		zes, err := Zones(u.zones()...)
		if err != nil {
			t.Fatal(err)
		}
		for _, ze := range zes {
			for i := range ze.Entries {
				if ours(ze.Entries[i].Name) {
					u.put(&ze.Entries[i], ze.Signed)
				}
			}
		}
		return ch, res
	}
	for _, k := range ch.Del {
		if !ours([]byte(k.Name)) {
			continue
		}
		h := keyHash([]byte(k.Name), k.Type)
		m, ok := u.mirror[h]
		if !ok || m.name != k.Name || m.qtype != k.Type {
			t.Fatalf("removed key %x/%d not held", k.Name, k.Type)
		}
		m.has[do(k.DO)] = false
		if !z.Signed {
			m.has = [2]bool{}
		}
		if m.has == [2]bool{} {
			delete(u.mirror, h)
		} else {
			u.mirror[h] = m
		}
	}
	for i := range ch.Put {
		if ours(ch.Put[i].Name) {
			u.put(&ch.Put[i], z.Signed)
		}
	}
	return ch, res
}

func (u *updateEnv) zones() []*zone.Zone {
	var zs []*zone.Zone
	for _, s := range u.served {
		zs = append(zs, s.Zone)
	}
	return zs
}

// checkAnswers asks XDP for every compiled entry of every served zone, in
// two ways, and for the keys ch removed: XDP answers with the Go
// responder's bytes when Go's table has the answer, and passes otherwise.
func (u *updateEnv) checkAnswers(t *testing.T, rng *rand.Rand, ch *compile.Changes) int {
	t.Helper()
	zes, err := Zones(u.zones()...)
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	ask := func(name []byte, qtype uint16) {
		for j, v := range []variant{noEDNS, ednsDO} {
			pname, _, err := dns.UnpackDomainName(name, 0)
			if err != nil {
				t.Fatal(err)
			}
			qt := qtype
			if qt == compile.TypeDefault {
				qt = 65280
			}
			query := packQuery(t, uint16(rng.Uint32()), randomCase(rng, pname), qt, v)
			f := frame{v6: j == 1}
			want := u.resp.Respond(&responder.Scratch{}, nil, query, false)
			stBefore, err := u.x.Stats()
			if err != nil {
				t.Fatal(err)
			}
			ret, out := run(t, u.x.Program(), f.build(query))
			stAfter, err := u.x.Stats()
			if err != nil {
				t.Fatal(err)
			}
			verdict := stAfter.Sub(stBefore)
			oversize := verdict.Get("pass__oversize") > 0
			asked++
			compiled := u.compiled(name, qt, v.do)
			switch {
			case ret == xdpTx && string(out) == string(f.response(want)):
				if !compiled {
					t.Fatalf("%s/%d %s: XDP answered what Go's table does not hold", pname, qt, v.name)
				}
			case ret == xdpTx:
				t.Fatalf("%s/%d %s: XDP differs from Go:\n%s", pname, qt, v.name, hexDiff(out, f.response(want)))
			case ret == xdpPass && compiled && !oversize:
				t.Fatalf("%s/%d %s: compiled, but XDP passed (%v)", pname, qt, v.name, verdict)
			case ret != xdpPass:
				t.Fatalf("%s/%d %s: verdict %d", pname, qt, v.name, ret)
			}
		}
	}
	for _, ze := range zes {
		for _, e := range ze.Entries {
			ask(e.Name, e.Type)
			// A name below it that does not exist: the zone's
			// NXDOMAIN from XDP where Go's table gives it, or a
			// wildcard's answer or NODATA (a type none has).
			if e.Type == compile.TypeDefault && !e.DO && len(e.Name) < 250 {
				ask(append([]byte{3, 'z', 'q', byte('a' + rng.IntN(26))}, e.Name...), []uint16{dns.TypeA, compile.TypeDefault}[rng.IntN(2)])
			}
		}
	}
	if ch != nil {
		for _, k := range ch.Del {
			ask([]byte(k.Name), k.Type)
		}
	}
	return asked
}

// stat reads one counter.
func (u *updateEnv) stat(t *testing.T, name string) uint64 {
	var per []uint64
	if err := u.x.objs.Stats.Lookup(uint32(slices.Index(statNames, name)), &per); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// compiled reports whether Go answers (name, qtype, DO) from its table.
func (u *updateEnv) compiled(name []byte, qtype uint16, do bool) bool {
	s := u.resp.Zone(u.originOf(name))
	if s == nil {
		return false
	}
	_, ok := s.Table.Lookup(binary.BigEndian.AppendUint16(append([]byte{}, name...), qtype), do)
	return ok
}

func (u *updateEnv) originOf(name []byte) string {
	best := ""
	for o := range u.served {
		w, _ := wireName(o)
		if bytes.HasSuffix(name, w) && len(o) > len(best) {
			best = o
		}
	}
	return best
}

// checkMaps walks the served generation: every key's records are for that
// key, links point at their zone's slots, the store holds no leaked bytes,
// and the keys are exactly the mirror's.
func (u *updateEnv) checkMaps(t *testing.T) {
	t.Helper()
	x := u.x
	g := x.gens[x.active]
	slots := map[uint32]*shared{}
	members := map[uint32]int{}
	live := 0
	for _, z := range g.zones {
		for _, list := range z.neg {
			for _, s := range list {
				slots[s.slot] = s
				var word [4]byte
				copy(word[:], g.mem[refOffset(s.slot):])
				if binary.LittleEndian.Uint32(word[:]) != s.ref {
					t.Fatalf("slot %#x points at %#x, want %#x", s.slot, binary.LittleEndian.Uint32(word[:]), s.ref)
				}
				if g.slots[s.slot] != s {
					t.Fatalf("slot %#x not in the slot table", s.slot)
				}
				live += slotLen + storedLen(g.a.at(s.ref))
			}
		}
	}
	if len(slots) != len(g.slots) {
		t.Fatalf("%d shared bodies in zones, %d in the slot table", len(slots), len(g.slots))
	}
	type entry struct {
		Hash uint64
		val  xdpnsIndexVal
	}
	var entries []entry
	g.ix.each(func(k uint64, v xdpnsIndexVal) { entries = append(entries, entry{k, v}) })
	seen := map[uint32]bool{}
	keys := 0
	for _, key := range entries {
		val := key.val
		keys++
		want, ok := u.mirror[key.Hash]
		if !ok {
			t.Fatalf("index key %#x not expected", key.Hash)
		}
		for d, ref := range val.Ref {
			if (ref != refNone) != want.has[d] {
				t.Fatalf("index key %#x (%x/%d): refs %#x, want DO=0/1 %v", key.Hash, want.name, want.qtype, val.Ref, want.has)
			}
		}
		for _, ref := range val.Ref {
			if ref == refNone || seen[ref] {
				continue
			}
			seen[ref] = true
			rec := g.a.at(ref)
			name, qtype := recordName(rec)
			if string(name) != want.name || qtype != want.qtype {
				t.Fatalf("key %#x: record for %x/%d, want %x/%d", key.Hash, name, qtype, want.name, want.qtype)
			}
			if slot, ok := linkSlot(rec); ok {
				if slots[slot] == nil {
					t.Fatalf("record %#x links to unknown slot %#x", ref, slot)
				}
				members[slot]++
			}
			if slot, ok := linkNXD(rec); ok {
				if s := slots[slot]; s == nil || s.l != compile.NXDKey {
					t.Fatalf("record %#x names %#x as its NXDOMAIN slot", ref, slot)
				}
				members[slot]++
			}
			live += storedLen(rec)
		}
	}
	// A zone's NSEC3 or NSEC state (nsec3.go, nsec.go): its head is held
	// by the zone, its pieces by nothing in the index.
	for _, z := range g.zones {
		if z.n3 == nil {
			continue
		}
		if s := slots[z.n3.slot]; s == nil || s.l != compile.NXD3Key {
			t.Fatalf("zone %s: NSEC3 head slot %#x unknown", z.origin, z.n3.slot)
		}
		members[z.n3.slot]++
		for _, e := range z.n3.ents {
			live += storedLen(g.a.at(e.ref))
		}
		if z.n3.nsec != nil {
			for _, ref := range z.n3.nsec.refs {
				live += storedLen(g.a.at(ref))
			}
		}
	}
	if keys != len(u.mirror) || keys != g.keys {
		t.Fatalf("index has %d keys, mirror %d, loader counts %d", keys, len(u.mirror), g.keys)
	}
	for slot, s := range slots {
		if members[slot] != s.members || s.members == 0 {
			t.Fatalf("slot %#x (key %d): %d link records, counted %d", slot, s.l, members[slot], s.members)
		}
	}
	if live != g.a.live {
		t.Fatalf("records take %d bytes, allocator counts %d live", live, g.a.live)
	}
}

// TestUpdateZone applies random changes to a parent zone (which delegates
// to a served child and holds glue for it) and to a signed zone, and after
// each checks every answer through BPF_PROG_RUN against the Go responder,
// the removed keys, and the maps themselves. Small maps make updates run
// out of room and rebuild; a changed SOA MNAME makes compile rebuild all.
func TestUpdateZone(t *testing.T) {
	parent := mustZone(t, "example.", `$ORIGIN example.
@ SOA ns h 1 7200 3600 1209600 300
@ NS ns
ns A 198.18.0.1
www A 198.18.0.2
sub NS ns.sub
ns.sub A 198.18.0.3
`)
	child := mustZone(t, "sub.example.", `$ORIGIN sub.example.
@ SOA ns h 1 7200 3600 1209600 300
@ NS ns
ns A 198.18.0.3
a A 198.18.0.4
`)
	signed := loadZone(t, "testdata/example.net.zone", "example.net.")
	nsec3z := loadZone(t, "../userspace/nsddiff/testdata/nsec3z.test.zone.signed", "nsec3z.test.")
	cases := []struct {
		name  string
		zones []*zone.Zone
		c     *changer
		steps int
	}{
		{"parent+child", []*zone.Zone{parent, child}, &changer{origin: "example.", labels: []string{"a", "b", "www", "*", "ns", "sub", "mail"}}, 150},
		{"signed", []*zone.Zone{signed}, &changer{origin: "example.net.", labels: []string{"a", "b", "www", "*", "mail", "sub"}}, 60},
		// NSEC3, iterations 0: signed NXDOMAINs composed in XDP; changes
		// that leave the chain alone are applied in place, the others
		// (a deleted NSEC3 or RRSIG over one) reload the zone.
		{"nsec3", []*zone.Zone{nsec3z}, &changer{origin: "nsec3z.test.", labels: []string{"a", "b", "web", "*", "mail", "sub"}}, 60},
	}
	// Tight maps: updates run out of room and rebuild.
	defer func(e, b int) { minSpareEntries, minSpareBlocks = e, b }(minSpareEntries, minSpareBlocks)
	minSpareEntries, minSpareBlocks = 0, 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpdateEnv(t, Config{}, tc.zones...)
			rng := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			tc.c.t, tc.c.rng = t, rng
			u.checkMaps(t)
			u.checkAnswers(t, rng, nil)
			z := tc.zones[0]
			var applied, reloads, full, shared, asked int
			for step := range tc.steps {
				del, add := tc.c.change(z, step%25 == 24)
				nz, _, err := z.Apply(del, add, zone.Options{RequireNS: true})
				if err != nil {
					var rerr *zone.RRError
					if !errors.As(err, &rerr) {
						t.Fatalf("step %d: %v", step, err)
					}
					continue
				}
				ch, res := u.step(t, nz)
				if ch == nil || ch.Full {
					full++
				}
				if res.Reloaded {
					reloads++
				}
				shared += res.Shared
				u.checkMaps(t)
				asked += u.checkAnswers(t, rng, ch)
				z = nz
				applied++
			}
			t.Logf("%d changes (%d full), %d new generations, %d shared bodies replaced, %d SOA signatures replaced, %d queries compared, %d tx__wildcard", applied, full, reloads, shared, tc.c.sigs, asked, u.stat(t, "tx__wildcard"))
			if applied < tc.steps/2 || full == 0 || shared == 0 || reloads <= full {
				t.Errorf("weak run: %d changes, %d full, %d shared, %d reloads", applied, full, shared, reloads)
			}
		})
	}
}

// TestUpdateErrors: no loaded answers, an unknown zone.
func TestUpdateErrors(t *testing.T) {
	requireRoot(t)
	x, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	z := version(t, 1)
	if _, err := x.UpdateZone(z, nil); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("update before load: %v, want ErrNotLoaded", err)
	}
	if _, err := x.LoadZones(z); err != nil {
		t.Fatal(err)
	}
	other := mustZone(t, "other.", "other. SOA ns.other. h.other. 1 1 1 1 1\nother. NS ns.other.\nns.other. A 198.18.0.1\n")
	if _, err := x.UpdateZone(other, nil); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("update of another zone: %v, want ErrUnknownZone", err)
	}
}

// TestArena: exact reuse after settle, splitting, no reuse before settle.
func TestArena(t *testing.T) {
	a := &arena{mem: make([]byte, 2*storeValueLen), blocks: 2}
	var refs []uint32
	for {
		ref, _, err := a.alloc(maxRecordLen)
		if errors.Is(err, errNoRoom) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if off := int(ref&refOffsetMask) * storeAlign; off >= storeBlockLen || off+maxRecordLen > storeValueLen {
			t.Fatalf("record at %d in its block", off)
		}
		refs = append(refs, ref)
	}
	if len(refs) < 2*storeBlockLen/maxRecordLen {
		t.Fatalf("%d records of %d bytes in 2 blocks", len(refs), maxRecordLen)
	}
	graces := 0
	a.reclaim = func() error { graces++; return nil }
	a.release(refs[3], maxRecordLen)
	a.release(refs[4], maxRecordLen)
	if a.freeBytes != 0 {
		t.Fatal("released space free before a grace period")
	}
	r1, _, err := a.alloc(64) // waits for a grace period, then splits a span
	if err != nil || (r1 != refs[3] && r1 != refs[4]) || graces != 1 {
		t.Fatalf("split: %#x %v, %d grace periods", r1, err, graces)
	}
	r2, _, err := a.alloc(maxRecordLen)
	if err != nil || (r2 != refs[3] && r2 != refs[4]) || r2 == r1 {
		t.Fatalf("exact reuse: %#x %v", r2, err)
	}
	r3, _, err := a.alloc(maxRecordLen - 64)
	if err != nil || r3 != r1+64/storeAlign {
		t.Fatalf("split remainder: %#x, want %#x (%v)", r3, r1+64/storeAlign, err)
	}
	if a.live != len(refs)*maxRecordLen {
		t.Errorf("live %d, want %d", a.live, len(refs)*maxRecordLen)
	}
}

// TestGoOnlyChild: a child zone Go answers by its engine alone (expired,
// not transferred yet) is held without entries; its parent stays in XDP,
// except for the parent's entries for the child's names (the referral and
// glue), also after the parent changes.
func TestGoOnlyChild(t *testing.T) {
	requireRoot(t)
	parent := mustZone(t, "example.", `$ORIGIN example.
@ SOA ns h 1 7200 3600 1209600 300
@ NS ns
ns A 198.18.0.1
www A 198.18.0.2
child NS ns.child
ns.child A 198.18.0.3
`)
	x, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if _, err := x.LoadZonesFrom(nil, []string{"child.example."}, parent); err != nil {
		t.Fatal(err)
	}
	verdict := func(name string, qtype uint16) uint32 {
		ret, _ := run(t, x.Program(), frame{}.build(q(t, name, qtype, edns)))
		return ret
	}
	check := func(when string) {
		for _, c := range []struct {
			name  string
			qtype uint16
			want  uint32
		}{
			{"www.example.", dns.TypeA, xdpTx},
			{"ns.example.", dns.TypeA, xdpTx},
			{"child.example.", dns.TypeNS, xdpPass},
			{"ns.child.example.", dns.TypeA, xdpPass},
			{"www.child.example.", dns.TypeA, xdpPass},
		} {
			if got := verdict(c.name, c.qtype); got != c.want {
				t.Errorf("%s: %s/%d: verdict %d, want %d", when, c.name, c.qtype, got, c.want)
			}
		}
	}
	check("loaded")
	soa := dns.Copy(parent.SOA).(*dns.SOA)
	soa.Serial++
	nz, d, err := parent.Apply([]dns.RR{parent.SOA, mustRR(t, "ns.child.example. 300 A 198.18.0.3")},
		[]dns.RR{soa, mustRR(t, "ns.child.example. 300 A 198.18.0.4"), mustRR(t, "www.example. 300 AAAA 2001:2::2")},
		zone.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := compile.Build(parent)
	if err != nil {
		t.Fatal(err)
	}
	_, ch, err := compile.Update(tab, nz, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.UpdateZone(nz, ch); err != nil {
		t.Fatal(err)
	}
	check("updated")
	if got := verdict("www.example.", dns.TypeAAAA); got != xdpTx {
		t.Errorf("the parent's new record: verdict %d", got)
	}
}
