package xfrout

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
	"github.com/xdpns/xdpns/xfr"
)

func openZone() Zone { return Zone{Name: testOrigin, AllowTransfer: ACL{Prefixes: loopback}} }

func TestAXFR(t *testing.T) {
	ts := startServer(t, Config{Zones: []Zone{openZone()}})
	z := baseVersion(1, 3000).zone(t)
	ts.publish(Snapshot{Zone: z})

	rrs, msgs, err := transferIn(ts.addr, axfrQuery(testOrigin), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Errorf("not SOA first and last: %v ... %v", rrs[0], rrs[len(rrs)-1])
	}
	sameSet(t, "AXFR", rrs[:len(rrs)-1], z.Records())

	// The same transfer as raw messages: sizes, question, flags.
	pkt, _ := axfrQuery(testOrigin).Pack()
	raws, ms := rawTransfer(t, ts.addr, pkt, soaTwice)
	if len(raws) != msgs || len(raws) < 5 {
		t.Errorf("%d raw messages, %d through miekg/dns; want the same, at least 5", len(raws), msgs)
	}
	uncompressed := 0
	for _, rr := range rrs {
		uncompressed += dns.Len(rr)
	}
	total := 0
	for i, b := range raws {
		total += len(b)
		m := ms[i]
		if len(b) > msgBudget+512 {
			t.Errorf("message %d: %d bytes, over the budget", i+1, len(b))
		}
		if i < len(raws)-1 && len(b) < msgBudget/2 {
			t.Errorf("message %d: %d bytes, badly filled", i+1, len(b))
		}
		if !m.Authoritative || !m.Response || m.Id != ms[0].Id {
			t.Errorf("message %d: header %v", i+1, m.MsgHdr)
		}
		if (i == 0) != (len(m.Question) == 1) {
			t.Errorf("message %d: %d questions (want one in the first message only)", i+1, len(m.Question))
		}
	}
	if total >= uncompressed {
		t.Errorf("%d bytes on the wire for %d uncompressed: compression off?", total, uncompressed)
	}
	t.Logf("%d records in %d messages, %d bytes (%d uncompressed)", len(rrs), len(raws), total, uncompressed)
	// Counted when the server has written the last message, which can be
	// after the client has read it.
	waitFor(t, "Stats.AXFR = 2", func() bool { return ts.x.Stats.AXFR.Load() >= 2 })
	if got := ts.x.Stats.AXFR.Load(); got != 2 {
		t.Errorf("Stats.AXFR = %d, want 2", got)
	}
}

func TestAXFRSmallZoneOneMessage(t *testing.T) {
	ts := startServer(t, Config{Zones: []Zone{openZone()}})
	z := baseVersion(7, 3).zone(t)
	ts.publish(Snapshot{Zone: z})
	rrs, msgs, err := transferIn(ts.addr, axfrQuery("EXAMPLE.test."), nil) // case does not matter
	if err != nil {
		t.Fatal(err)
	}
	if msgs != 1 {
		t.Errorf("%d messages, want 1", msgs)
	}
	sameSet(t, "AXFR", rrs[:len(rrs)-1], z.Records())
}

