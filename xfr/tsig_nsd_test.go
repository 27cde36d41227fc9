package xfr

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// Unsigned intermediate messages (RFC 8945 §5.3.1): crafted AXFR streams;
// a real NSD primary (NSD 4.6 signs every message of an AXFR, older NSDs
// only every 96th); OpenDNSSEC's signer, which still signs every 96th.

// refHash is the HMAC hash of each algorithm, kept apart from keyProvider's
// so that the streams below are not signed by the code under test.
var refHash = map[string]func() hash.Hash{
	hmacMD5:        md5.New,
	dns.HmacSHA1:   sha1.New,
	dns.HmacSHA224: sha256.New224,
	dns.HmacSHA256: sha256.New,
	dns.HmacSHA384: sha512.New384,
	dns.HmacSHA512: sha512.New,
}

// refMAC is the MAC of one signed message as RFC 8945 defines it: the
// previous MAC (length first), the unsigned messages since, the message
// without its TSIG, then all the TSIG variables (first) or the timers only.
func refMAC(k *Key, prev []byte, unsigned [][]byte, stripped []byte, ts *dns.TSIG, first bool) []byte {
	secret, _ := base64.StdEncoding.DecodeString(k.Secret)
	h := hmac.New(refHash[k.Algorithm], secret)
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(prev))))
	h.Write(prev)
	for _, u := range unsigned {
		h.Write(u)
	}
	h.Write(stripped)
	var b []byte
	if first {
		var name [256]byte
		n, _ := dns.PackDomainName(dns.CanonicalName(ts.Hdr.Name), name[:], 0, nil, false)
		b = append(b, name[:n]...)
		b = binary.BigEndian.AppendUint16(b, dns.ClassANY)
		b = binary.BigEndian.AppendUint32(b, ts.Hdr.Ttl)
		n, _ = dns.PackDomainName(dns.CanonicalName(ts.Algorithm), name[:], 0, nil, false)
		b = append(b, name[:n]...)
	}
	b = append(b, byte(ts.TimeSigned>>40), byte(ts.TimeSigned>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(ts.TimeSigned))
	b = binary.BigEndian.AppendUint16(b, ts.Fudge)
	if first {
		b = binary.BigEndian.AppendUint16(b, ts.Error)
		b = binary.BigEndian.AppendUint16(b, 0) // no other data
	}
	h.Write(b)
	return h.Sum(nil)
}

