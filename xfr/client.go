package xfr

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// xfrIn runs one AXFR or IXFR (ours is our SOA, for IXFR) from p over TCP
// and returns the assembled stream and the primary's EDNS EXPIRE, if any.
// Every message is checked (ID, question, rcode, TSIG) before its records
// are taken.
func xfrIn(ctx context.Context, p Primary, origin string, qtype uint16, ours *dns.SOA, to Timeouts, lim Limits) (*stream, *uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, to.Transfer)
	defer cancel()
	sg, err := newSigner(p.Key)
	if err != nil {
		return nil, nil, err
	}
	q := newQuery(origin, qtype)
	s := &stream{origin: origin, ixfr: qtype == dns.TypeIXFR, limits: lim}
	if s.ixfr {
		// RFC 1995 §3: the authority section carries the SOA we hold.
		soa := dns.Copy(ours).(*dns.SOA)
		q.Ns = []dns.RR{soa}
		s.ours = soa.Serial
	}
	wire, err := sg.pack(q)
	if err != nil {
		return nil, nil, err
	}
	tc, err := dialTCP(ctx, p.Addr, p.TLS, to.Query, to.Read)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	defer tc.Close()
	if err := tc.write(wire); err != nil {
		return nil, nil, fmt.Errorf("send query: %w", err)
	}
	var expire *uint32
	for i := 0; !s.done(); i++ {
		raw, err := tc.readRaw()
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (after %d messages)", context.Cause(ctx), i)
			} else if i == 0 {
				err = closedAfterTLS(p, err)
			}
			return nil, nil, fmt.Errorf("message %d: %w", i+1, err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(raw); err != nil {
			return nil, nil, fmt.Errorf("message %d: malformed: %w", i+1, err)
		}
		if err := checkAnswer(q, m, i == 0); err != nil {
			return nil, nil, fmt.Errorf("message %d: %w", i+1, err)
		}
		if err := sg.verify(raw, m); err != nil {
			return nil, nil, fmt.Errorf("message %d: %w", i+1, err)
		}
		if m.Rcode != dns.RcodeSuccess {
			err := error(errRcode{m.Rcode})
			if m.Rcode == dns.RcodeRefused || m.Rcode == dns.RcodeNotAuth {
				err = fmt.Errorf("%w (transfer not allowed to us%s)", err, keyHint(p))
			}
			return nil, nil, err
		}
		if m.Truncated {
			return nil, nil, fmt.Errorf("message %d: truncated (TC) on TCP", i+1)
		}
		if i == 0 {
			expire = ednsExpire(m)
		}
		if err := s.message(m.Answer); err != nil {
			return nil, nil, fmt.Errorf("message %d: %w", i+1, err)
		}
	}
	// RFC 8945 §5.3.1: the message that ends the transfer must be signed.
	if err := sg.end(); err != nil {
		return nil, nil, err
	}
	return s, expire, nil
}

func keyHint(p Primary) string {
	if p.Key == nil {
		return "; does the primary require a TSIG key?"
	}
	return ""
}

// errNotNewer: the primary offers nothing newer than what we serve.
var errNotNewer = errors.New("primary is not newer")