// signedQuery returns q signed with key, and the request MAC.
func signedQuery(t testing.TB, q *dns.Msg, key Key, when time.Time) ([]byte, string) {
	t.Helper()
	c, err := key.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Provider()
	if err != nil {
		t.Fatal(err)
	}
	q.SetTsig(c.Name, c.Algorithm, 300, when.Unix())
	b, mac, err := dns.TsigGenerateWithProvider(q, p, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b, mac
}

// verifyChain checks that every message is signed with key and that the
// MACs chain (RFC 8945 §5.3.1), independently of the server's code path.
func verifyChain(t testing.TB, raws [][]byte, reqMAC string, key Key) {
	t.Helper()
	c, _ := key.Canonical()
	p, _ := c.Provider()
	mac := reqMAC
	for i, b := range raws {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		ts := m.IsTsig()
		if ts == nil {
			t.Fatalf("message %d of %d not signed", i+1, len(raws))
		}
		if err := dns.TsigVerifyWithProvider(bytes.Clone(b), p, mac, i > 0); err != nil {
			t.Fatalf("message %d of %d: %v", i+1, len(raws), err)
		}
		mac = ts.MAC
	}
}

func TestTSIG(t *testing.T) {
	keys := []Key{
		{Name: "k256.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0LXNoYTI1Ni1rZXktZm9yLXRlc3Rz"},
		{Name: "kmd5.", Algorithm: "hmac-md5", Secret: "bWQ1LXNlY3JldC1mb3ItdGVzdHM="},
		{Name: "k512.", Algorithm: "HMAC-SHA512", Secret: "c2hhNTEyLXNlY3JldC1mb3ItdGVzdHMtb2YteGRwbnM="},
		{Name: "other.", Algorithm: "hmac-sha256", Secret: "b3RoZXIta2V5LXNlY3JldA=="},
	}
	ts := startServer(t, Config{Keys: keys, Zones: []Zone{{Name: testOrigin,
		AllowTransfer: ACL{Prefixes: loopback, Keys: []string{"k256", "kmd5.", "k512."}}}}})
	z := baseVersion(1, 2000).zone(t)
	ts.publish(Snapshot{Zone: z})

	for _, k := range keys[:3] {
		t.Run("right key "+k.Algorithm, func(t *testing.T) {
			rrs, msgs, err := transferIn(ts.addr, axfrQuery(testOrigin), &k)
			if err != nil {
				t.Fatal(err)
			}
			sameSet(t, "signed AXFR", rrs[:len(rrs)-1], z.Records())
			if msgs < 3 {
				t.Errorf("%d messages, want several", msgs)
			}
			pkt, mac := signedQuery(t, axfrQuery(testOrigin), k, time.Now())
			raws, _ := rawTransfer(t, ts.addr, pkt, soaTwice)
			verifyChain(t, raws, mac, k)
		})
	}

	wrongSecret := keys[0]
	wrongSecret.Secret = "d3Jvbmctc2VjcmV0"
	unknown := Key{Name: "nobody.", Algorithm: "hmac-sha256", Secret: keys[0].Secret}
	wrongAlg := Key{Name: "k256.", Algorithm: "hmac-sha512", Secret: keys[0].Secret}
	for _, c := range []struct {
		name     string
		key      *Key
		when     time.Time
		rcode    int
		tsigErr  uint16
		signedOK bool // the answer carries a valid MAC
	}{
		{name: "wrong secret", key: &wrongSecret, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadSig},
		{name: "unknown key", key: &unknown, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
		{name: "wrong algorithm", key: &wrongAlg, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
		// Signed too, but miekg/dns refuses to verify any NOTAUTH message.
		{name: "stale", key: &keys[0], when: time.Now().Add(-time.Hour), rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadTime},
		{name: "key not in the ACL", key: &keys[3], rcode: dns.RcodeRefused, signedOK: true},
		{name: "no key", rcode: dns.RcodeRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := axfrQuery(testOrigin)
			var pkt []byte
			var mac string
			if c.key != nil {
				when := c.when
				if when.IsZero() {
					when = time.Now()
				}
				pkt, mac = signedQuery(t, q, *c.key, when)
			} else {
				pkt, _ = q.Pack()
			}
			raws, ms := rawTransfer(t, ts.addr, pkt, func([]*dns.Msg) bool { return true })
			m := ms[0]
			if m.Rcode != c.rcode || len(m.Answer) != 0 {
				t.Fatalf("rcode %s with %d answers, want %s", dns.RcodeToString[m.Rcode], len(m.Answer), dns.RcodeToString[c.rcode])
			}
			tsig := m.IsTsig()
			switch {
			case c.key == nil:
				if tsig != nil {
					t.Errorf("answer to an unsigned query is signed")
				}
			case tsig == nil:
				t.Errorf("answer carries no TSIG")
			case tsig.Error != c.tsigErr:
				t.Errorf("TSIG error %d, want %d", tsig.Error, c.tsigErr)
			case c.signedOK:
				verifyChain(t, raws, mac, *c.key)
			case c.tsigErr == dns.RcodeBadTime:
				if tsig.MAC == "" || tsig.OtherLen != 6 {
					t.Errorf("BADTIME answer not signed, or without our time: %v", tsig)
				}
			case tsig.MAC != "":
				t.Errorf("%s answer has a MAC (RFC 8945 §5.3.2: unsigned)", dns.RcodeToString[int(c.tsigErr)])
			}
		})
	}
	waitFor(t, "Stats.Refused = 6", func() bool { return ts.x.Stats.Refused.Load() >= 6 })
	if got := ts.x.Stats.Refused.Load(); got != 6 {
		t.Errorf("Stats.Refused = %d, want 6", got)
	}
}

func TestRefusals(t *testing.T) {
	keys := []Key{{Name: "k.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0LXNoYTI1Ni1rZXktZm9yLXRlc3Rz"}}
	zones := []Zone{
		openZone(),
		{Name: "elsewhere.test.", AllowTransfer: ACL{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}},
		{Name: "nobody.test."},
		{Name: "keyonly.test.", AllowTransfer: ACL{Keys: []string{"k."}}},
		{Name: "expired.test.", AllowTransfer: ACL{Prefixes: loopback}},
		{Name: "unloaded.test.", AllowTransfer: ACL{Prefixes: loopback}},
	}
	ts := startServer(t, Config{Zones: zones, Keys: keys})
	for _, z := range zones[:5] {
		v := baseVersion(1, 2)
		rrs := []dns.RR{mustRR(t, strings.ReplaceAll(v.soa(), testOrigin, z.Name)), mustRR(t, z.Name+" 3600 NS ns.example.")}
		zz, _, err := zoneNew(z.Name, rrs)
		if err != nil {
			t.Fatal(err)
		}
		ts.src.Set(Snapshot{Zone: zz, Expired: z.Name == "expired.test."})
	}
	for _, c := range []struct {
		zone  string
		key   bool
		rcode int
	}{
		{testOrigin, false, dns.RcodeSuccess},
		{"elsewhere.test.", false, dns.RcodeRefused},
		{"nobody.test.", false, dns.RcodeRefused},
		{"keyonly.test.", false, dns.RcodeRefused},
		{"keyonly.test.", true, dns.RcodeRefused}, // signed, but no prefix admits us
		{"unknown.test.", false, dns.RcodeRefused},
		{"expired.test.", false, dns.RcodeServerFailure},
		{"unloaded.test.", false, dns.RcodeServerFailure},
	} {
		q := axfrQuery(c.zone)
		var pkt []byte
		if c.key {
			pkt, _ = signedQuery(t, q, keys[0], time.Now())
		} else {
			pkt, _ = q.Pack()
		}
		_, ms := rawTransfer(t, ts.addr, pkt, func([]*dns.Msg) bool { return true })
		if ms[0].Rcode != c.rcode {
			t.Errorf("%s (signed %v): %s, want %s", c.zone, c.key, dns.RcodeToString[ms[0].Rcode], dns.RcodeToString[c.rcode])
		}
		if c.rcode != dns.RcodeSuccess && (len(ms[0].Answer) != 0 || len(ms[0].Question) != 1) {
			t.Errorf("%s: refusal with %d answers, %d questions", c.zone, len(ms[0].Answer), len(ms[0].Question))
		}
	}
}

func TestFormErrAndBadVers(t *testing.T) {
	ts := startServer(t, Config{Zones: []Zone{openZone()}})
	ts.publish(Snapshot{Zone: baseVersion(1, 2).zone(t)})
	// IXFR without the client's SOA.
	q := new(dns.Msg)
	q.SetQuestion(testOrigin, dns.TypeIXFR)
	pkt, _ := q.Pack()
	_, ms := rawTransfer(t, ts.addr, pkt, func([]*dns.Msg) bool { return true })
	if ms[0].Rcode != dns.RcodeFormatError {
		t.Errorf("IXFR without SOA: %s", dns.RcodeToString[ms[0].Rcode])
	}
	q = axfrQuery(testOrigin)
	q.SetEdns0(1232, false)
	q.IsEdns0().SetVersion(1)
	pkt, _ = q.Pack()
	_, ms = rawTransfer(t, ts.addr, pkt, func([]*dns.Msg) bool { return true })
	if ms[0].Rcode != dns.RcodeBadVers || ms[0].IsEdns0() == nil {
		t.Errorf("EDNS version 1: %s", dns.RcodeToString[ms[0].Rcode])
	}
}

// ixfrVersions returns four versions of a zone, each changing a few records.
func ixfrVersions(t testing.TB, n int) []version {
	v1 := baseVersion(101, n)
	v2 := v1.next([]string{v1.rrs[10], v1.rrs[20]}, []string{"new2." + testOrigin + " 60 IN A 192.0.2.2", "host5." + testOrigin + " 300 IN AAAA 2001:db8::5"})
	v3 := v2.next([]string{"new2." + testOrigin + " 60 IN A 192.0.2.2"}, []string{"new3." + testOrigin + " 60 IN TXT \"three\""})
	v4 := v3.next([]string{v3.rrs[30], v3.rrs[31], v3.rrs[32]}, nil)
	return []version{v1, v2, v3, v4}
}

// applyIXFR applies an incremental IXFR stream (without its closing SOA) to
// base, checking its shape: our SOA, then per difference the old SOA and
// deletions, the new SOA and additions.
func applyIXFR(t testing.TB, base []dns.RR, rrs []dns.RR) []dns.RR {
	t.Helper()
	set := map[string]dns.RR{}
	for _, rr := range base {
		set[rrStrings([]dns.RR{rr})[0]] = rr
	}
	final := rrs[0].(*dns.SOA)
	adding := true
	for i, rr := range rrs[1:] {
		k := rrStrings([]dns.RR{rr})[0]
		if soa, ok := rr.(*dns.SOA); ok {
			adding = !adding
			if !adding {
				if _, ok := set[k]; !ok {
					t.Fatalf("record %d: diff starts from SOA %d, not the one we hold", i+2, soa.Serial)
				}
			}
		}
		if adding {
			if _, ok := set[k]; ok && rr.Header().Rrtype != dns.TypeSOA {
				t.Fatalf("record %d: adds %s, already there", i+2, k)
			}
			set[k] = rr
		} else {
			if _, ok := set[k]; !ok {
				t.Fatalf("record %d: deletes %s, not there", i+2, k)
			}
			delete(set, k)
		}
	}
	out := slices.Collect(func(yield func(dns.RR) bool) {
		for _, rr := range set {
			if !yield(rr) {
				return
			}
		}
	})
	if got := rrStrings([]dns.RR{final}); !slices.Contains(rrStrings(out), got[0]) {
		t.Fatalf("after the differences the SOA is not %d", final.Serial)
	}
	return out
}

func TestIXFR(t *testing.T) {
	ts := startServer(t, Config{Zones: []Zone{openZone()}})
	vs := ixfrVersions(t, 2500)
	zones := make([]*zone.Zone, len(vs))
	for i, v := range vs {
		zones[i] = v.zone(t)
	}
	journal := []xfr.Diff{diff(t, vs[0], vs[1]), diff(t, vs[1], vs[2]), diff(t, vs[2], vs[3])}
	cur := zones[3]
	ts.publish(Snapshot{Zone: cur, Journal: journal})

	for _, from := range []int{0, 1, 2} {
		rrs, _, err := transferIn(ts.addr, ixfrQuery(testOrigin, vs[from].serial), nil)
		if err != nil {
			t.Fatal(err)
		}
		wantLen := 2
		for _, d := range journal[from:] {
			wantLen += d.Len()
		}
		if len(rrs) != wantLen {
			t.Errorf("IXFR from %d: %d records, want %d (incremental)", vs[from].serial, len(rrs), wantLen)
		}
		got := applyIXFR(t, zones[from].Records(), rrs[:len(rrs)-1])
		sameSet(t, "zone after IXFR", got, cur.Records())
	}
	waitFor(t, "Stats.IXFRIncremental = 3", func() bool { return ts.x.Stats.IXFRIncremental.Load() >= 3 })
	if got := ts.x.Stats.IXFRIncremental.Load(); got != 3 {
		t.Errorf("Stats.IXFRIncremental = %d, want 3", got)
	}

	// Up to date, or newer than us: our SOA alone.
	for _, serial := range []uint32{104, 105} {
		rrs, _, err := transferIn(ts.addr, ixfrQuery(testOrigin, serial), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rrs) != 1 || rrs[0].(*dns.SOA).Serial != 104 {
			t.Errorf("IXFR from %d: %v, want our SOA alone", serial, rrs)
		}
	}

	// Older than the journal: the whole zone (AXFR-style IXFR). (miekg/dns
	// compares serials without RFC 1982 arithmetic: keep them small.)
	rrs, msgs, err := transferIn(ts.addr, ixfrQuery(testOrigin, 100), nil)
	if err != nil {
		t.Fatal(err)
	}
	if msgs < 3 || rrs[1].Header().Rrtype == dns.TypeSOA {
		t.Errorf("IXFR from before the journal: %d messages, second record %v", msgs, rrs[1])
	}
	sameSet(t, "full IXFR", rrs[:len(rrs)-1], cur.Records())

	// A journal with a gap cannot serve IXFR from before the gap.
	ts.publish(Snapshot{Zone: cur, Journal: []xfr.Diff{journal[0], journal[2]}})
	rrs, _, err = transferIn(ts.addr, ixfrQuery(testOrigin, 101), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameSet(t, "IXFR across a gap", rrs[:len(rrs)-1], cur.Records())
	// ... but can after it.
	rrs, _, err = transferIn(ts.addr, ixfrQuery(testOrigin, 103), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs) != 2+journal[2].Len() {
		t.Errorf("IXFR after the gap: %d records, want incremental", len(rrs))
	}
	if ts.x.Stats.IXFRFull.Load() != 2 || ts.x.Stats.IXFRCurrent.Load() != 2 {
		t.Errorf("Stats: full %d current %d, want 2 and 2", ts.x.Stats.IXFRFull.Load(), ts.x.Stats.IXFRCurrent.Load())
	}
}

func TestEDNSExpire(t *testing.T) {
	ts := startServer(t, Config{Zones: []Zone{openZone()}})
	z := baseVersion(1, 1500).zone(t)
	query := func(edns, expire bool) []*dns.Msg {
		q := axfrQuery(testOrigin)
		if edns {
			q.SetEdns0(1232, false)
			if expire {
				q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
			}
		}
		pkt, _ := q.Pack()
		_, ms := rawTransfer(t, ts.addr, pkt, soaTwice)
		return ms
	}
	expireOf := func(m *dns.Msg) (uint32, bool) {
		if opt := m.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_EXPIRE); ok {
					return e.Expire, true
				}
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		snap   Snapshot
		want   uint32
		edns   bool
		expire bool
	}{
		{"file zone: SOA expire", Snapshot{Zone: z}, 86400, true, true},
		{"secondary: time left", Snapshot{Zone: z, Expire: 89*time.Second + time.Millisecond}, 90, true, true},
		{"not asked", Snapshot{Zone: z, Expire: time.Minute}, 0, true, false},
		{"no EDNS", Snapshot{Zone: z, Expire: time.Minute}, 0, false, false},
	} {
		ts.publish(c.snap)
		ms := query(c.edns, c.expire)
		if len(ms) < 2 {
			t.Errorf("%s: %d messages, want several", c.name, len(ms))
		}
		for i, m := range ms {
			if (m.IsEdns0() != nil) != c.edns {
				t.Errorf("%s: message %d: OPT present %v", c.name, i+1, m.IsEdns0() != nil)
			}
			got, ok := expireOf(m)
			if ok != c.expire || got != c.want {
				t.Errorf("%s: message %d: EXPIRE %d (present %v), want %d", c.name, i+1, got, ok, c.want)
			}
		}
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return 0, errors.New("released")
}

func TestMaxTransfers(t *testing.T) {
	src := newSource()
	x, err := New(Config{Zones: []Zone{openZone()}, Source: src.Get, MaxTransfers: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	src.Set(Snapshot{Zone: baseVersion(1, 10).zone(t)})
	pkt, _ := axfrQuery(testOrigin).Pack()
	from := netip.MustParseAddr("127.0.0.1")
	bw := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() { done <- x.HandleTransfer(bw, pkt, from) }()
	<-bw.started
	var buf bytes.Buffer
	if err := x.HandleTransfer(&buf, pkt, from); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf.Bytes()[2:]); err != nil || m.Rcode != dns.RcodeServerFailure {
		t.Errorf("second transfer while one runs: %v %v, want SERVFAIL", m, err)
	}
	close(bw.release)
	if err := <-done; err == nil {
		t.Error("a failed write did not end the transfer with an error")
	}
	// The slot is free again.
	buf.Reset()
	if err := x.HandleTransfer(&buf, pkt, from); err != nil {
		t.Fatal(err)
	}
	if err := m.Unpack(buf.Bytes()[2:]); err != nil || m.Rcode != dns.RcodeSuccess {
		t.Errorf("after the first ended: %v %v", m.Rcode, err)
	}
	// A garbage query gets FORMERR; one too short to answer, an error.
	buf.Reset()
	if err := x.HandleTransfer(&buf, append(pkt[:12:12], 0xff), from); err != nil || buf.Len() != 14 || buf.Bytes()[5]&0xf != dns.RcodeFormatError {
		t.Errorf("garbage: %v %x", err, buf.Bytes())
	}
	if err := x.HandleTransfer(io.Discard, pkt[:5], from); err == nil {
		t.Error("5-byte query: no error")
	}
}

func TestNewErrors(t *testing.T) {
	src := func(string) (Snapshot, bool) { return Snapshot{}, false }
	k := Key{Name: "k.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0"}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no source", Config{}, "no Source"},
		{"bad zone", Config{Source: src, Zones: []Zone{{Name: "a..b"}}}, "not a domain name"},
		{"zone twice", Config{Source: src, Zones: []Zone{{Name: "a."}, {Name: "A"}}}, "listed twice"},
		{"bad algorithm", Config{Source: src, Keys: []Key{{Name: "k.", Algorithm: "gost", Secret: "c2VjcmV0"}}}, "unknown algorithm"},
		{"bad secret", Config{Source: src, Keys: []Key{{Name: "k.", Algorithm: "hmac-sha256", Secret: "not base64!"}}}, "not base64"},
		{"key twice", Config{Source: src, Keys: []Key{k, k}}, "listed twice"},
		{"unknown ACL key", Config{Source: src, Zones: []Zone{{Name: "a.", AllowTransfer: ACL{Keys: []string{"x."}}}}}, `no TSIG key "x."`},
		{"unknown notify key", Config{Source: src, Keys: []Key{k}, Zones: []Zone{{Name: "a.", NotifyKey: "y"}}}, `no TSIG key "y"`},
		{"bad prefix", Config{Source: src, Zones: []Zone{{Name: "a.", AllowTransfer: ACL{Prefixes: []netip.Prefix{{}}}}}}, "invalid prefix"},
		{"bad notify", Config{Source: src, Zones: []Zone{{Name: "a.", Notify: []netip.AddrPort{{}}}}}, "invalid address"},
	} {
		_, err := New(c.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrConfig with %q", c.name, err, c.want)
		}
	}
	x, err := New(Config{Source: src, Keys: []Key{k}, Zones: []Zone{{Name: "A.", NotifyKey: "K",
		Notify: []netip.AddrPort{netip.MustParseAddrPort("[::ffff:127.0.0.1]:0")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got := x.zones["a."].Notify[0].String(); got != "127.0.0.1:53" {
		t.Errorf("notify target %s, want 127.0.0.1:53", got)
	}
}

func TestSizer(t *testing.T) {
	// Up to the budget, the estimate never undercounts what miekg/dns packs.
	rrs := baseVersion(1, 3000).zone(t).Records()
	est, sum := sizer{}, 12
	m := new(dns.Msg)
	m.Compress = true
	for _, rr := range rrs {
		n := est.size(rr)
		if sum+n > msgBudget {
			break
		}
		sum += n
		m.Answer = append(m.Answer, rr)
	}
	packed, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if sum < len(packed) || sum > len(packed)*3/2 {
		t.Errorf("estimate %d for %d packed bytes", sum, len(packed))
	}
}