// craftAXFR answers req with an AXFR of testZone in n messages of a few
// records each, signing message i only when sign(i, n). Every signed message
// is signed by refMAC and, where miekg/dns can (no unsigned message before
// it, an algorithm it has), by dns.TsigGenerate too: the two must agree.
func craftAXFR(t *testing.T, req *dns.Msg, k *Key, n int, sign func(i, n int) bool, at time.Time) ([][]byte, error) {
	rt := req.IsTsig()
	if rt == nil {
		return nil, errors.New("request not signed")
	}
	prev, _ := hex.DecodeString(rt.MAC)
	soa := rr(t, "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60")
	var out, unsigned [][]byte
	for i := range n {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Extra = nil
		if i > 0 {
			m.Question = nil // as NSD: the question in the first message only
		}
		if i == 0 {
			m.Answer = append(m.Answer, soa, rr(t, "example.test. 300 IN NS ns1.example.test."), rr(t, "ns1.example.test. 300 IN A 198.18.0.1"))
		}
		for j := range 3 {
			m.Answer = append(m.Answer, rr(t, fmt.Sprintf("r%d-%d.example.test. 300 IN A 198.18.%d.%d", i, j, i%256, j)))
		}
		if i == n-1 {
			m.Answer = append(m.Answer, soa)
		}
		stripped, err := m.Pack()
		if err != nil {
			return nil, err
		}
		if !sign(i, n) {
			out = append(out, stripped)
			unsigned = append(unsigned, stripped)
			continue
		}
		ts := &dns.TSIG{
			Hdr:       dns.RR_Header{Name: k.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: k.Algorithm, TimeSigned: uint64(at.Unix()), Fudge: 300, OrigId: m.Id,
		}
		mac := refMAC(k, prev, unsigned, stripped, ts, i == 0)
		ts.MAC, ts.MACSize = hex.EncodeToString(mac), uint16(len(mac))
		tb := make([]byte, dns.Len(ts))
		tl, err := dns.PackRR(ts, tb, 0, nil, false)
		if err != nil {
			return nil, err
		}
		raw := append(append([]byte(nil), stripped...), tb[:tl]...)
		binary.BigEndian.PutUint16(raw[10:], binary.BigEndian.Uint16(raw[10:])+1)
		if len(unsigned) == 0 && k.Algorithm != hmacMD5 {
			mm := m.Copy()
			mm.SetTsig(k.Name, k.Algorithm, 300, at.Unix())
			want, _, err := dns.TsigGenerate(mm, k.Secret, hex.EncodeToString(prev), i > 0)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(want, raw) {
				return nil, fmt.Errorf("message %d: the reference signer and dns.TsigGenerate disagree", i)
			}
		}
		out = append(out, raw)
		prev, unsigned = mac, nil
	}
	return out, nil
}

// serveCrafted answers one transfer query on a loopback TCP port with the
// messages craft returns, edited by mutate.
func serveCrafted(t *testing.T, k *Key, n int, sign func(i, n int) bool, at time.Time, mutate func([][]byte) [][]byte) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		var lb [2]byte
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			t.Errorf("read query: %v", err)
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			t.Errorf("read query: %v", err)
			return
		}
		req := new(dns.Msg)
		if err := req.Unpack(q); err != nil {
			t.Errorf("query: %v", err)
			return
		}
		msgs, err := craftAXFR(t, req, k, n, sign, at)
		if err != nil {
			t.Errorf("craft: %v", err)
			return
		}
		if mutate != nil {
			msgs = mutate(msgs)
		}
		var w []byte
		for _, m := range msgs {
			w = binary.BigEndian.AppendUint16(w, uint16(len(m)))
			w = append(w, m...)
		}
		_, _ = c.Write(w)             // the client may hang up early on an error
		_, _ = io.Copy(io.Discard, c) // until it does
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

