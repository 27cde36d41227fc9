package loader

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// requireRoot skips a test that needs BPF privileges, except in CI, which
// runs as root and must not skip them.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root (CI must run BPF tests as root)")
	}
	t.Skip("needs root")
}

// Test addresses: the benchmarking ranges of the design notes.
var (
	clientMAC = []byte{0x02, 0, 0, 0, 0, 0x02}
	serverMAC = []byte{0x02, 0, 0, 0, 0, 0x01}
	client4   = netip.MustParseAddr("198.18.0.2")
	server4   = netip.MustParseAddr("198.18.0.1")
	client6   = netip.MustParseAddr("2001:2::2")
	server6   = netip.MustParseAddr("2001:2::1")
)

// frame describes the L2-L4 of a query.
type frame struct {
	v6      bool
	vlans   int        // 0, 1 or 2 tags (the outer one 802.1ad when 2)
	sport   uint16     // client port; 0: 40000
	dport   uint16     // server port; 0: 53
	pad     int        // bytes after the UDP datagram (Ethernet padding)
	badUDP  bool       // write a wrong UDP checksum (XDP must not care)
	partial bool       // write only the pseudo-header sum, as a local socket does
	src     netip.Addr // client address; zero: client4 or client6
}

// client is the frame's client address.
func (f frame) client() netip.Addr {
	if f.src.IsValid() {
		return f.src
	}
	return clientAddr(f.v6)
}

func (f frame) ports() (uint16, uint16) {
	s, d := f.sport, f.dport
	if s == 0 {
		s = 40000
	}
	if d == 0 {
		d = 53
	}
	return s, d
}

func (f frame) l2() []byte {
	b := append(append([]byte{}, serverMAC...), clientMAC...)
	tpids := []uint16{0x8100}
	if f.vlans == 2 {
		tpids = []uint16{0x88a8, 0x8100}
	}
	for i := 0; i < f.vlans; i++ {
		b = binary.BigEndian.AppendUint16(b, tpids[i])
		b = binary.BigEndian.AppendUint16(b, uint16(100+i))
	}
	if f.v6 {
		return binary.BigEndian.AppendUint16(b, 0x86dd)
	}
	return binary.BigEndian.AppendUint16(b, 0x0800)
}

// build returns the query frame carrying payload from client to server.
func (f frame) build(payload []byte) []byte {
	sp, dp := f.ports()
	return buildFrame(f.l2(), f.v6, false, f.client(), serverAddr(f.v6), sp, dp, payload, f.pad, f.badUDP, f.partial)
}

// response returns the frame XDP must send for a response payload.
func (f frame) response(payload []byte) []byte {
	sp, dp := f.ports()
	l2 := f.l2()
	copy(l2[0:6], clientMAC)
	copy(l2[6:12], serverMAC)
	return buildFrame(l2, f.v6, true, serverAddr(f.v6), f.client(), dp, sp, payload, 0, false, false)
}

func clientAddr(v6 bool) netip.Addr {
	if v6 {
		return client6
	}
	return client4
}

func serverAddr(v6 bool) netip.Addr {
	if v6 {
		return server6
	}
	return server4
}

func buildFrame(l2 []byte, v6, reply bool, src, dst netip.Addr, sp, dp uint16, payload []byte, pad int, badUDP, partial bool) []byte {
	udp := binary.BigEndian.AppendUint16(nil, sp)
	udp = binary.BigEndian.AppendUint16(udp, dp)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0)
	udp = append(udp, payload...)
	pseudo := pseudoSum(src, dst, len(udp))
	switch {
	case partial:
		binary.BigEndian.PutUint16(udp[6:], ^fold(pseudo)) // as CHECKSUM_PARTIAL leaves it
	default:
		c := ^fold(pseudo + sum16(udp))
		if c == 0 {
			c = 0xffff
		}
		if badUDP {
			c ^= 0x5555
		}
		binary.BigEndian.PutUint16(udp[6:], c)
	}
	b := append([]byte{}, l2...)
	if v6 {
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
		ip[6] = 17
		ip[7] = 64
		if !reply {
			ip[1] = 0x0a // a traffic class and flow label XDP must reset
			ip[3] = 0x77
			ip[7] = 57
		}
		s, d := src.As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		b = append(b, ip...)
	} else {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		ip[6] = 0x40 // DF
		ip[8] = 64
		ip[9] = 17
		if !reply {
			ip[1] = 0x10 // TOS, ID, TTL that XDP must reset
			binary.BigEndian.PutUint16(ip[4:], 0x1234)
			ip[6] = 0
			ip[8] = 57
		}
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum16(ip)))
		b = append(b, ip...)
	}
	b = append(b, udp...)
	return append(b, make([]byte, pad)...)
}

