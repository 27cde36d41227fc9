package xfrout

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Changed tells the zone's configured NOTIFY targets (RFC 1996) that origin
// changed. Each target gets a NOTIFY over UDP carrying the current SOA,
// signed with the zone's NotifyKey when set, sent again every NotifyTimeout
// until it is answered or NotifyRetries retries are spent. A newer Changed
// of the same zone replaces the round still in flight. It returns at once;
// targets come from the configuration only, never from zone data.
func (s *Server) Changed(origin string) {
	origin = dns.CanonicalName(origin)
	zc := s.zones[origin]
	if zc == nil || len(zc.Notify) == 0 {
		return
	}
	var soa dns.RR
	if snap, ok := s.cfg.Source(origin); ok && snap.Zone != nil {
		soa = soaCopy(snap)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	if cancel := s.notifying[origin]; cancel != nil {
		cancel()
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.notifying[origin] = cancel
	for _, target := range zc.Notify {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.notify(ctx, zc, target, soa)
		}()
	}
}

// errGaveUp: no answer after every attempt.
var errGaveUp = errors.New("no answer")

// notify sends one zone's NOTIFY to one target until it is answered.
func (s *Server) notify(ctx context.Context, zc *zoneConf, target netip.AddrPort, soa dns.RR) {
	log := s.log.With("zone", zc.Name, "target", target.String())
	if soa != nil {
		log = log.With("serial", soa.(*dns.SOA).Serial)
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
	if err != nil {
		log.Warn("NOTIFY not sent", "err", err)
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	sent := map[uint16]string{} // ID → the request MAC its answer chains to
	buf := make([]byte, 65535)
	for attempt := 0; attempt <= s.cfg.NotifyRetries; attempt++ {
		if ctx.Err() != nil {
			return
		}
		m := new(dns.Msg)
		m.SetNotify(zc.Name)
		m.RecursionDesired = false
		if soa != nil {
			m.Answer = []dns.RR{dns.Copy(soa)}
		}
		var pkt []byte
		mac := ""
		if k := zc.notifyKey; k != nil {
			m.SetTsig(k.Name, k.Algorithm, tsigFudge, time.Now().Unix())
			pkt, mac, err = dns.TsigGenerateWithProvider(m, k.p, "", false)
		} else {
			pkt, err = m.Pack()
		}
		if err != nil {
			log.Error("NOTIFY not sent: pack", "err", err)
			return
		}
		sent[m.Id] = mac
		if _, err := conn.Write(pkt); err != nil {
			log.Debug("NOTIFY send", "attempt", attempt+1, "err", err)
		} else {
			s.Stats.NotifySent.Add(1)
		}
		resp, err := s.awaitNotifyAnswer(ctx, conn, buf, zc, sent)
		if ctx.Err() != nil {
			return // superseded by a newer change, or closed
		}
		if err != nil {
			log.Debug("NOTIFY unanswered", "attempt", attempt+1, "err", err)
			continue
		}
		s.Stats.NotifyAnswered.Add(1)
		if resp.Rcode != dns.RcodeSuccess {
			log.Warn("NOTIFY answered with an error", "rcode", dns.RcodeToString[resp.Rcode], "attempts", attempt+1)
			return
		}
		log.Info("NOTIFY answered", "attempts", attempt+1)
		return
	}
	s.Stats.NotifyGaveUp.Add(1)
	log.Warn("NOTIFY gave up", "err", errGaveUp, "attempts", s.cfg.NotifyRetries+1)
}

// awaitNotifyAnswer reads datagrams for NotifyTimeout until one answers a
// NOTIFY we sent (ID, QR, opcode, question; TSIG when the zone signs).
// Stray and forged datagrams are skipped.
func (s *Server) awaitNotifyAnswer(ctx context.Context, conn *net.UDPConn, buf []byte, zc *zoneConf, sent map[uint16]string) (*dns.Msg, error) {
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.NotifyTimeout))
	if err := ctx.Err(); err != nil {
		return nil, err // cancelled before the deadline above replaced the AfterFunc's
	}
	for {
		n, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errGaveUp
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// ICMP port unreachable surfaces as one read error
			// (ECONNREFUSED): keep waiting until the deadline.
			continue
		}
		raw := buf[:n]
		m := new(dns.Msg)
		if m.Unpack(raw) != nil || !m.Response || m.Opcode != dns.OpcodeNotify {
			continue
		}
		mac, ok := sent[m.Id]
		if !ok || len(m.Question) != 1 || dns.CanonicalName(m.Question[0].Name) != zc.Name {
			continue
		}
		if k := zc.notifyKey; k != nil {
			t := m.IsTsig()
			if t == nil || dns.CanonicalName(t.Hdr.Name) != k.Name {
				s.log.Warn("NOTIFY answer not signed with our key; ignored", "zone", zc.Name, "rcode", dns.RcodeToString[m.Rcode])
				continue
			}
			if t.Error != dns.RcodeSuccess {
				s.log.Warn("NOTIFY rejected our signature", "zone", zc.Name, "tsig_error", dns.RcodeToString[int(t.Error)])
				return m, nil
			}
			if err := dns.TsigVerifyWithProvider(append([]byte(nil), raw...), k.p, mac, false); err != nil {
				s.log.Warn("NOTIFY answer fails TSIG; ignored", "zone", zc.Name, "err", err)
				continue
			}
		}
		return m, nil
	}
}
