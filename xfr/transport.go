package xfr

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/xot"
)

// ednsPayload is the UDP payload size we advertise in SOA queries.
const ednsPayload = 1232

// tcpConn frames DNS messages on a TCP connection (RFC 1035 §4.2.2).
type tcpConn struct {
	c    net.Conn
	read time.Duration // per-message read timeout
	buf  []byte
}

// dialTCP connects to addr over TCP, or over TLS when tc is set (XoT:
// the same framing inside TLS, RFC 9103 §7). timeout bounds the connect
// and the TLS handshake together.
func dialTCP(ctx context.Context, addr netip.AddrPort, tc *tls.Config, timeout, read time.Duration) (*tcpConn, error) {
	d := &net.Dialer{Timeout: timeout}
	var c net.Conn
	var err error
	if tc != nil {
		td := tls.Dialer{NetDialer: d, Config: tc}
		c, err = td.DialContext(ctx, "tcp", addr.String())
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
	} else if c, err = d.DialContext(ctx, "tcp", addr.String()); err != nil {
		return nil, err
	}
	conn := &tcpConn{c: c, read: read}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	// Close the connection when ctx ends so a blocked read returns.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	conn.c = &closeHook{Conn: c, stop: stop}
	return conn, nil
}

type closeHook struct {
	net.Conn
	stop func() bool
}

func (c *closeHook) Close() error {
	c.stop()
	return c.Conn.Close()
}

func (t *tcpConn) Close() error { return t.c.Close() }

func (t *tcpConn) write(b []byte) error {
	if len(b) > 0xffff {
		return fmt.Errorf("message of %d bytes does not fit TCP framing", len(b))
	}
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	_, err := t.c.Write(out)
	return err
}

