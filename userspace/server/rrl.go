package server

import (
	"net/netip"

	"github.com/xdpns/xdpns/userspace/rrl"
)

// limit applies response rate limiting to one UDP response: resp itself,
// its truncated form (rewritten in place: it is never longer), or nil.
func (s *Server) limit(resp []byte, from netip.Addr) []byte {
	if resp == nil {
		return nil
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