// sum16 is the one's-complement sum of b as big-endian words, unfolded.
func sum16(b []byte) uint64 {
	var s uint64
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func pseudoSum(src, dst netip.Addr, udpLen int) uint64 {
	s := sum16(src.AsSlice()) + sum16(dst.AsSlice())
	return s + 17 + uint64(udpLen)
}

// checkChecksums verifies the IPv4 header and UDP checksums of a frame.
func checkChecksums(t testing.TB, pkt []byte) {
	t.Helper()
	l3 := 14
	for binary.BigEndian.Uint16(pkt[l3-2:]) == 0x8100 || binary.BigEndian.Uint16(pkt[l3-2:]) == 0x88a8 {
		l3 += 4
	}
	var src, dst netip.Addr
	var udp []byte
	if pkt[l3]>>4 == 6 {
		src = netip.AddrFrom16([16]byte(pkt[l3+8 : l3+24]))
		dst = netip.AddrFrom16([16]byte(pkt[l3+24 : l3+40]))
		udp = pkt[l3+40 : l3+40+int(binary.BigEndian.Uint16(pkt[l3+4:]))]
	} else {
		if fold(sum16(pkt[l3:l3+20])) != 0xffff {
			t.Errorf("bad IPv4 header checksum")
		}
		src = netip.AddrFrom4([4]byte(pkt[l3+12 : l3+16]))
		dst = netip.AddrFrom4([4]byte(pkt[l3+16 : l3+20]))
		udp = pkt[l3+20 : l3+int(binary.BigEndian.Uint16(pkt[l3+2:]))]
	}
	if binary.BigEndian.Uint16(udp[4:]) != uint16(len(udp)) {
		t.Errorf("UDP length %d, datagram %d", binary.BigEndian.Uint16(udp[4:]), len(udp))
	}
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		t.Errorf("UDP checksum left zero")
	}
	if fold(pseudoSum(src, dst, len(udp))+sum16(udp)) != 0xffff {
		t.Errorf("bad UDP checksum %#04x", binary.BigEndian.Uint16(udp[6:]))
	}
}

// dnsPayload returns the DNS message of a frame.
func dnsPayload(pkt []byte) []byte {
	l3 := 14
	for binary.BigEndian.Uint16(pkt[l3-2:]) == 0x8100 || binary.BigEndian.Uint16(pkt[l3-2:]) == 0x88a8 {
		l3 += 4
	}
	if pkt[l3]>>4 == 6 {
		return pkt[l3+48 : l3+40+int(binary.BigEndian.Uint16(pkt[l3+4:]))]
	}
	return pkt[l3+28 : l3+int(binary.BigEndian.Uint16(pkt[l3+2:]))]
}

// run runs the program once on a fresh copy of pkt.
func run(t testing.TB, prog *ebpf.Program, pkt []byte) (uint32, []byte) {
	t.Helper()
	opts := ebpf.RunOptions{Data: pkt, DataOut: make([]byte, 4096), Repeat: 1}
	ret, err := prog.Run(&opts)
	if err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	return ret, opts.DataOut
}