// readRaw returns the next message's bytes. The slice is reused by the next
// call.
func (t *tcpConn) readRaw() ([]byte, error) {
	_ = t.c.SetReadDeadline(time.Now().Add(t.read))
	var l [2]byte
	if _, err := io.ReadFull(t.c, l[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("connection closed by primary: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if cap(t.buf) < n {
		// Grown to what the messages need, not 64 KiB at once: a small
		// zone's transfer is one message of a few hundred bytes.
		t.buf = make([]byte, n, max(n, min(2*cap(t.buf), 0xffff), 512))
	}
	b := t.buf[:n]
	if _, err := io.ReadFull(t.c, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("message cut short: %w", err)
	}
	return b, nil
}

// errRcode is an answer with an error rcode.
type errRcode struct{ rcode int }

func (e errRcode) Error() string { return "primary answered " + rcodeName(e.rcode) }

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// checkAnswer checks that m answers q: ID, QR, opcode, and the question when
// the answer carries one (later messages of a transfer may omit it).
func checkAnswer(q, m *dns.Msg, first bool) error {
	if m.Id != q.Id {
		return fmt.Errorf("answer ID %d, want %d", m.Id, q.Id)
	}
	if !m.Response || m.Opcode != q.Opcode {
		return errors.New("not an answer to our query")
	}
	if len(m.Question) > 0 || first {
		if len(m.Question) != 1 {
			if m.Rcode != dns.RcodeSuccess {
				return nil // reported as errRcode by the caller
			}
			return fmt.Errorf("answer has %d questions", len(m.Question))
		}
		a, b := m.Question[0], q.Question[0]
		if !equalName(a.Name, b.Name) || a.Qtype != b.Qtype || a.Qclass != b.Qclass {
			return fmt.Errorf("answer is for %s %s, we asked %s %s", a.Name, dns.TypeToString[a.Qtype], b.Name, dns.TypeToString[b.Qtype])
		}
	}
	return nil
}

func equalName(a, b string) bool { return dns.CanonicalName(a) == dns.CanonicalName(b) }

// soaAnswer is what a primary said about its SOA.
type soaAnswer struct {
	soa    *dns.SOA
	expire *uint32 // EDNS EXPIRE (RFC 7314), when the primary sent it
	// unannounced: no SOA answer (the primary refused the query; see
	// refusedSOA); soa holds our serial or 0, and the transfer's serial
	// is not held to it.
	unannounced bool
}

// querySOA asks p for the zone's SOA over UDP, again over TCP when the
// answer is truncated; over TLS only when p has TLS (a primary reached
// over XoT is asked nothing in the clear: the SOA query is authenticated
// by the same certificate check as the transfer, and a wrong certificate
// is found at every check). The answer must be authoritative and signed
// when p has a key.
func querySOA(ctx context.Context, p Primary, origin string, timeout time.Duration) (soaAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := newQuery(origin, dns.TypeSOA)
	sg, err := newSigner(p.Key)
	if err != nil {
		return soaAnswer{}, err
	}
	wire, err := sg.pack(q)
	if err != nil {
		return soaAnswer{}, err
	}
	var raw []byte
	m := new(dns.Msg)
	if p.TLS == nil {
		raw, err = exchangeUDP(ctx, p.Addr, q.Id, wire)
		if err != nil {
			return soaAnswer{}, fmt.Errorf("SOA query: %w", err)
		}
		if err := m.Unpack(raw); err != nil {
			return soaAnswer{}, fmt.Errorf("SOA query: bad answer: %w", err)
		}
	}
	if p.TLS != nil || m.Truncated {
		proto := "TCP"
		if p.TLS != nil {
			proto = "TLS"
		}
		tc, err := dialTCP(ctx, p.Addr, p.TLS, timeout, timeout)
		if err != nil {
			return soaAnswer{}, fmt.Errorf("SOA query over %s: %w", proto, err)
		}
		defer tc.Close()
		if sg, err = newSigner(p.Key); err != nil {
			return soaAnswer{}, err
		}
		if wire, err = sg.pack(q); err != nil {
			return soaAnswer{}, err
		}
		if err := tc.write(wire); err != nil {
			return soaAnswer{}, fmt.Errorf("SOA query over %s: %w", proto, err)
		}
		if raw, err = tc.readRaw(); err != nil {
			return soaAnswer{}, fmt.Errorf("SOA query over %s: %w", proto, closedAfterTLS(p, err))
		}
		m = new(dns.Msg)
		if err := m.Unpack(raw); err != nil {
			return soaAnswer{}, fmt.Errorf("SOA query over %s: bad answer: %w", proto, err)
		}
	}
	if err := checkAnswer(q, m, true); err != nil {
		return soaAnswer{}, fmt.Errorf("SOA query: %w", err)
	}
	if err := sg.verify(raw, m); err != nil {
		return soaAnswer{}, fmt.Errorf("SOA query: %w", err)
	}
	if m.Rcode != dns.RcodeSuccess {
		return soaAnswer{}, fmt.Errorf("SOA query: %w", errRcode{m.Rcode})
	}
	if !m.Authoritative {
		return soaAnswer{}, errors.New("SOA query: answer not authoritative (primary does not serve the zone?)")
	}
	var soa *dns.SOA
	for _, rr := range m.Answer {
		if s, ok := rr.(*dns.SOA); ok && equalName(s.Hdr.Name, origin) {
			soa = s
			break
		}
	}
	if soa == nil {
		return soaAnswer{}, errors.New("SOA query: no SOA for the zone in the answer")
	}
	return soaAnswer{soa: soa, expire: ednsExpire(m)}, nil
}

// exchangeUDP sends wire to addr and waits for an answer with ID id,
// ignoring strays. A connected socket turns ICMP port unreachable into an
// immediate error instead of a timeout.
func exchangeUDP(ctx context.Context, addr netip.AddrPort, id uint16, wire []byte) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	bp := getMsgBuf()
	defer putMsgBuf(bp)
	buf := *bp
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if n >= 2 && binary.BigEndian.Uint16(buf) == id {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}

// newQuery returns a query for origin/t with EDNS and an empty EXPIRE
// option (RFC 7314 §3: asking for the primary's remaining expire).
func newQuery(origin string, t uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(origin, t)
	q.RecursionDesired = false
	q.SetEdns0(ednsPayload, false)
	opt := q.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
	return q
}

// ednsExpire returns the EDNS EXPIRE value of an answer, or nil.
func ednsExpire(m *dns.Msg) *uint32 {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EXPIRE); ok && !e.Empty {
			v := e.Expire
			return &v
		}
	}
	return nil
}

// closedAfterTLS turns a connection closed before the first answer from a
// TLS primary into xot.ErrClosed: the primary most likely refused our
// client certificate (or the lack of one) without a TLS alert. Closed
// shows as an end of stream, or as a reset when the primary closed with
// our query unread (named does, now and then: TestXoTBINDClientCert).
func closedAfterTLS(p Primary, err error) error {
	if p.TLS != nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("%w: %w", xot.ErrClosed, err)
	}
	return err
}