func TestTSIGUnsignedMessages(t *testing.T) {
	t.Parallel()
	every := func(k int) func(i, n int) bool {
		return func(i, n int) bool { return i%k == 0 || i == n-1 }
	}
	key := func(alg string) *Key {
		return &Key{Name: "xfr-key.", Algorithm: alg, Secret: base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))}
	}
	flipLast := func(i int) func([][]byte) [][]byte {
		return func(ms [][]byte) [][]byte { ms[i][len(ms[i])-1] ^= 1; return ms }
	}
	cases := []struct {
		name   string
		alg    string
		n      int
		sign   func(i, n int) bool
		skew   time.Duration
		mutate func([][]byte) [][]byte
		want   string // in the error; "" for success
	}{
		{name: "all signed", n: 40, sign: every(1)},
		{name: "every 3rd", n: 40, sign: every(3)},
		{name: "every 3rd md5", alg: hmacMD5, n: 40, sign: every(3)},
		{name: "every 3rd sha1", alg: dns.HmacSHA1, n: 40, sign: every(3)},
		{name: "every 3rd sha512", alg: dns.HmacSHA512, n: 40, sign: every(3)},
		{name: "as NSD", n: 250, sign: every(96)},
		{name: "99 unsigned in a row", n: 150, sign: every(100)},
		{name: "100 unsigned in a row", n: 150, sign: every(101), want: "answers 2 to 101 are unsigned: more than 99 in a row"},
		{name: "last unsigned", n: 40, sign: func(i, n int) bool { return i%3 == 0 && i != n-1 }, want: "the last 3 answers are unsigned"},
		{name: "only first signed", n: 5, sign: func(i, n int) bool { return i == 0 }, want: "the last 4 answers are unsigned"},
		{name: "first unsigned", n: 40, sign: func(i, n int) bool { return i%3 == 1 || i == n-1 }, want: "answer not signed"},
		{name: "tampered unsigned", n: 40, sign: every(3), mutate: flipLast(4), want: "answer 7: bad signature (BADSIG), covering the 2 unsigned answers before it"},
		{name: "tampered signed", n: 40, sign: every(3), mutate: func(ms [][]byte) [][]byte { ms[6][20] ^= 1; return ms }, want: "answer 7: bad signature (BADSIG)"},
		{name: "unsigned dropped", n: 40, sign: every(3), mutate: func(ms [][]byte) [][]byte { return append(ms[:4], ms[5:]...) }, want: "answer 6: bad signature (BADSIG), covering the 1 unsigned answers"},
		{name: "unsigned reordered", n: 40, sign: every(3), mutate: func(ms [][]byte) [][]byte { ms[4], ms[5] = ms[5], ms[4]; return ms }, want: "answer 7: bad signature"},
		{name: "unsigned inserted", n: 40, sign: every(3), mutate: func(ms [][]byte) [][]byte {
			return append(ms[:4], append([][]byte{ms[1]}, ms[4:]...)...)
		}, want: "answer 8: bad signature"},
		{name: "old", n: 10, sign: every(3), skew: -time.Hour, want: "BADTIME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alg := tc.alg
			if alg == "" {
				alg = dns.HmacSHA256
			}
			k := key(alg)
			addr := serveCrafted(t, k, tc.n, tc.sign, time.Now().Add(tc.skew), tc.mutate)
			to := Timeouts{Query: time.Second, Read: 2 * time.Second, Transfer: 5 * time.Second}
			s, _, err := xfrIn(context.Background(), Primary{Addr: addr, Key: k}, testZone, dns.TypeAXFR, nil, to, DefaultLimits)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				// SOA, NS, A of ns1, three records a message; no closing SOA.
				if got, want := len(s.full), 3+3*tc.n; got != want {
					t.Fatalf("%d records, want %d", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("transfer accepted, want an error with %q", tc.want)
			}
			if !errors.Is(err, ErrTSIG) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrTSIG and %q", err, tc.want)
			}
			t.Logf("%v", err)
		})
	}
}

// nsdPrimary is a running NSD serving testZone with TSIG-only transfers.
type nsdPrimary struct {
	addr netip.AddrPort
	log  func() string
}

