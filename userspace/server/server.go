// Package server runs the UDP and TCP listeners in front of the responder:
// one SO_REUSEPORT UDP socket per CPU with batched receive and send
// (recvmmsg/sendmmsg), and TCP per RFC 7766 (pipelined queries, idle timeout,
// a connection cap).
package server

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/rrl"
	"github.com/xdpns/xdpns/userspace/wire"
)

// Config is what the server needs from the configuration.
type Config struct {
	Listen         []string      // host:port; UDP and TCP on each
	UDPSockets     int           // per address; 0 = one per CPU
	TCPIdleTimeout time.Duration // 0 = 10s
	TCPMaxConns    int           // 0 = 1000

	// Notify, when set, takes NOTIFY requests (opcode 4) on UDP and TCP
	// before the responder sees them (it answers NOTIMP for them), with the
	// source address the ACL needs. It returns the answer or nil for none.
	Notify func(pkt []byte, from netip.Addr) []byte
	// Transfer, when set, takes AXFR and IXFR queries over TCP and writes
	// its answer messages to w, each already framed with its length. An
	// error ends the connection. Over UDP these queries go to the responder.
	Transfer func(w io.Writer, pkt []byte, from netip.Addr) error
	// Signed, when set, answers queries that carry a TSIG (RFC 8945): they
	// must be verified and their answers signed, which the responder does
	// not do. It returns the answer or nil for none.
	Signed func(pkt []byte, from netip.Addr, tcp bool) []byte
	// RRL, when set, rate-limits the responder's UDP answers
	// (server.rrl): each is sent, sent truncated or dropped.
	RRL *rrl.Limiter
	// ListenTLS are host:port served over TLS with TLS (DNS over TLS,
	// RFC 7858, and so zone transfers over TLS, RFC 9103): the same
	// framing, answers and hooks as TCP, inside TLS.
	ListenTLS []string
	TLS       *tls.Config
}

// isNotify reports whether pkt is a NOTIFY request: QR=0, opcode 4.
func isNotify(pkt []byte) bool {
	return len(pkt) >= wire.HeaderLen && pkt[2]&0x80 == 0 && (pkt[2]>>3)&0xf == 4
}

// isTransfer reports whether pkt is a standard query for AXFR or IXFR. Only
// the header and question are read: an IXFR query carries the client's SOA
// in the authority section, which wire.ParseQuery refuses for queries.
func isTransfer(pkt []byte) bool {
	if len(pkt) < wire.HeaderLen || pkt[2]&0x80 != 0 || (pkt[2]>>3)&0xf != 0 ||
		binary.BigEndian.Uint16(pkt[4:]) != 1 {
		return false
	}
	off := wire.HeaderLen
	for n := 0; off < len(pkt) && pkt[off] != 0; n++ {
		if pkt[off]&0xc0 != 0 || n > wire.MaxNameLen/2 {
			return false
		}
		off += 1 + int(pkt[off])
	}
	if off+5 > len(pkt) {
		return false
	}
	t := binary.BigEndian.Uint16(pkt[off+1:])
	return t == 252 || t == 251
}

// batch is how many datagrams one recvmmsg/sendmmsg call moves.
const batch = 64

// maxUDP is the largest datagram we read; larger queries are truncated by
// the kernel and then fail to parse (FORMERR or dropped).
const maxUDP = 4096

// Stats are cumulative counters, read with Load.
type Stats struct {
	UDPQueries, UDPResponses, TCPQueries, TCPConns, TCPRefused atomic.Uint64
}

// Server owns the sockets.
type Server struct {
	cfg   Config
	r     *responder.Responder
	log   *slog.Logger
	Stats Stats

	mu    sync.Mutex
	udp   []net.PacketConn
	tcp   []net.Listener
	tls   []net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  chan struct{}
	sem   chan struct{}
}

