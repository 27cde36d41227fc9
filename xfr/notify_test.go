package xfr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func notifyMsg(zone string, serial uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Answer = []dns.RR{soaRR(serial)}
	return m
}

func packMsg(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signMsg signs m with k at time signed and returns the packet and its MAC.
func signMsg(t *testing.T, m *dns.Msg, k *Key, signed time.Time) ([]byte, string) {
	t.Helper()
	nk, err := k.normalise()
	if err != nil {
		t.Fatal(err)
	}
	p, err := newKeyProvider(nk)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTsig(nk.Name, nk.Algorithm, 300, signed.Unix())
	b, mac, err := dns.TsigGenerateWithProvider(m, p, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b, mac
}

func TestHandleNotify(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	f.set(10, axfrOf(zoneRRs(t, 10)))
	key := &Key{Name: "notify-key.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
	wrong := &Key{Name: "notify-key.", Algorithm: "hmac-sha256", Secret: "b3RoZXJvdGhlcm90aGVyb3RoZXI="}
	stranger := &Key{Name: "stranger.", Algorithm: "hmac-sha256", Secret: key.Secret}
	keyed := netip.MustParseAddr("127.0.0.2")
	s := startSecondary(t, Config{Zones: []Zone{{
		Name: testZone,
		Primaries: []Primary{
			{Addr: f.addr},
			{Addr: netip.AddrPortFrom(keyed, 53), Key: key},
		},
		AllowNotify: []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")},
	}}}, nil)
	s.waitSerial(10, 3*time.Second)
	nk, _ := key.normalise()
	prov, _ := newKeyProvider(nk)

	unsigned := func() ([]byte, string) { return packMsg(t, notifyMsg(testZone, 11)), "" }
	signed := func(k *Key, at time.Time) func() ([]byte, string) {
		return func() ([]byte, string) { return signMsg(t, notifyMsg(testZone, 11), k, at) }
	}
	now := time.Now()
	cases := []struct {
		name     string
		pkt      func() ([]byte, string)
		from     string
		rcode    int
		tsigErr  int  // TSIG error in the answer; -1: no TSIG in the answer
		verified bool // the answer's TSIG must verify
		accepted bool
		// why: for a refusal (REFUSED, NOTAUTH), what its WARN log line
		// must say besides "NOTIFY refused" and the source address.
		why []string
	}{
		{"from the primary", unsigned, "127.0.0.1", dns.RcodeSuccess, -1, false, true, nil},
		{"v4-mapped source", unsigned, "::ffff:127.0.0.1", dns.RcodeSuccess, -1, false, true, nil},
		{"from a stranger", unsigned, "127.0.0.3", dns.RcodeRefused, -1, false, false, []string{"source is not a primary"}},
		{"keyed primary, unsigned", unsigned, "127.0.0.2", dns.RcodeRefused, -1, false, false, []string{"not signed", "key=notify-key."}},
		{"keyed primary, signed", signed(key, now), "127.0.0.2", dns.RcodeSuccess, dns.RcodeSuccess, true, true, nil},
		{"keyed primary, wrong secret", signed(wrong, now), "127.0.0.2", dns.RcodeNotAuth, dns.RcodeBadSig, false, false, []string{"key=notify-key.", "tsig_error=BADSIG"}},
		{"keyed primary, unknown key", signed(stranger, now), "127.0.0.2", dns.RcodeNotAuth, dns.RcodeBadKey, false, false, []string{"key we do not have", "key=stranger."}},
		// Signed, but miekg/dns refuses to verify any NOTAUTH answer.
		{"keyed primary, stale signature", signed(key, now.Add(-time.Hour)), "127.0.0.2", dns.RcodeNotAuth, dns.RcodeBadTime, false, false, []string{"key=notify-key.", "tsig_error=BADTIME"}},
		{"unkeyed primary, signed", signed(key, now), "127.0.0.1", dns.RcodeNotAuth, dns.RcodeBadKey, false, false, []string{"key we do not have", "key=notify-key."}},
		{"allowed prefix, unsigned", unsigned, "127.0.1.9", dns.RcodeRefused, -1, false, false, []string{"not signed"}},
		{"allowed prefix, signed", signed(key, now), "127.0.1.9", dns.RcodeSuccess, dns.RcodeSuccess, true, true, nil},
		{"unknown zone", func() ([]byte, string) { return packMsg(t, notifyMsg("other.test.", 1)), "" }, "127.0.0.1", dns.RcodeRefused, -1, false, false, []string{"not a secondary zone here", "zone=other.test."}},
		{"with EDNS", func() ([]byte, string) {
			m := notifyMsg(testZone, 11)
			m.SetEdns0(1232, false)
			return packMsg(t, m), ""
		}, "127.0.0.1", dns.RcodeSuccess, -1, false, true, nil},
		{"signed with EDNS", func() ([]byte, string) {
			m := notifyMsg(testZone, 11)
			m.SetEdns0(1232, false)
			return signMsg(t, m, key, now)
		}, "127.0.0.2", dns.RcodeSuccess, dns.RcodeSuccess, true, true, nil},
		{"not SOA", func() ([]byte, string) {
			m := notifyMsg(testZone, 11)
			m.Question[0].Qtype = dns.TypeA
			return packMsg(t, m), ""
		}, "127.0.0.1", dns.RcodeFormatError, -1, false, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.status(testZone).Counters
			pkt, mac := tc.pkt()
			mark := s.log.Len()
			out := s.m.HandleNotify(pkt, netip.MustParseAddr(tc.from))
			if out == nil {
				t.Fatal("no answer")
			}
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatal(err)
			}
			req := new(dns.Msg)
			_ = req.Unpack(pkt)
			if r.Id != req.Id || !r.Response || r.Opcode != dns.OpcodeNotify || r.Rcode != tc.rcode {
				t.Errorf("answer id %d qr %v opcode %d rcode %s, want id %d, NOTIFY, %s",
					r.Id, r.Response, r.Opcode, dns.RcodeToString[r.Rcode], req.Id, dns.RcodeToString[tc.rcode])
			}
			if (req.IsEdns0() != nil) != (r.IsEdns0() != nil) {
				t.Errorf("EDNS in the request %v, in the answer %v", req.IsEdns0() != nil, r.IsEdns0() != nil)
			}
			ts := r.IsTsig()
			switch {
			case tc.tsigErr < 0 && ts != nil:
				t.Errorf("unexpected TSIG in the answer: %v", ts)
			case tc.tsigErr >= 0 && ts == nil:
				t.Errorf("no TSIG in the answer")
			case ts != nil && int(ts.Error) != tc.tsigErr:
				t.Errorf("TSIG error %s, want %s", tsigRcode(ts.Error), tsigRcode(uint16(tc.tsigErr)))
			}
			if ts != nil && ts.Error == dns.RcodeBadTime && ts.OtherLen != 6 {
				t.Errorf("BADTIME without our time: %v", ts)
			}
			if tc.verified {
				if err := dns.TsigVerifyWithProvider(append([]byte(nil), out...), prov, mac, false); err != nil {
					t.Errorf("answer signature: %v", err)
				}
			}
			after := s.status(testZone).Counters
			if got := after.Notifies > before.Notifies; got != tc.accepted {
				t.Errorf("accepted %v, want %v (counters %+v)", got, tc.accepted, after)
			}
			if tc.rcode == dns.RcodeRefused && tc.name != "unknown zone" && after.NotifyDenied == before.NotifyDenied {
				t.Error("refusal not counted")
			}
			// The refusal is logged synchronously, naming the source
			// (unmapped) and the reason; an acceptance is logged too.
			logged := s.log.since(mark)
			src := " from=" + netip.MustParseAddr(tc.from).Unmap().String() + " "
			refused := logLines(logged, `msg="NOTIFY refused`)
			accepted := logLines(logged, `msg="NOTIFY accepted"`, src)
			switch {
			case tc.accepted:
				if len(accepted) != 1 || len(refused) != 0 {
					t.Errorf("accepted NOTIFY logged as:\n%s", logged)
				}
			case tc.rcode == dns.RcodeRefused || tc.rcode == dns.RcodeNotAuth:
				if want := append([]string{"level=WARN", `msg="NOTIFY refused: `, src}, tc.why...); len(refused) != 1 || len(logLines(refused[0]+" ", want...)) != 1 {
					t.Errorf("refusal logged as:\n%s\nwant one line with %q", logged, want)
				}
			}
		})
	}

	// Not a NOTIFY request: not ours to answer.
	q := new(dns.Msg)
	q.SetQuestion(testZone, dns.TypeSOA)
	if out := s.m.HandleNotify(packMsg(t, q), loopback); out != nil {
		t.Error("answered a query")
	}
	resp := notifyMsg(testZone, 11)
	resp.Response = true
	if out := s.m.HandleNotify(packMsg(t, resp), loopback); out != nil {
		t.Error("answered a NOTIFY response")
	}
	// A NOTIFY that does not parse gets FORMERR with its ID, and is logged
	// with its source.
	bad := packMsg(t, notifyMsg(testZone, 11))[:20]
	mark := s.log.Len()
	if out := s.m.HandleNotify(bad, netip.MustParseAddr("127.0.0.5")); len(out) != 12 || out[0] != bad[0] || out[1] != bad[1] || out[3]&0xf != dns.RcodeFormatError || out[2]&0x80 == 0 {
		t.Errorf("malformed NOTIFY: answer %x", out)
	}
	if l := logLines(s.log.since(mark), `msg="malformed NOTIFY"`, " from=127.0.0.5 "); len(l) != 1 {
		t.Errorf("malformed NOTIFY logged as:\n%s", s.log.since(mark))
	}
}

// A burst of NOTIFYs costs a few SOA checks, not one each.
func TestNotifyCoalesces(t *testing.T) {
	t.Parallel()
	f := startFake(t)
	f.set(10, axfrOf(zoneRRs(t, 10)))
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: f.addr}}}}}, nil)
	s.waitSerial(10, 3*time.Second)
	before := s.status(testZone).Counters.SOAQueries
	pkt := packMsg(t, notifyMsg(testZone, 10))
	for range 500 {
		if out := s.m.HandleNotify(pkt, loopback); out == nil {
			t.Fatal("no answer")
		}
	}
	time.Sleep(200 * time.Millisecond)
	st := s.status(testZone)
	n := st.Counters.SOAQueries - before
	t.Logf("500 NOTIFYs → %d SOA queries", n)
	if n < 1 || n > 50 || st.Counters.Notifies != 500 {
		t.Errorf("500 NOTIFYs → %d SOA queries (counters %+v)", n, st.Counters)
	}
}