// startNSDPrimary runs nsd in the foreground on a free loopback port with
// zone text and keys, each allowed to transfer from 127.0.0.1.
func startNSDPrimary(t *testing.T, text string, keys []*Key) *nsdPrimary {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "nsd")
	dir := t.TempDir()
	port := testenv.FreePort(t)
	zf := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(zf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	ip-address: 127.0.0.1@%[1]d
	port: %[1]d
	do-ip6: no
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "%[2]s"
	database: ""
	zonelistfile: "%[2]s/zone.list"
	xfrdfile: "%[2]s/xfrd.state"
	xfrdir: "%[2]s"
	pidfile: "%[2]s/nsd.pid"
	verbosity: 2
	hide-version: yes
	rrl-ratelimit: 0
remote-control:
	control-enable: no
`, port, dir)
	for _, k := range keys {
		alg := strings.TrimSuffix(k.Algorithm, ".")
		if k.Algorithm == hmacMD5 {
			alg = "hmac-md5"
		}
		fmt.Fprintf(&b, "key:\n\tname: %q\n\talgorithm: %s\n\tsecret: %q\n", k.Name, alg, k.Secret)
	}
	fmt.Fprintf(&b, "zone:\n\tname: %s\n\tzonefile: %q\n", testZone, zf)
	for _, k := range keys {
		fmt.Fprintf(&b, "\tprovide-xfr: 127.0.0.1 %s\n", k.Name)
	}
	conf := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProcess(t, "nsd", "-d", "-c", conf)
	addr := netip.AddrPortFrom(loopback, uint16(port))
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	p.WaitFor(t, 20*time.Second, func() error {
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion(testZone, dns.TypeSOA), addr.String())
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			return fmt.Errorf("SOA: %s", dns.RcodeToString[r.Rcode])
		}
		return nil
	})
	return &nsdPrimary{addr: addr, log: p.Output}
}

// nsdAXFR is what a reference client (miekg/dns messages, refMAC) saw of an
// AXFR from NSD.
type nsdAXFR struct {
	records          []dns.RR // closing SOA included
	messages, signed int
	longestUnsigned  int
}

// refAXFR transfers testZone from addr over its own TCP connection, checks
// every signed message with refMAC, and counts the messages and the
// unsigned ones.
func refAXFR(t *testing.T, addr netip.AddrPort, k *Key) nsdAXFR {
	t.Helper()
	q := new(dns.Msg).SetQuestion(testZone, dns.TypeAXFR)
	q.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
	wire, reqMAC, err := dns.TsigGenerate(q, k.Secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp4", addr.String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)); err != nil {
		t.Fatal(err)
	}
	prev, _ := hex.DecodeString(reqMAC)
	var out nsdAXFR
	var unsigned [][]byte
	for soas := 0; soas < 2; {
		var lb [2]byte
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			t.Fatalf("after %d messages: %v", out.messages, err)
		}
		raw := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, raw); err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(raw); err != nil {
			t.Fatal(err)
		}
		if m.Rcode != dns.RcodeSuccess {
			t.Fatalf("message %d: %s", out.messages+1, dns.RcodeToString[m.Rcode])
		}
		out.messages++
		for _, r := range m.Answer {
			if r.Header().Rrtype == dns.TypeSOA {
				soas++
			}
		}
		out.records = append(out.records, m.Answer...)
		ts := m.IsTsig()
		if ts == nil {
			unsigned = append(unsigned, raw)
			out.longestUnsigned = max(out.longestUnsigned, len(unsigned))
			continue
		}
		// The TSIG record as packed uncompressed must end the message.
		tb := make([]byte, dns.Len(ts))
		tl, err := dns.PackRR(ts, tb, 0, nil, false)
		if err != nil || !bytes.HasSuffix(raw, tb[:tl]) {
			t.Fatalf("message %d: TSIG record not at the end as expected (%v)", out.messages, err)
		}
		stripped := raw[:len(raw)-tl]
		binary.BigEndian.PutUint16(stripped[0:], ts.OrigId)
		binary.BigEndian.PutUint16(stripped[10:], binary.BigEndian.Uint16(stripped[10:])-1)
		mac := refMAC(k, prev, unsigned, stripped, ts, out.signed == 0)
		if hex.EncodeToString(mac) != strings.ToLower(ts.MAC) {
			t.Fatalf("message %d: NSD's MAC does not verify with the reference digest (%d unsigned before it)", out.messages, len(unsigned))
		}
		out.signed++
		prev, unsigned = mac, nil
	}
	if len(unsigned) != 0 {
		t.Fatalf("NSD left the last %d messages unsigned", len(unsigned))
	}
	return out
}

// bigZone is a zone whose AXFR from NSD takes a few hundred messages (NSD
// fills them to 16 KB).
func bigZone(serial uint32, n int) string {
	var b strings.Builder
	b.WriteString(zoneText(serial, 3600, 600, 86400))
	for i := range n {
		fmt.Fprintf(&b, "h%d IN A 198.18.%d.%d\nh%d IN TXT \"record %d of a zone that NSD sends in many messages\" \"%s\"\n",
			i, i/256%256, i%256, i, i, strings.Repeat("x", 100))
	}
	return b.String()
}

// A real NSD primary and a long AXFR (235 messages): the zone arrives whole
// with each algorithm, and a wrong secret gets nothing. NSD 4.6 signs every
// message, so this is the all-signed path against a real peer; the
// reference client would count unsigned runs if an NSD sent them.
func TestNSDTSIG(t *testing.T) {
	t.Parallel()
	mk := func(name, alg string) *Key {
		b := make([]byte, 32)
		copy(b, name) // distinct, fixed secrets
		return &Key{Name: name, Algorithm: alg, Secret: base64.StdEncoding.EncodeToString(b)}
	}
	keys := []*Key{mk("k-sha256.", dns.HmacSHA256), mk("k-md5.", hmacMD5)}
	const serial, pairs = 2024, 20_000
	text := bigZone(serial, pairs)
	start := time.Now()
	nsd := startNSDPrimary(t, text, keys)
	t.Logf("NSD up in %v", time.Since(start).Round(time.Millisecond))

	var want []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), testZone, "")
	for r, ok := zp.Next(); ok; r, ok = zp.Next() {
		want = append(want, r)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}

	// What NSD sends, seen by the reference client: many messages, every
	// signed one verifying against the reference digest.
	ref := refAXFR(t, nsd.addr, keys[0])
	t.Logf("NSD's AXFR: %d records in %d messages, %d signed, %d unsigned, at most %d unsigned in a row",
		len(ref.records), ref.messages, ref.signed, ref.messages-ref.signed, ref.longestUnsigned)
	// Old NSDs (AXFR_TSIG_SIGN_EVERY_NTH 96) left 95 of every 96 messages
	// unsigned; NSD 4.6 signs them all. Either way the stream must be long
	// enough for a run of 96 to show.
	if ref.messages <= 2*96 {
		t.Fatalf("NSD's AXFR has %d messages: the zone is too small to show runs of unsigned messages", ref.messages)
	}
	if a, b := canon(ref.records[:len(ref.records)-1]), canon(want); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("NSD's AXFR (%d records) differs from the zone file (%d records)", len(a), len(b))
	}

	primary := func(k *Key) Config {
		return Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: nsd.addr, Key: k}}}}}
	}
	for _, k := range keys {
		t.Run(strings.TrimSuffix(k.Name, "."), func(t *testing.T) {
			start := time.Now()
			s := startSecondary(t, primary(k), nil)
			st := s.waitSerial(serial, 10*time.Second)
			t.Logf("transferred and served in %v", time.Since(start).Round(time.Millisecond))
			if st.Counters.Full != 1 || st.Counters.Failures != 0 {
				t.Errorf("counters %+v: want one full transfer, no failure", st.Counters)
			}
			sameZone(t, want, s.served())
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		k := *keys[0]
		k.Secret = base64.StdEncoding.EncodeToString([]byte("not the secret NSD has, not at all"))
		s := startSecondary(t, primary(&k), nil)
		st := s.waitFor("a failed check", 5*time.Second, func(st ZoneStatus) bool { return st.Counters.Failures > 0 })
		if st.State != StateLoading || s.served() != nil {
			t.Errorf("zone served after a bad transfer: %+v", st)
		}
		if !strings.Contains(st.LastError, "BADSIG") || !strings.Contains(s.log.String(), "BADSIG") {
			t.Errorf("last error %q, want it (and the log) to say BADSIG; log:\n%s", st.LastError, s.log.String())
		}
		t.Logf("logged: %s", st.LastError)
	})
	if t.Failed() {
		t.Logf("NSD log:\n%s", nsd.log())
	}
}

// odsPrimary runs OpenDNSSEC's signer (ods-signerd) as a TSIG primary for
// testZone: it signs text with a P-256 key it keeps in a SoftHSM token of
// its own, then serves the signed zone by AXFR from 127.0.0.1 to key k. Its
// AXFR leaves 96 messages in a row unsigned (AXFR_TSIG_SIGN_EVERY_NTH in
// its wire/axfr.c), as older NSDs did.
//
// ods-signerd keeps its pid file and control socket in /var/run/opendnssec
// whatever the configuration says, so only one runs on a machine at a time.
func odsPrimary(t *testing.T, text string, k *Key) netip.AddrPort {
	t.Helper()
	testenv.RequireRoot(t)
	for _, b := range []string{"ods-signerd", "ods-hsmutil", "softhsm2-util"} {
		testenv.RequireBinary(t, b)
	}
	dir := t.TempDir()
	hsmConf := filepath.Join(dir, "softhsm2.conf")
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("softhsm2.conf", fmt.Sprintf("directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir))
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		path, _ := testenv.LookPath(name)
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+hsmConf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("softhsm2-util", "--init-token", "--free", "--label", "xdpns-test", "--pin", "1234", "--so-pin", "1234")
	port := testenv.FreePort(t)
	conf := write("conf.xml", fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Configuration>
	<RepositoryList>
		<Repository name="SoftHSM">
			<Module>/usr/lib/softhsm/libsofthsm2.so</Module>
			<TokenLabel>xdpns-test</TokenLabel>
			<PIN>1234</PIN>
			<SkipPublicKey/>
		</Repository>
	</RepositoryList>
	<Common>
		<Logging><Verbosity>3</Verbosity></Logging>
		<PolicyFile>%[1]s/kasp.xml</PolicyFile>
		<ZoneListFile>%[1]s/zonelist.xml</ZoneListFile>
	</Common>
	<Enforcer>
		<Datastore><SQLite>%[1]s/kasp.db</SQLite></Datastore>
		<WorkingDirectory>%[1]s/enforcer</WorkingDirectory>
	</Enforcer>
	<Signer>
		<WorkingDirectory>%[1]s/signer</WorkingDirectory>
		<WorkerThreads>2</WorkerThreads>
		<Listener><Interface><Address>127.0.0.1</Address><Port>%[2]d</Port></Interface></Listener>
	</Signer>
</Configuration>
`, dir, port))
	var keyID string
	if _, after, ok := strings.Cut(run("ods-hsmutil", "-c", conf, "generate", "SoftHSM", "ecdsa", "256"), "Key generation successful: "); ok {
		keyID = strings.TrimSpace(after)
	}
	if keyID == "" {
		t.Fatal("ods-hsmutil generated no key")
	}
	zone := write("unsigned/example.test", text)
	write("signconf.xml", fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<SignerConfiguration>
	<Zone name="example.test">
		<Signatures>
			<Resign>PT2H</Resign>
			<Refresh>P3D</Refresh>
			<Validity><Default>P14D</Default><Denial>P14D</Denial></Validity>
			<Jitter>PT12H</Jitter>
			<InceptionOffset>PT3600S</InceptionOffset>
		</Signatures>
		<Denial><NSEC/></Denial>
		<Keys>
			<TTL>PT3600S</TTL>
			<Key><Flags>257</Flags><Algorithm>13</Algorithm><Locator>%s</Locator><KSK/><ZSK/><Publish/></Key>
		</Keys>
		<SOA><TTL>PT300S</TTL><Minimum>PT60S</Minimum><Serial>keep</Serial></SOA>
	</Zone>
</SignerConfiguration>
`, keyID))
	write("addns.xml", fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Adapter>
	<DNS>
		<TSIG><Name>%s</Name><Algorithm>%s</Algorithm><Secret>%s</Secret></TSIG>
		<Outbound><ProvideTransfer><Peer><Prefix>127.0.0.1</Prefix><Key>%[1]s</Key></Peer></ProvideTransfer></Outbound>
	</DNS>
</Adapter>
`, k.Name, strings.TrimSuffix(k.Algorithm, "."), k.Secret))
	// The signer reads the zone list the enforcer would have exported.
	write("enforcer/zones.xml", fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<ZoneList>
	<Zone name="example.test">
		<Policy>default</Policy>
		<SignerConfiguration>%[1]s/signconf.xml</SignerConfiguration>
		<Adapters>
			<Input><File>%[2]s</File></Input>
			<Output><Adapter type="DNS">%[1]s/addns.xml</Adapter></Output>
		</Adapters>
	</Zone>
</ZoneList>
`, dir, zone))
	if err := os.MkdirAll(filepath.Join(dir, "signer"), 0o755); err != nil {
		t.Fatal(err)
	}
	// One ods-signerd at a time (its pid file and socket have fixed
	// paths): wait for another test binary's to be gone.
	if err := os.MkdirAll("/var/run/opendnssec", 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile("/var/run/opendnssec/xdpns-test.lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // after the signer has stopped
	p := testenv.StartProcess(t, "env", "SOFTHSM2_CONF="+hsmConf, "ods-signerd", "-d", "-c", conf)
	// ods-signerd 2.1.12 now and then hangs on SIGTERM (or crashes on it):
	// give it a second before StartProcess's cleanup kills it.
	t.Cleanup(func() {
		_ = syscall.Kill(p.Pid, syscall.SIGTERM)
		select {
		case <-p.Exited():
		case <-time.After(time.Second):
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	})
	addr := netip.AddrPortFrom(loopback, uint16(port))
	// Ready once the signed zone is written and answers a signed SOA query.
	signed := filepath.Join(dir, "signer", "example.test.axfr")
	c := &dns.Client{Net: "tcp", Timeout: 500 * time.Millisecond, TsigSecret: map[string]string{k.Name: k.Secret}}
	p.WaitFor(t, 30*time.Second, func() error {
		if _, err := os.Stat(signed); err != nil {
			return err
		}
		q := new(dns.Msg).SetQuestion(testZone, dns.TypeSOA)
		q.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
		r, _, err := c.Exchange(q, addr.String())
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return fmt.Errorf("SOA: %s", dns.RcodeToString[r.Rcode])
		}
		return nil
	})
	return addr
}

// OpenDNSSEC's signer leaves 96 AXFR messages in a row unsigned: the zone
// arrives whole; a wrong secret gets nothing.
func TestODSTSIG(t *testing.T) {
	t.Parallel()
	k := &Key{Name: "k-ods.", Algorithm: dns.HmacSHA256, Secret: base64.StdEncoding.EncodeToString([]byte("a secret for the OpenDNSSEC test"))}
	const serial = 2025
	var text strings.Builder
	text.WriteString(zoneText(serial, 3600, 600, 86400))
	for i := range 6000 {
		fmt.Fprintf(&text, "h%d IN TXT \"record %d of a zone that OpenDNSSEC sends in many messages\" \"%s\"\n", i, i, strings.Repeat("x", 150))
	}
	start := time.Now()
	addr := odsPrimary(t, text.String(), k)
	t.Logf("ods-signerd up and zone signed in %v", time.Since(start).Round(time.Millisecond))

	ref := refAXFR(t, addr, k)
	t.Logf("OpenDNSSEC's AXFR: %d records in %d messages, %d signed, %d unsigned, at most %d unsigned in a row",
		len(ref.records), ref.messages, ref.signed, ref.messages-ref.signed, ref.longestUnsigned)
	if ref.longestUnsigned < 90 || ref.messages-ref.signed < 2*90 {
		t.Fatalf("want at least two runs of 90 unsigned messages or more")
	}
	signed := ref.records[:len(ref.records)-1] // the closing SOA
	primary := func(k *Key) Config {
		return Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: addr, Key: k}}}}}
	}
	t.Run("right key", func(t *testing.T) {
		start := time.Now()
		s := startSecondary(t, primary(k), nil)
		st := s.waitSerial(serial, 10*time.Second)
		t.Logf("transferred and served in %v", time.Since(start).Round(time.Millisecond))
		if st.Counters.Full != 1 || st.Counters.Failures != 0 {
			t.Errorf("counters %+v: want one full transfer, no failure", st.Counters)
		}
		sameZone(t, signed, s.served())
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := *k
		bad.Secret = base64.StdEncoding.EncodeToString([]byte("not the secret OpenDNSSEC has"))
		s := startSecondary(t, primary(&bad), nil)
		st := s.waitFor("a failed check", 5*time.Second, func(st ZoneStatus) bool { return st.Counters.Failures > 0 })
		if st.State != StateLoading || s.served() != nil {
			t.Errorf("zone served after a bad transfer: %+v", st)
		}
		// OpenDNSSEC answers NOTAUTH without a TSIG record.
		if !strings.Contains(st.LastError, "NOTAUTH") || !strings.Contains(st.LastError, "tsig") {
			t.Errorf("last error %q, want a TSIG failure", st.LastError)
		}
		t.Logf("logged: %s", st.LastError)
	})
}
