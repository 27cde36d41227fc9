package xfrout

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// HandleSigned answers a query that carries a TSIG (server.Config.Signed):
// SOA checks from downstream secondaries are signed when they share a key
// with us, and RFC 8945 wants the answer verified and signed, or a TSIG
// error. respond answers the query without its TSIG (the responder). A key
// we do not know, or a bad MAC, gets NOTAUTH with BADKEY or BADSIG; a stale
// time BADTIME, signed (RFC 8945 §5.2).
func (s *Server) HandleSigned(pkt []byte, from netip.Addr, tcp bool, respond func(pkt []byte, tcp bool) []byte) []byte {
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		if len(pkt) < 12 {
			return nil
		}
		return formErr(pkt)
	}
	t := req.IsTsig()
	if t == nil || req.Response {
		return nil
	}
	var buf bytes.Buffer
	o := &out{s: s, w: &buf, req: req, edns: req.IsEdns0() != nil}
	if done, _ := o.verify(t, pkt); done {
		s.log.Warn("signed query refused", "from", from.Unmap().String(), "key", t.Hdr.Name, "tsig_error", o.tsigErr)
		if buf.Len() < 2 {
			return nil
		}
		return buf.Bytes()[2:] // writeFramed's length prefix
	}
	// Answer the query as if unsigned, then sign the answer.
	req.Extra = req.Extra[:len(req.Extra)-1]
	unsigned, err := req.Pack()
	if err != nil {
		return formErr(pkt)
	}
	resp := respond(unsigned, tcp)
	if resp == nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		return nil
	}
	sign := func(m *dns.Msg) []byte {
		m.SetTsig(o.key.Name, o.key.Algorithm, tsigFudge, time.Now().Unix())
		b, _, err := dns.TsigGenerateWithProvider(m, o.key.p, o.mac, false)
		if err != nil {
			return nil
		}
		return b
	}
	b := sign(m)
	if !tcp && len(b) > udpLimit(req) {
		// The TSIG pushed the answer over the client's limit: truncate.
		opt := m.IsEdns0()
		m.Answer, m.Ns, m.Extra, m.Truncated = nil, nil, nil, true
		if opt != nil {
			m.Extra = append(m.Extra, opt)
		}
		b = sign(m)
	}
	return b
}

// udpLimit is the client's UDP limit (RFC 6891 §6.2.5).
func udpLimit(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return max(512, min(int(opt.UDPSize()), ednsPayload))
	}
	return 512
}