// hexDiff shows two byte strings side by side, 16 bytes a line, marking
// the lines that differ.
func hexDiff(got, want []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "got %d bytes, want %d\n", len(got), len(want))
	for off := 0; off < max(len(got), len(want)); off += 16 {
		g := got[min(off, len(got)):min(off+16, len(got))]
		w := want[min(off, len(want)):min(off+16, len(want))]
		mark := "  "
		if string(g) != string(w) {
			mark = "!="
		}
		fmt.Fprintf(&b, "%04x %-32s %s %-32s\n", off, hex.EncodeToString(g), mark, hex.EncodeToString(w))
	}
	return b.String()
}

const (
	xdpPass = 2
	xdpTx   = 3
)

// env is a loaded program with its maps filled from zones, and the Go
// responder serving the same zones with the same settings.
type env struct {
	x    *XDP
	resp *responder.Responder
	im   *Image
	// respZones are the zones resp serves (for a test that makes a new
	// responder).
	respZones []*zone.Zone
}

func newEnv(t testing.TB, cfg Config, rcfg responder.Config, zs ...*zone.Zone) *env {
	t.Helper()
	return newEnvLoad(t, cfg, rcfg, "", zs...)
}

// How newEnvLoad loads the image: "" BuildImage and Load, as the tests
// of image contents need; loadInPlace, into a store sized from an
// estimate (LoadZones); loadShort, the same with the store's estimate cut
// short, so that LoadZones falls back to building the image first;
// loadShortKeys, with the index's cut short, so that it makes another.
const (
	loadInPlace   = "in-place"
	loadShort     = "short-store"
	loadShortKeys = "short-keys"
)

func newEnvLoad(t testing.TB, cfg Config, rcfg responder.Config, how string, zs ...*zone.Zone) *env {
	t.Helper()
	requireRoot(t)
	if rcfg.UDPPayload == 0 {
		rcfg.UDPPayload = responder.DefaultUDPPayload
	}
	cfg.UDPPayload = rcfg.UDPPayload
	cfg.NSID = rcfg.NSID != ""
	var im *Image
	var err error
	if how == "" {
		if im, err = BuildImage(mustZones(t, zs...)...); err != nil {
			t.Fatal(err)
		}
		cfg = cfg.SizeFor(im, DefaultHeadroom)
	}
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	switch how {
	case "":
		err = x.Load(im)
	case loadShort:
		shortEstimate = "store"
		_, err = x.loadInPlace(mustZones(t, zs...))
		shortEstimate = ""
		if !errors.Is(err, errNoRoom) {
			t.Fatalf("a short estimate: %v, want %v", err, errNoRoom)
		}
		im, err = x.LoadZones(zs...)
	case loadShortKeys:
		shortEstimate = "keys"
		im, err = x.LoadZones(zs...)
		shortEstimate = ""
	default:
		im, err = x.LoadZones(zs...)
	}
	if err != nil {
		t.Fatal(err)
	}
	if how != "" && (im.a.mem != nil || im.ix != nil) {
		t.Errorf("%s: the image LoadZones returned holds its store or index", how)
	}
	r := responder.New(rcfg)
	r.SetZones(zs)
	return &env{x: x, resp: r, im: im, respZones: zs}
}

// query runs pkt through XDP and returns verdict, output and the counters
// that moved.
func (e *env) query(t testing.TB, pkt []byte) (uint32, []byte, map[string]uint64) {
	t.Helper()
	before, err := e.x.Stats()
	if err != nil {
		t.Fatal(err)
	}
	ret, out := run(t, e.x.Program(), pkt)
	after, err := e.x.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return ret, out, after.Sub(before).NonZero()
}

func mustZones(t testing.TB, zs ...*zone.Zone) []ZoneEntries {
	t.Helper()
	entries, err := Zones(zs...)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func loadZone(t testing.TB, file, origin string) *zone.Zone {
	t.Helper()
	z, _, err := zone.Load(file, origin, zone.LoadOptions{AllowInclude: true})
	if err != nil {
		t.Fatal(err)
	}
	return z
}
