package loader

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
)

// strictDNS is an oracle independent of the C parser: the DNS payload of a
// frame that XDP may answer (Ethernet, up to two VLAN tags, IPv4 without
// options or fragments and with a good header checksum, or IPv6 without
// extension headers; UDP to port 53 whose length matches the IP payload).
func strictDNS(p []byte) ([]byte, bool) {
	l3 := 14
	if len(p) < l3 {
		return nil, false
	}
	et := binary.BigEndian.Uint16(p[12:])
	for i := 0; i < 2 && (et == 0x8100 || et == 0x88a8); i++ {
		if len(p) < l3+4 {
			return nil, false
		}
		et = binary.BigEndian.Uint16(p[l3+2:])
		l3 += 4
	}
	var udp []byte
	switch et {
	case 0x0800:
		if len(p) < l3+20 || p[l3] != 0x45 || binary.BigEndian.Uint16(p[l3+6:])&0x3fff != 0 || p[l3+9] != 17 {
			return nil, false
		}
		if fold(sum16(p[l3:l3+20])) != 0xffff {
			return nil, false
		}
		tot := int(binary.BigEndian.Uint16(p[l3+2:]))
		if tot < 28 || l3+tot > len(p) {
			return nil, false
		}
		udp = p[l3+20 : l3+tot]
	case 0x86dd:
		if len(p) < l3+40 || p[l3]>>4 != 6 || p[l3+6] != 17 {
			return nil, false
		}
		pl := int(binary.BigEndian.Uint16(p[l3+4:]))
		if l3+40+pl > len(p) {
			return nil, false
		}
		udp = p[l3+40 : l3+40+pl]
	default:
		return nil, false
	}
	if len(udp) < 8+12 || binary.BigEndian.Uint16(udp[2:]) != 53 || int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		return nil, false
	}
	return udp[8:], true
}

// TestMutations feeds mutated queries through XDP: it may answer only
// frames the oracle accepts, with the Go responder's bytes and valid
// checksums, and must pass everything else untouched.
func TestMutations(t *testing.T) {
	z := loadZone(t, "testdata/xdp.test.zone", "xdp.test.")
	signed := loadZone(t, "testdata/example.net.zone", "example.net.")
	e := newEnv(t, Config{}, responder.Config{}, z, signed)
	rng := rand.New(rand.NewPCG(4, 2))
	cookie := variant{edns: true, size: 1232, options: []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}}
	var seeds [][]byte
	for _, n := range []string{"short.xdp.test.", "x.xdp.test.", longName, "www.example.net.", "sub.example.net."} {
		for _, v := range []variant{noEDNS, edns, ednsDO, cookie} {
			for _, f := range []frame{{}, {v6: true}, {vlans: 1}, {vlans: 2, v6: true}} {
				seeds = append(seeds, f.build(q(t, n, dns.TypeA, v)))
			}
		}
	}
	const runs = 20000
	var tx int
	for i := 0; i < runs; i++ {
		if checkVerdict(t, e, mutate(rng, seeds[rng.IntN(len(seeds))])) {
			tx++
		}
	}
	t.Logf("%d mutated frames: %d answered, %d passed", runs, tx, runs-tx)
}

// checkVerdict runs pkt and checks the invariant: an answer only for a frame
// the oracle accepts, with the Go responder's bytes and valid checksums;
// otherwise the frame passed untouched. It reports whether XDP answered.
func checkVerdict(t *testing.T, e *env, pkt []byte) bool {
	t.Helper()
	ret, out := run(t, e.x.Program(), pkt)
	switch ret {
	case xdpTx:
		query, ok := strictDNS(pkt)
		if !ok {
			t.Fatalf("answered a frame the oracle rejects:\n%s", hexDiff(pkt, nil))
		}
		want := e.resp.Respond(&responder.Scratch{}, nil, query, false)
		got, ok := strictDNSReply(out)
		if !ok || string(got) != string(want) {
			t.Fatalf("answer differs from Go for query\n%s\n%s", hexDiff(query, nil), hexDiff(got, want))
		}
		checkChecksums(t, out)
		return true
	case xdpPass:
		if len(pkt) >= 14 && string(out[:len(pkt)]) != string(pkt) {
			t.Fatalf("passed frame modified:\n%s", hexDiff(out[:len(pkt)], pkt))
		}
	default:
		t.Fatalf("verdict %d", ret)
	}
	return false
}

// FuzzXDP checks the invariant on arbitrary frames:
// go test ./loader -fuzz FuzzXDP (root).
func FuzzXDP(f *testing.F) {
	z := loadZone(f, "testdata/xdp.test.zone", "xdp.test.")
	signed := loadZone(f, "testdata/example.net.zone", "example.net.")
	e := newEnv(f, Config{}, responder.Config{}, z, signed)
	for _, v := range []variant{noEDNS, ednsDO} {
		for _, fr := range []frame{{}, {v6: true, vlans: 2}} {
			f.Add(fr.build(q(f, "short.xdp.test.", dns.TypeA, v)))
			f.Add(fr.build(q(f, "www.example.net.", dns.TypeA, v)))
		}
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) < 14 || len(pkt) > 3000 {
			return // BPF_PROG_RUN wants an Ethernet header and a page
		}
		checkVerdict(t, e, pkt)
	})
}

// strictDNSReply is strictDNS for our responses (source port 53).
func strictDNSReply(p []byte) ([]byte, bool) {
	l3 := 14
	for binary.BigEndian.Uint16(p[l3-2:]) == 0x8100 || binary.BigEndian.Uint16(p[l3-2:]) == 0x88a8 {
		l3 += 4
	}
	l4 := l3 + 20
	if p[l3]>>4 == 6 {
		l4 = l3 + 40
	}
	return dnsPayload(p), binary.BigEndian.Uint16(p[l4:]) == 53
}

// mutate flips, sets, inserts or removes bytes, or cuts the frame.
func mutate(rng *rand.Rand, seed []byte) []byte {
	p := append([]byte{}, seed...)
	for n := 1 + rng.IntN(3); n > 0; n-- {
		i := rng.IntN(len(p))
		switch rng.IntN(6) {
		case 0:
			p[i] ^= 1 << rng.IntN(8)
		case 1:
			p[i] = byte(rng.IntN(256))
		case 2:
			p[i] = []byte{0, 1, 0x3f, 0x40, 0xc0, 0xff, 41, 'A'}[rng.IntN(8)]
		case 3:
			p = append(p[:i:i], append([]byte{byte(rng.IntN(256))}, p[i:]...)...)
		case 4:
			if len(p) > 15 {
				p = append(p[:i:i], p[i+1:]...)
			}
		case 5:
			p = p[:max(14, i)]
		}
	}
	return p
}