// New returns a server; Start binds it.
func New(cfg Config, r *responder.Responder, log *slog.Logger) *Server {
	if cfg.UDPSockets <= 0 {
		cfg.UDPSockets = runtime.NumCPU()
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = 10 * time.Second
	}
	if cfg.TCPMaxConns <= 0 {
		cfg.TCPMaxConns = 1000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, r: r, log: log, done: make(chan struct{}),
		conns: map[net.Conn]struct{}{}, sem: make(chan struct{}, cfg.TCPMaxConns)}
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// Start binds every listener. With port 0 in an address, the first UDP
// socket's port is used for the others of that address and for TCP; when TCP
// finds that port taken, the whole address is bound again on a new port.
func (s *Server) Start() error {
	for _, addr := range s.cfg.Listen {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("listen %q: %w", addr, err)
		}
		tries := 1
		if port == "0" {
			tries = 20
		}
		var udp []net.PacketConn
		var ln net.Listener
		for i := 0; i < tries; i++ {
			udp, ln, err = s.bind(host, addr)
			if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
				break
			}
		}
		if err != nil {
			s.Close()
			return err
		}
		s.mu.Lock()
		s.udp = append(s.udp, udp...)
		s.tcp = append(s.tcp, ln)
		s.mu.Unlock()
		s.log.Info("listening", "addr", ln.Addr().String(), "udp_sockets", len(udp))
	}
	if err := s.bindTLS(); err != nil {
		s.Close()
		return err
	}
	for _, pc := range s.udp {
		s.wg.Add(1)
		go s.serveUDP(pc.(*net.UDPConn))
	}
	for _, ln := range slices.Concat(s.tcp, s.tls) {
		s.wg.Add(1)
		go s.serveTCP(ln)
	}
	return nil
}

// bindTLS opens the TLS listeners. The handshake runs on a connection's
// first read, under the idle timeout, in that connection's goroutine.
func (s *Server) bindTLS() error {
	if len(s.cfg.ListenTLS) > 0 && s.cfg.TLS == nil {
		return errors.New("listen-tls without a TLS configuration")
	}
	for _, addr := range s.cfg.ListenTLS {
		tcpNet := "tcp4"
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
				tcpNet = "tcp6"
			}
		}
		ln, err := net.Listen(tcpNet, addr)
		if err != nil {
			return fmt.Errorf("listen tls %s: %w", addr, err)
		}
		s.mu.Lock()
		s.tls = append(s.tls, tls.NewListener(ln, s.cfg.TLS))
		s.mu.Unlock()
		s.log.Info("listening", "addr", ln.Addr().String(), "tls", true)
	}
	return nil
}

// TLSAddrs returns the bound TLS addresses, one per ListenTLS address.
func (s *Server) TLSAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ln := range s.tls {
		out = append(out, ln.Addr().String())
	}
	return out
}

// bind opens the UDP sockets and the TCP listener of one address.
func (s *Server) bind(host, addr string) ([]net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: reusePort}
	// udp4/udp6, not "udp": a wildcard "udp" socket is dual-stack AF_INET6,
	// on which IPv4 packet info does not work.
	udpNet, tcpNet := "udp4", "tcp4"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	var udp []net.PacketConn
	closeAll := func() {
		for _, pc := range udp {
			pc.Close()
		}
	}
	bound := addr
	for i := 0; i < s.cfg.UDPSockets; i++ {
		pc, err := lc.ListenPacket(context.Background(), udpNet, bound)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("listen udp %s: %w", bound, err)
		}
		bound = net.JoinHostPort(host, fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port))
		udp = append(udp, pc)
	}
	ln, err := lc.Listen(context.Background(), tcpNet, bound)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("listen tcp %s: %w", bound, err)
	}
	return udp, ln, nil
}

// Addrs returns the bound UDP addresses, one per configured address.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ln := range s.tcp {
		out = append(out, ln.Addr().String())
	}
	return out
}

