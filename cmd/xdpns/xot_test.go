package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/testenv/peer"
	"github.com/xdpns/xdpns/userspace/xot"
)

const xotZone = "xot.example."

func xotZoneText(serial int) string {
	return fmt.Sprintf("$ORIGIN %s\n$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 86400 300\n@ NS ns1\nns1 A 198.18.0.1\nwww A 198.18.0.10\n", xotZone, serial)
}

// answers asks addr for name A over UDP and returns the addresses.
func answers(t *testing.T, addr netip.AddrPort, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 500 * time.Millisecond}).Exchange(m, addr.String())
	if err != nil {
		return nil
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func waitAnswers(t *testing.T, addr netip.AddrPort, name, want string, what func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := answers(t, addr, name)
		if len(got) == 1 && got[0] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at %s: %v, want %s\n%s", name, addr, got, want, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestXoTChain: named 9.18 primary → (XoT) → xdpns serve → (XoT) → named
// 9.18 secondary, every certificate from a throwaway CA and verified by
// name: xdpns checks named's with a tls block (ca-file, hostname), named
// checks xdpns's (ca-file, remote-hostname). The first copy is an AXFR on
// both legs, a change made with nsupdate travels by NOTIFY and IXFR over
// TLS to xdpns and on to the downstream named; kdig +tls-ca transfers
// the zone from xdpns's TLS port.
func TestXoTChain(t *testing.T) {
	testenv.RequireRoot(t)
	kdig := testenv.RequireBinary(t, "kdig")
	peer.Need(t, "named", "nsupdate", "rndc")
	dir := t.TempDir()
	ca := testenv.NewCA(t, "xot chain CA")
	upCert := ca.Issue("primary.xot.test", "127.0.0.1")
	ourCert := ca.Issue("xdpns.xot.test", "127.0.0.1")
	port, tlsPort := testenv.FreePort(t), testenv.FreePort(t)

	up := peer.StartNamed(t, peer.NamedConfig{
		Zones:      []peer.Zone{{Name: xotZone, Text: xotZoneText(1)}},
		NotifyPort: port,
		TLS:        &peer.NamedTLS{CertFile: upCert.CertFile, KeyFile: upCert.KeyFile},
	})
	sock := filepath.Join(dir, "control.sock")
	conf := func(hostname string) string {
		return fmt.Sprintf(`server:
  listen: ["127.0.0.1:%[1]d"]
  udp-sockets: 1
  listen-tls: ["127.0.0.1:%[2]d"]
  tls: serve
tls:
  - {name: to-primary, ca-file: %[3]q, hostname: %[9]s}
  - {name: serve, cert-file: %[4]q, key-file: %[5]q}
xfr:
  state-dir: state
zones:
  - name: %[6]s
    primaries: [{address: "%[7]s", tls: to-primary}]
    allow-transfer: {from: [127.0.0.1/32]}
control:
  socket: %[8]s
`, port, tlsPort, ca.File, ourCert.CertFile, ourCert.KeyFile, xotZone, up.TLSAddr(), sock, hostname)
	}
	cfg := writeFile(t, dir, "xdpns.yaml", conf("primary.xot.test"))
	h := startServe(t, cfg, port)
	h.waitAnswer("www."+xotZone, "198.18.0.10")
	if !strings.Contains(h.stderr.String(), `primary="`+up.TLSAddr().String()+` (tls)"`) {
		t.Errorf("the transfer did not come over TLS:\n%s", h.stderr)
	}

	down := peer.StartNamed(t, peer.NamedConfig{Conf: fmt.Sprintf(`tls to-xdpns { ca-file %q; remote-hostname "xdpns.xot.test"; };
zone %q { type secondary; primaries { 127.0.0.1 port %d tls to-xdpns; }; file "down.db"; };
`, ca.File, xotZone, tlsPort)})
	downLog := func() string { return "downstream named:\n" + down.Log() + "\nxdpns:\n" + h.stderr.String() }
	waitAnswers(t, down.Addr(), "www."+xotZone, "198.18.0.10", downLog)
	// named logs the port it transferred from: xdpns's TLS port.
	if l := lineWith(down.Log(), "Transfer completed"); !strings.Contains(l, fmt.Sprintf("from 127.0.0.1#%d", tlsPort)) {
		t.Errorf("downstream named did not transfer from the TLS port %d: %q", tlsPort, l)
	}

	// kdig verifies xdpns's certificate against the CA and the name.
	tlsAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(tlsPort))
	kdigAXFR := func(args ...string) (string, error) {
		full := append([]string{"@127.0.0.1", "-p", fmt.Sprint(tlsPort), "+tls-ca=" + ca.File, "+tls-hostname=xdpns.xot.test", "+time=3", "+retry=0"}, args...)
		out, err := exec.Command(kdig, append(full, "AXFR", xotZone)...).CombinedOutput()
		return string(out), err
	}
	out, err := kdigAXFR()
	if err != nil || !strings.Contains(out, "198.18.0.10") {
		t.Fatalf("kdig +tls AXFR from %s: %v\n%s", tlsAddr, err, out)
	}
	// A query shows the TLS session (an AXFR's output does not).
	soa, err := exec.Command(kdig, "@127.0.0.1", "-p", fmt.Sprint(tlsPort), "+tls-ca="+ca.File, "+tls-hostname=xdpns.xot.test", "+time=3", "+retry=0", "SOA", xotZone).CombinedOutput()
	if err != nil || !strings.Contains(string(soa), ";; TLS session (TLS1.3)") {
		t.Errorf("kdig +tls SOA: %v\n%s", err, soa)
	}
	t.Logf("kdig: %s", lineWith(string(soa), ";; TLS session"))

	// kdig with xdpns's key pinned instead of the CA.
	pinOut, err := exec.Command(kdig, "@127.0.0.1", "-p", fmt.Sprint(tlsPort), "+tls-pin="+xot.PinOf(ourCert.Cert).String(),
		"+time=3", "+retry=0", "AXFR", xotZone).CombinedOutput()
	if err != nil || !strings.Contains(string(pinOut), "198.18.0.10") {
		t.Errorf("kdig +tls-pin AXFR: %v\n%s", err, pinOut)
	}

	// A change: named → NOTIFY → xdpns IXFR over TLS; then the downstream
	// named is told to refresh (xdpns does not NOTIFY it here) and gets
	// it over TLS too.
	up.Nsupdate(xotZone, "update add new."+xotZone+" 300 IN A 198.18.1.1")
	h.waitAnswer("new."+xotZone, "198.18.1.1")
	h.waitLog("kind=IXFR")
	down.Rndc("refresh", xotZone)
	waitAnswers(t, down.Addr(), "new."+xotZone, "198.18.1.1", downLog)
	if out, err := kdigAXFR(); err != nil || !strings.Contains(out, "198.18.1.1") {
		t.Errorf("kdig AXFR after the change: %v\n%s", err, out)
	}

	// A reload with the same configuration leaves the TLS zone alone (its
	// tls.Config is rebuilt, the block's digest is the same).
	h.waitLog("control socket")
	if code, stdout, stderr := runCmd(t, "zone", "reload", "-s", sock); code != exitOK || strings.Contains(stdout, "changed") || strings.Contains(stdout, "restarted") {
		t.Errorf("reload with the same configuration: exit %d\n%s%s", code, stdout, stderr)
	}
	// The primary's certificate no longer matches the configured name: the
	// reload re-checks the zone at once, the refusal is logged naming the
	// primary, and the zone as it was keeps being answered while the
	// primary moves on.
	writeFile(t, dir, "xdpns.yaml", conf("wrong.xot.test"))
	if code, stdout, stderr := runCmd(t, "zone", "reload", "-s", sock); code != exitOK || !strings.Contains(stdout, "1 changed") {
		t.Errorf("reload with another hostname: exit %d\n%s%s", code, stdout, stderr)
	}
	up.Nsupdate(xotZone, "update add later."+xotZone+" 300 IN A 198.18.1.2")
	h.waitLog(`msg="TLS: primary refused" component=xfr zone=` + xotZone + ` primary="` + up.TLSAddr().String() + ` (tls)" reason="certificate refused: x509: certificate is valid for primary.xot.test, not wrong.xot.test"`)
	h.waitAnswer("new."+xotZone, "198.18.1.1")
	if got := answers(t, netip.MustParseAddrPort(h.addr), "later."+xotZone); len(got) != 0 {
		t.Errorf("later.%s answered %v through a refused primary", xotZone, got)
	}
	t.Logf("%s", lineWith(h.stderr.String(), "TLS: primary refused"))

	// kdig with the wrong name for xdpns's certificate is refused by kdig.
	out, err = kdigAXFR("+tls-hostname=other.xot.test")
	if err == nil && strings.Contains(out, "198.18.1.1") {
		t.Errorf("kdig accepted xdpns's certificate for other.xot.test:\n%s", out)
	}
}

// lineWith returns the first line of s that contains sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestXoTServeClientCert: server.tls with a ca-file requires client
// certificates: kdig with one signed by that CA transfers the zone,
// kdig without one gets nothing and xdpns logs the refused handshake.
func TestXoTServeClientCert(t *testing.T) {
	kdig := testenv.RequireBinary(t, "kdig")
	dir := t.TempDir()
	ca := testenv.NewCA(t, "xot serve CA")
	clients := testenv.NewCA(t, "xot clients CA")
	ourCert := ca.Issue("xdpns.xot.test", "127.0.0.1")
	client := clients.Issue("secondary.xot.test")
	port, tlsPort := testenv.FreePort(t), testenv.FreePort(t)
	writeFile(t, dir, "xot.zone", xotZoneText(7))
	writeFile(t, dir, "signed.zone", strings.ReplaceAll(xotZoneText(8), xotZone, "signed."+xotZone))
	key := tsigKey{"xot-down.", "hmac-sha256", randomSecret()}
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%[1]d"]
  udp-sockets: 1
  listen-tls: ["127.0.0.1:%[2]d"]
  tls: serve
tls:
  - {name: serve, cert-file: %[3]q, key-file: %[4]q, ca-file: %[5]q}
keys:
  - {name: %[7]s, algorithm: %[8]s, secret: %[9]q}
zones:
  - {name: %[6]s, file: xot.zone, allow-transfer: {from: [127.0.0.1/32]}}
  - {name: signed.%[6]s, file: signed.zone, allow-transfer: {keys: [%[7]s]}}
control:
  socket: ""
`, port, tlsPort, ourCert.CertFile, ourCert.KeyFile, clients.File, xotZone, key.name, key.algorithm, key.secret))
	h := startServe(t, cfg, port)
	h.waitAnswer("www."+xotZone, "198.18.0.10")
	kdigZone := func(zone string, args ...string) (string, error) {
		full := append([]string{"@127.0.0.1", "-p", fmt.Sprint(tlsPort), "+tls-ca=" + ca.File, "+tls-hostname=xdpns.xot.test", "+time=3", "+retry=0"}, args...)
		out, err := exec.Command(kdig, append(full, "AXFR", zone)...).CombinedOutput()
		return string(out), err
	}
	kdigAXFR := func(args ...string) (string, error) { return kdigZone(xotZone, args...) }
	withCert := []string{"+tls-certfile=" + client.CertFile, "+tls-keyfile=" + client.KeyFile}
	out, err := kdigAXFR(withCert...)
	if err != nil || !strings.Contains(out, "198.18.0.10") {
		t.Fatalf("kdig with a client certificate: %v\n%s", err, out)
	}
	// TSIG inside TLS: the signed zone is transferred with the key, and
	// refused without it.
	tsig := "-y" + key.algorithm + ":" + key.name + ":" + key.secret
	out, err = kdigZone("signed."+xotZone, append(withCert, tsig)...)
	// kdig checks the TSIG of every answer and fails on a bad one.
	if err != nil || !strings.Contains(out, "www.signed."+xotZone) || !strings.Contains(out, "TSIG") {
		t.Errorf("kdig TSIG AXFR over TLS: %v\n%s", err, out)
	}
	if out, _ := kdigZone("signed."+xotZone, withCert...); strings.Contains(out, "www.signed."+xotZone) {
		t.Errorf("signed zone transferred without the key over TLS:\n%s", out)
	}
	out, _ = kdigAXFR()
	if strings.Contains(out, "198.18.0.10") {
		t.Errorf("kdig without a client certificate got the zone:\n%s", out)
	}
	h.waitLog("TLS handshake failed")
	t.Logf("%s", lineWith(h.stderr.String(), "TLS handshake failed"))

	// named 9.18 as a secondary presenting a client certificate (its tls
	// block's cert-file and key-file) gets the zone.
	if testenv.InCI() || peerAvailable("named") {
		down := peer.StartNamed(t, peer.NamedConfig{Conf: fmt.Sprintf(`tls to-xdpns { ca-file %q; remote-hostname "xdpns.xot.test"; cert-file %q; key-file %q; };
zone %q { type secondary; primaries { 127.0.0.1 port %d tls to-xdpns; }; file "down.db"; };
`, ca.File, client.CertFile, client.KeyFile, xotZone, tlsPort)})
		waitAnswers(t, down.Addr(), "www."+xotZone, "198.18.0.10", func() string { return down.Log() + "\nxdpns:\n" + h.stderr.String() })
	}
}

// peerAvailable reports whether the peer binary can run here (as root).
func peerAvailable(bin string) bool {
	_, err := testenv.LookPath(bin)
	return err == nil && os.Geteuid() == 0
}
