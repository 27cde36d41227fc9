package loader

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/cookie"
	"github.com/xdpns/xdpns/userspace/responder"
)

// cookieQuery is a query for short.xdp.test. A with a COOKIE option of
// these bytes.
func cookieQuery(t testing.TB, data []byte) []byte {
	return q(t, "short.xdp.test.", dns.TypeA, variant{edns: true, size: 1232,
		options: []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)}}})
}

// responseCookie returns the COOKIE option data of a response, nil if none.
func responseCookie(t testing.TB, resp []byte) []byte {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		t.Fatal(err)
	}
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if c, ok := opt.(*dns.EDNS0_COOKIE); ok {
				b, _ := hex.DecodeString(c.Cookie)
				return b
			}
		}
	}
	return nil
}

// TestCookies: with server.cookies, XDP answers COOKIE options byte for
// byte as the Go responder (userspace/cookie.Jar, the same secrets, the
// clock XDP stamps with): a client cookie alone gets a new server cookie;
// a valid fresh one is echoed; one older than half an hour, or made with
// the previous secret, is replaced; a bad one is treated as absent (RFC
// 7873 §5.2.4); a malformed option (FORMERR) and a missing server cookie
// while one is required (BADCOOKIE) are passed to Go. IPv4, IPv6 and
// IPv4-mapped IPv6 sources (hashed as IPv4, as Go unmaps).
func TestCookies(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	secret := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	jar, err := cookie.New(secret[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	rcfg := responder.Config{Cookies: jar}
	e := newEnv(t, Config{}, rcfg, z)
	jar.Now = e.x.CookieNow
	if err := e.x.SetCookies(&Cookies{Current: secret}); err != nil {
		t.Fatal(err)
	}
	client := []byte{0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8}
	frames := []frame{{}, {v6: true}, {v6: true, src: netip.MustParseAddr("::ffff:198.18.0.9")}}

	// answer runs the query through XDP and Go (From: the frame's client)
	// and compares; a second boundary between the two runs is retried.
	answer := func(t *testing.T, f frame, query []byte, reason string) []byte {
		t.Helper()
		for try := 0; ; try++ {
			ret, out, st := e.query(t, f.build(query))
			want := f.response(e.resp.Respond(&responder.Scratch{From: f.client()}, nil, query, false))
			if ret != xdpTx || st[reason] != 1 {
				t.Fatalf("verdict %d, counters %v; want tx with %s", ret, st, reason)
			}
			if string(out) == string(want) {
				checkChecksums(t, out)
				return out
			}
			if try == 2 {
				t.Fatalf("frame differs:\n%s", hexDiff(out, want))
			}
		}
	}
	pass := func(t *testing.T, f frame, query []byte, rcode int) {
		t.Helper()
		ret, _, st := e.query(t, f.build(query))
		if ret != xdpPass || st["pass__cookie"] != 1 {
			t.Fatalf("verdict %d, counters %v; want pass__cookie", ret, st)
		}
		m := new(dns.Msg)
		if err := m.Unpack(e.resp.Respond(&responder.Scratch{From: f.client()}, nil, query, false)); err != nil {
			t.Fatal(err)
		}
		if m.Rcode != rcode {
			t.Fatalf("Go answered %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[rcode])
		}
	}
	serverAt := func(sec *[16]byte, f frame, age time.Duration) []byte {
		ts := uint32(e.x.CookieNow().Add(-age).Unix())
		c := cookie.Server(sec, client, ts, f.client())
		return append(append([]byte{}, client...), c[:]...)
	}
	for _, f := range frames {
		t.Run(f.client().String(), func(t *testing.T) {
			// A client cookie alone: a new server cookie, valid for Go.
			out := answer(t, f, cookieQuery(t, client), "tx__answer")
			got := responseCookie(t, out[len(out)-udpPayloadLen(t, out):])
			if len(got) != 24 || string(got[:8]) != string(client) {
				t.Fatalf("cookie answered %x", got)
			}
			if _, valid, err := jar.Answer(nil, got, f.client()); err != nil || !valid {
				t.Fatalf("server cookie %x not valid for Go: %v", got, err)
			}
			// That cookie back: echoed.
			out = answer(t, f, cookieQuery(t, got), "tx__answer")
			if echo := responseCookie(t, out[len(out)-udpPayloadLen(t, out):]); string(echo) != string(got) {
				t.Fatalf("fresh cookie not echoed: sent %x, got %x", got, echo)
			}
			// Older than half an hour: valid, replaced.
			answer(t, f, cookieQuery(t, serverAt(&secret, f, 40*time.Minute)), "tx__answer")
			// Older than an hour, from the future, a wrong hash, another
			// version, another length: a new cookie.
			answer(t, f, cookieQuery(t, serverAt(&secret, f, 2*time.Hour)), "tx__answer")
			answer(t, f, cookieQuery(t, serverAt(&secret, f, -10*time.Minute)), "tx__answer")
			bad := serverAt(&secret, f, 0)
			bad[len(bad)-1] ^= 1
			answer(t, f, cookieQuery(t, bad), "tx__answer")
			other := serverAt(&secret, f, 0)
			other[8] = 2
			answer(t, f, cookieQuery(t, other), "tx__answer")
			answer(t, f, cookieQuery(t, append(append([]byte{}, client...), make([]byte, 20)...)), "tx__answer")
			// Malformed: FORMERR from Go.
			pass(t, f, cookieQuery(t, client[:5]), dns.RcodeFormatError)
			pass(t, f, cookieQuery(t, append(append([]byte{}, client...), 1, 2, 3, 4)), dns.RcodeFormatError)
			pass(t, f, cookieQuery(t, make([]byte, 41)), dns.RcodeFormatError)
		})
	}

	// After a rotation: a cookie made with the previous secret is valid
	// and replaced by one made with the new.
	var next [16]byte
	copy(next[:], "another secret!!")
	if err := jar.Rotate(next[:]); err != nil {
		t.Fatal(err)
	}
	if err := e.x.SetCookies(&Cookies{Current: next, Previous: secret, HasPrevious: true}); err != nil {
		t.Fatal(err)
	}
	old := serverAt(&secret, frame{}, time.Minute)
	out := answer(t, frame{}, cookieQuery(t, old), "tx__answer")
	got := responseCookie(t, out[len(out)-udpPayloadLen(t, out):])
	if _, valid, _ := jar.Answer(nil, got, clientAddr(false)); !valid || string(got) == string(old) {
		t.Fatalf("after rotation: sent %x, got %x (valid %v)", old, got, valid)
	}

	// Required: without a valid server cookie Go answers BADCOOKIE.
	e.resp = responder.New(responder.Config{Cookies: jar, RequireCookie: true, UDPPayload: responder.DefaultUDPPayload})
	e.resp.SetZones(e.respZones)
	if err := e.x.SetCookies(&Cookies{Current: next, Previous: secret, HasPrevious: true, Require: true}); err != nil {
		t.Fatal(err)
	}
	pass(t, frame{}, cookieQuery(t, client), responder.RcodeBadCookie)
	answer(t, frame{}, cookieQuery(t, got), "tx__answer")

	// Off: the option is ignored, as Go ignores it without a jar.
	e.resp = responder.New(responder.Config{UDPPayload: responder.DefaultUDPPayload})
	e.resp.SetZones(e.respZones)
	if err := e.x.SetCookies(nil); err != nil {
		t.Fatal(err)
	}
	out = answer(t, frame{}, cookieQuery(t, client), "tx__answer")
	if c := responseCookie(t, out[len(out)-udpPayloadLen(t, out):]); c != nil {
		t.Fatalf("cookies off: answered %x", c)
	}
}

// udpPayloadLen is the DNS message's length in a response frame.
func udpPayloadLen(t testing.TB, frame []byte) int {
	t.Helper()
	// The UDP header's length field is 8 bytes before the message; the
	// message runs to the end of the frame (no padding in responses).
	for off := 14; off+8 <= len(frame); off++ {
		if n := int(binary.BigEndian.Uint16(frame[off+4:])); n >= 8 && off+n == len(frame) && n-8 >= 12 &&
			binary.BigEndian.Uint16(frame[off+2:]) == 40000 {
			return n - 8
		}
	}
	t.Fatal("no UDP datagram in the frame")
	return 0
}