// Close stops every listener and connection and waits for the goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	for _, pc := range s.udp {
		pc.Close()
	}
	for _, ln := range slices.Concat(s.tcp, s.tls) {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// pktinfo handles the local address of datagrams on a wildcard socket, so a
// reply leaves from the address the query was sent to.
type pktinfo interface {
	parse(oob []byte) []byte // returns the oob to send with the reply
}

type v4info struct{}

func (v4info) parse(oob []byte) []byte {
	var cm ipv4.ControlMessage
	if cm.Parse(oob) != nil || cm.Dst == nil {
		return nil
	}
	return (&ipv4.ControlMessage{Src: cm.Dst, IfIndex: cm.IfIndex}).Marshal()
}

type v6info struct{}

func (v6info) parse(oob []byte) []byte {
	var cm ipv6.ControlMessage
	if cm.Parse(oob) != nil || cm.Dst == nil {
		return nil
	}
	return (&ipv6.ControlMessage{Src: cm.Dst, IfIndex: cm.IfIndex}).Marshal()
}

func (s *Server) serveUDP(c *net.UDPConn) {
	defer s.wg.Done()
	local := c.LocalAddr().(*net.UDPAddr)
	var info pktinfo
	if local.IP.IsUnspecified() {
		// A wildcard socket: the reply must leave from the address the
		// query was sent to, so ask for it with every datagram.
		if local.IP.To4() != nil {
			if ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true) == nil {
				info = v4info{}
			}
		} else if ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true) == nil {
			info = v6info{}
		}
	}
	oobSize := 0
	if info != nil {
		oobSize = 128
	}
	mc, err := newMmsgConn(c, batch, maxUDP, oobSize)
	if err != nil {
		s.log.Error("udp socket", "err", err)
		return
	}
	outBufs := make([][]byte, batch)
	for i := range outBufs {
		outBufs[i] = make([]byte, 0, 65535)
	}
	var scratch responder.Scratch
	for {
		n, err := mc.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		s.Stats.UDPQueries.Add(uint64(n))
		k := 0
		for i := 0; i < n; i++ {
			pkt := mc.packet(i)
			var resp []byte
			switch {
			case s.cfg.Notify != nil && isNotify(pkt):
				resp = s.cfg.Notify(pkt, mc.from(i))
			case s.cfg.Signed != nil && wire.HasTSIG(pkt):
				resp = s.cfg.Signed(pkt, mc.from(i), false)
			default:
				scratch.From = mc.from(i)
				resp = s.r.Respond(&scratch, outBufs[k][:0], pkt, false)
				if s.cfg.RRL != nil {
					resp = s.limit(resp, scratch.From, scratch.CookieOK)
				}
			}
			if resp == nil {
				continue
			}
			var oob []byte
			if info != nil {
				oob = info.parse(mc.control(i))
			}
			mc.reply(k, i, resp, oob)
			k++
		}
		dropped := 0
		for sent := 0; sent < k; {
			w, err := mc.write(sent, k)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				s.log.Debug("udp write", "err", err)
				sent++ // drop the datagram that failed, keep the rest
				dropped++
				continue
			}
			sent += w
		}
		mc.release(k)
		s.Stats.UDPResponses.Add(uint64(k - dropped))
	}
}

// addrOf returns the IP of a UDP or TCP address, IPv4-mapped forms unmapped.
func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

func (s *Server) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("tcp accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			// At the cap: close at once rather than queue (RFC 7766 §6.2.2).
			s.Stats.TCPRefused.Add(1)
			c.Close()
			continue
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.Stats.TCPConns.Add(1)
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// serveConn answers pipelined queries on one connection in order until the
// client closes it or it is idle for the configured timeout.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		<-s.sem
		s.wg.Done()
	}()
	if tc, ok := c.(*tls.Conn); ok {
		// Handshake now rather than in the first read, to say why a
		// client was refused (no or a wrong client certificate).
		c.SetDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if err := tc.Handshake(); err != nil {
			s.log.Info("TLS handshake failed", "from", addrOf(c.RemoteAddr()), "err", err)
			return
		}
		c.SetDeadline(time.Time{})
	}
	var scratch responder.Scratch
	var lenbuf [2]byte
	buf := make([]byte, 0, 512)
	out := make([]byte, 0, 512)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if _, err := io.ReadFull(c, lenbuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenbuf[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		s.Stats.TCPQueries.Add(1)
		from := addrOf(c.RemoteAddr())
		if s.cfg.Transfer != nil && isTransfer(buf) {
			c.SetWriteDeadline(time.Time{}) // the handler bounds its own writes
			if err := s.cfg.Transfer(c, buf, from); err != nil {
				s.log.Debug("transfer", "from", from, "err", err)
				return
			}
			continue
		}
		var resp []byte
		var hook func([]byte) []byte
		switch {
		case s.cfg.Notify != nil && isNotify(buf):
			hook = func(p []byte) []byte { return s.cfg.Notify(p, from) }
		case s.cfg.Signed != nil && wire.HasTSIG(buf):
			hook = func(p []byte) []byte { return s.cfg.Signed(p, from, true) }
		}
		if hook != nil {
			if r := hook(buf); r != nil {
				resp = append(append(out[:0], 0, 0), r...)
			}
		} else {
			scratch.From = from
			resp = s.r.Respond(&scratch, append(out[:0], 0, 0), buf, true)
		}
		if resp == nil {
			continue // nothing to send (not a query)
		}
		out = resp
		binary.BigEndian.PutUint16(out, uint16(len(out)-2))
		c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
