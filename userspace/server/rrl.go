package server

import (
	"net/netip"

	"github.com/xdpns/xdpns/userspace/rrl"
)

// limit applies response rate limiting to one UDP response: resp itself,
// its truncated form (rewritten in place: it is never longer), or nil.
// A query with a valid server cookie (RFC 7873: its source address is
// proven) is not limited.
func (s *Server) limit(resp []byte, from netip.Addr, cookieOK bool) []byte {
	if resp == nil {
		return nil
	}
	if cookieOK {
		s.cfg.RRL.Stats.Exempt.Add(1)
		return resp
	}
	switch s.cfg.RRL.Check(from, rrl.KindOf(rrl.Rcode(resp))) {
	case rrl.Drop:
		return nil
	case rrl.Slip:
		out, err := rrl.Slipped(resp[:0], resp)
		if err != nil {
			return nil
		}
		return out
	}
	return resp
}
