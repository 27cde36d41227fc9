package responder

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/cookie"
	"github.com/xdpns/xdpns/userspace/zone"
)

func cookieQuery(c string) *dns.Msg {
	m := query("ns1.example.com.", dns.TypeA, true, false)
	o := m.IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c})
	return m
}

// responseCookie returns the COOKIE option of a response ("" when none).
func responseCookie(t *testing.T, m *dns.Msg) string {
	t.Helper()
	o := m.IsEdns0()
	if o == nil {
		t.Fatal("no OPT in the response")
	}
	for _, e := range o.Option {
		if c, ok := e.(*dns.EDNS0_COOKIE); ok {
			return c.Cookie
		}
	}
	return ""
}

func askFrom(t *testing.T, r *Responder, s *Scratch, m *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := r.Respond(s, nil, pkt, tcp)
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		t.Fatalf("unpack response: %v", err)
	}
	return resp
}

// RFC 7873 §5.2 through the responder: a client cookie alone gets a
// server cookie; the cookie sent back is valid and echoed; a bad server
// cookie is treated as none (§5.2.4); a malformed option is FORMERR
// (§5.2.2); with RequireCookie, UDP without a valid server cookie is
// BADCOOKIE with the new cookie (§5.2.3), TCP is answered; without the
// option nothing changes; cookies off: ignored.
func TestCookies(t *testing.T) {
	jar, err := cookie.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	z := loadZone(t, "testdata/example.com.zone", "example.com.")
	r := New(Config{NSID: "n1", Cookies: jar})
	r.SetZones([]*zone.Zone{z})
	s := &Scratch{From: netip.MustParseAddr("198.18.0.2")}
	const client = "0102030405060708"

	resp := askFrom(t, r, s, cookieQuery(client), false)
	got := responseCookie(t, resp)
	if resp.Rcode != dns.RcodeSuccess || len(got) != 48 || got[:16] != client || s.CookieOK {
		t.Fatalf("client cookie alone: rcode %d, cookie %q, ok %v", resp.Rcode, got, s.CookieOK)
	}
	resp = askFrom(t, r, s, cookieQuery(got), false)
	if again := responseCookie(t, resp); again != got || !s.CookieOK || len(resp.Answer) != 1 {
		t.Errorf("valid cookie: answer %v, cookie %q (sent %q), ok %v", resp.Answer, again, got, s.CookieOK)
	}
	// NSID asked too: both options.
	m := cookieQuery(got)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	if resp := askFrom(t, r, s, m, false); responseCookie(t, resp) != got || len(resp.IsEdns0().Option) != 2 {
		t.Errorf("cookie and nsid: %v", resp.IsEdns0().Option)
	}
	// Another address: that cookie is not valid for it.
	other := &Scratch{From: netip.MustParseAddr("198.18.0.3")}
	resp = askFrom(t, r, other, cookieQuery(got), false)
	if c := responseCookie(t, resp); c == got || other.CookieOK || resp.Rcode != dns.RcodeSuccess {
		t.Errorf("cookie from another address: %q ok %v rcode %d", c, other.CookieOK, resp.Rcode)
	}
	bad := got[:40] + "00000000"
	resp = askFrom(t, r, s, cookieQuery(bad), false)
	if c := responseCookie(t, resp); c[:16] != client || c == bad || s.CookieOK || resp.Rcode != dns.RcodeSuccess {
		t.Errorf("bad server cookie: %q ok %v rcode %d", c, s.CookieOK, resp.Rcode)
	}
	resp = askFrom(t, r, s, cookieQuery(client+"01"), false) // 9 bytes
	if resp.Rcode != dns.RcodeFormatError || responseCookie(t, resp) != "" {
		t.Errorf("malformed: rcode %d cookie %q", resp.Rcode, responseCookie(t, resp))
	}
	if resp := askFrom(t, r, s, query("ns1.example.com.", dns.TypeA, true, false), false); responseCookie(t, resp) != "" {
		t.Error("a cookie in the answer to a query without one")
	}

	req := New(Config{Cookies: jar, RequireCookie: true})
	req.SetZones([]*zone.Zone{z})
	for _, c := range []string{client, bad} {
		resp = askFrom(t, req, s, cookieQuery(c), false)
		if resp.Rcode != RcodeBadCookie || len(resp.Answer) != 0 || len(responseCookie(t, resp)) != 48 {
			t.Errorf("require, %s: rcode %d, answer %v, cookie %q", c, resp.Rcode, resp.Answer, responseCookie(t, resp))
		}
		// The BADCOOKIE answer's cookie then works.
		if resp := askFrom(t, req, s, cookieQuery(responseCookie(t, resp)), false); resp.Rcode != dns.RcodeSuccess || !s.CookieOK {
			t.Errorf("require, retried with the new cookie: rcode %d", resp.Rcode)
		}
		if resp := askFrom(t, req, s, cookieQuery(c), true); resp.Rcode != dns.RcodeSuccess {
			t.Errorf("require over TCP: rcode %d", resp.Rcode)
		}
	}
	if resp := askFrom(t, req, s, query("ns1.example.com.", dns.TypeA, true, false), false); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("require, no cookie at all: rcode %d", resp.Rcode)
	}

	off := New(Config{})
	off.SetZones([]*zone.Zone{z})
	if resp := askFrom(t, off, s, cookieQuery(client), false); responseCookie(t, resp) != "" {
		t.Error("cookies off, but a cookie answered")
	}
}
