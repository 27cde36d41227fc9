package xfrout

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
)

// TestSignedQueries: a secondary that shares a key with us signs its SOA
// checks; the answer must be signed with that key (RFC 8945 §5.3).
func TestSignedQueries(t *testing.T) {
	key := Key{Name: "k.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0LXNoYTI1Ni1rZXktZm9yLXRlc3Rz"}
	x, err := New(Config{Zones: []Zone{openZone()}, Keys: []Key{key}, Source: func(string) (Snapshot, bool) { return Snapshot{}, false }, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	r := responder.New(responder.Config{})
	r.SetServed(nil)
	z := baseVersion(7, 10).zone(t)
	rz, err := responder.Compile(z)
	if err != nil {
		t.Fatal(err)
	}
	r.Put(rz)
	var scratch responder.Scratch
	respond := func(pkt []byte, tcp bool) []byte { return r.Respond(&scratch, nil, pkt, tcp) }
	srv := server.New(server.Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1,
		Signed: func(pkt []byte, from netip.Addr, tcp bool) []byte { return x.HandleSigned(pkt, from, tcp, respond) }}, r, nil)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr := srv.Addrs()[0]

	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second, TsigSecret: map[string]string{"k.": key.Secret}}
		q := new(dns.Msg).SetQuestion(testOrigin, dns.TypeSOA)
		q.SetTsig("k.", dns.HmacSHA256, 300, time.Now().Unix())
		resp, _, err := c.Exchange(q, addr) // miekg/dns verifies the answer's TSIG
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if resp.IsTsig() == nil || len(resp.Answer) != 1 || resp.Answer[0].(*dns.SOA).Serial != 7 {
			t.Errorf("%s: signed SOA answer: %v", proto, resp)
		}
	}
	// An unknown key: NOTAUTH with BADKEY, unsigned.
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, TsigSecret: map[string]string{"other.": key.Secret}}
	q := new(dns.Msg).SetQuestion(testOrigin, dns.TypeSOA)
	q.SetTsig("other.", dns.HmacSHA256, 300, time.Now().Unix())
	resp, _, _ := c.Exchange(q, addr)
	if resp == nil || resp.Rcode != dns.RcodeNotAuth || resp.IsTsig() == nil || resp.IsTsig().Error != dns.RcodeBadKey {
		t.Errorf("unknown key: %v", resp)
	}
	// A wrong secret: BADSIG.
	c = &dns.Client{Net: "udp", Timeout: 2 * time.Second, TsigSecret: map[string]string{"k.": "d3Jvbmc="}}
	q = new(dns.Msg).SetQuestion(testOrigin, dns.TypeSOA)
	q.SetTsig("k.", dns.HmacSHA256, 300, time.Now().Unix())
	resp, _, _ = c.Exchange(q, addr)
	if resp == nil || resp.Rcode != dns.RcodeNotAuth || resp.IsTsig() == nil || resp.IsTsig().Error != dns.RcodeBadSig {
		t.Errorf("bad secret: %v", resp)
	}
}
