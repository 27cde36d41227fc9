package wire

import (
	"errors"
	"testing"

	"github.com/miekg/dns"
)

func pack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseQuery(t *testing.T) {
	q := new(dns.Msg).SetQuestion("WwW.Example.COM.", dns.TypeAAAA)
	q.SetEdns0(4096, true)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	var p Query
	if err := ParseQuery(pack(t, q), &p); err != nil {
		t.Fatal(err)
	}
	if string(p.Name()) != "\x03www\x07example\x03com\x00" || p.Type != dns.TypeAAAA || !p.EDNS || !p.DO || !p.NSID || p.UDPSize != 4096 {
		t.Errorf("parsed %+v", p)
	}
	if string(p.Question[1:4]) != "WwW" {
		t.Error("question not kept as sent")
	}
	if p.UDPLimit(1232) != 1232 || (&Query{}).UDPLimit(1232) != 512 {
		t.Error("UDP limits")
	}

	bad := map[string]func(*dns.Msg){
		"two questions": func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) },
		"answer record": func(m *dns.Msg) { m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: ".", Rrtype: 1, Class: 1}}} },
		"two OPTs":      func(m *dns.Msg) { m.SetEdns0(512, false); m.Extra = append(m.Extra, m.Extra[0]) },
	}
	for name, mod := range bad {
		m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
		mod(m)
		if err := ParseQuery(pack(t, m), &p); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
	m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	m.Response = true
	if err := ParseQuery(pack(t, m), &p); err != ErrDrop {
		t.Errorf("response: %v", err)
	}
	m = new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	m.SetEdns0(512, false)
	m.IsEdns0().SetVersion(1)
	if err := ParseQuery(pack(t, m), &p); err != ErrBadVers {
		t.Errorf("version 1: %v", err)
	}
	// Compression in the question is refused.
	raw := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}
	if err := ParseQuery(raw, &p); !errors.Is(err, ErrFormat) {
		t.Errorf("compressed question: %v", err)
	}
}

func TestHasTSIG(t *testing.T) {
	m := new(dns.Msg).SetQuestion("example.com.", dns.TypeSOA)
	if HasTSIG(pack(t, m)) {
		t.Error("plain query")
	}
	m.SetEdns0(1232, false)
	if HasTSIG(pack(t, m)) {
		t.Error("EDNS query")
	}
	m.SetTsig("k.", dns.HmacSHA256, 300, 0)
	b, err := m.Pack() // a TSIG RR with an empty MAC is enough to detect
	if err != nil {
		t.Fatal(err)
	}
	if !HasTSIG(b) {
		t.Error("signed query not detected")
	}
	if HasTSIG(b[:len(b)-3]) {
		t.Error("truncated message")
	}
}
