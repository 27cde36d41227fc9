package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

func TestDemo(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "named")
	code, stdout, stderr := runCmd(t, "demo", "-primary", "named", "-xdp", "off")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"primary:   BIND 9.",
		"secondary: xdpns on 127.0.0.1:",
		"example.com. serial 2024060101 transferred by AXFR from 127.0.0.1:",
		"ok  www.example.com. A ",
		"host.example.com. A 203.0.113.20",
		"anything.apps.example.com. A 203.0.113.30",
		"NXDOMAIN",
		"REFUSED",
		"authority: sub.example.com. NS ns1.sub.example.com.",
		"made with nsupdate (RFC 2136, signed with demo-update.)",
		"NOTIFY from the primary -> SOA check -> IXFR (only the difference) 2024060101 -> 2024060102 from 127.0.0.1:",
		"host.example.com. A 203.0.113.21",
		"hostmaster.example.com. 2024060102 7200",
		"example.com.  ok     2024060102",
		"ok: all 14 answers as expected; the change arrived by NOTIFY and IXFR and was served",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "FAIL") {
		t.Errorf("a row failed:\n%s", stdout)
	}
	checkDemoCleaned(t, stdout)
}

// TestDemoXdpnsPrimary runs the demo's fallback, as without named: the
// primary is an in-process xdpns, and a file zone has no journal, so the
// change comes by a full transfer.
func TestDemoXdpnsPrimary(t *testing.T) {
	defer func(old string) { demoNamed = old }(demoNamed)
	demoNamed = "named-not-installed-xdpns-test"
	code, stdout, stderr := runCmd(t, "demo", "-xdp", "off")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"named (Debian package bind9) is not installed: the primary is an in-process xdpns instead",
		"primary:   xdpns (in-process) on 127.0.0.1:",
		"example.com. serial 2024060101 transferred by AXFR from 127.0.0.1:",
		"host.example.com. A 203.0.113.20",
		"made with an edited zone file and a reload",
		"NOTIFY from the primary -> SOA check -> AXFR (full transfer) 2024060101 -> 2024060102 from 127.0.0.1:",
		"host.example.com. A 203.0.113.21",
		"ok: all 14 answers as expected; the change arrived by NOTIFY and AXFR and was served",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "FAIL") {
		t.Errorf("a row failed:\n%s", stdout)
	}
	checkDemoCleaned(t, stdout)

	if code, _, stderr := runCmd(t, "demo", "-primary", "named", "-xdp", "off"); code != exitFail || !strings.Contains(stderr, "(Debian package bind9)") {
		t.Errorf("-primary named without named: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, "demo", "-primary", "nsd"); code != exitUsage || !strings.Contains(stderr, "-primary must be auto, named or xdpns") {
		t.Errorf("-primary nsd: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, "demo", "-xdp", "yes"); code != exitUsage || !strings.Contains(stderr, "-xdp must be auto, on or off") {
		t.Errorf("-xdp yes: exit %d, %s", code, stderr)
	}
}

// checkDemoCleaned checks the demo removed its directory and stopped its
// primary.
func checkDemoCleaned(t *testing.T, stdout string) {
	t.Helper()
	m := regexp.MustCompile(`state in (\S+)/state`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no state directory in the output:\n%s", stdout)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("demo directory %s left behind: %v", m[1], err)
	}
	p := regexp.MustCompile(`primary: .* on (127\.0\.0\.1:\d+)`).FindStringSubmatch(stdout)
	if p == nil {
		t.Fatalf("no primary address in the output:\n%s", stdout)
	}
	if c, err := net.DialTimeout("tcp", p[1], time.Second); err == nil {
		c.Close()
		t.Errorf("the primary at %s still accepts connections after the demo", p[1])
	}
}

// TestDemoMismatch proves the demo notices a wrong answer.
func TestDemoMismatch(t *testing.T) {
	zs, err := demoLoad()
	if err != nil {
		t.Fatal(err)
	}
	r := responder.New(responder.Config{})
	r.SetZones(zs)
	srv, err := demoStart(r, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	qs := []demoQuery{
		{name: "example.com.", qtype: dns.TypeA, aa: true, answer: []string{"example.com. A 192.0.2.1"}},
		{name: "example.net.", qtype: dns.TypeA, aa: true, answer: []string{"example.net. A 198.51.100.80"}},
	}
	var out strings.Builder
	if n := demoAsk(context.Background(), &out, srv.Addrs()[0], qs); n != 1 {
		t.Errorf("failed = %d, want 1:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "want: rcode NOERROR, aa=true, answer example.com. A 192.0.2.1") {
		t.Errorf("no FAIL row with the expectation:\n%s", out.String())
	}
}

// demoLoad parses every bundled zone, in file name order.
func demoLoad() ([]*zone.Zone, error) {
	files, err := fs.Glob(demoZones, "demo/*.zone")
	if err != nil {
		return nil, err
	}
	var out []*zone.Zone
	for _, f := range files {
		data, err := demoZones.ReadFile(f)
		if err != nil {
			return nil, err
		}
		origin := strings.TrimSuffix(path.Base(f), ".zone")
		z, _, err := zone.Parse(bytes.NewReader(data), f, origin, zone.LoadOptions{})
		if err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, nil
}

// demoStart binds the server to a free loopback port. With port 0 the server
// picks the UDP port first and then binds TCP to the same number, which
// another program may hold; try again with another port then.
func demoStart(r *responder.Responder, log *slog.Logger) (*server.Server, error) {
	const attempts = 5
	var err error
	for range attempts {
		srv := server.New(server.Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1}, r, log)
		if err = srv.Start(); err == nil {
			return srv, nil
		}
	}
	return nil, fmt.Errorf("start server: %w", err)
}

// TestDemoKeep: with -keep the demo serves until a signal, then cleans up.
func TestDemoKeep(t *testing.T) {
	defer func(old string) { demoNamed = old }(demoNamed)
	demoNamed = "named-not-installed-xdpns-test"
	got := make(chan chan<- os.Signal, 1)
	var out, errb syncBuffer
	e := &env{stdout: &out, stderr: &errb, args: []string{"demo", "-keep", "-xdp", "off"},
		notify: func(c chan<- os.Signal, _ ...os.Signal) { got <- c }}
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), e) }()
	sigs := <-got
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "still serving"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never said still serving:\n%s\n%s", out.String(), errb.String())
		}
	}
	sigs <- syscall.SIGINT
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d:\n%s\n%s", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo -keep did not stop on SIGINT")
	}
	checkDemoCleaned(t, out.String())
}

// TestDemoXDP runs the demo's XDP mode: a veth lab, named and xdpns serve
// in the server namespace, questions from the client namespace, each row
// saying whether XDP or Go answered; the change is answered by XDP.
func TestDemoXDP(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "named")
	testenv.RequireBinary(t, "nsenter")
	code, stdout, stderr := runCmd(t, "demo", "-xdp", "on")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"lab:       network namespaces xdpns-demo-s-",
		"veth xs0 198.18.0.1 2001:2::1 <-> xc0 198.18.0.2 2001:2::2 (pass-all XDP on the client end)",
		"primary:   BIND 9.",
		"in the server namespace on 127.0.0.1:5300",
		"secondary: xdpns serve in the server namespace on 198.18.0.1:53 and [2001:2::1]:53",
		"XDP attached to xs0 in native mode; 2 zones in its maps",
		"example.com. serial 2024060101 transferred by AXFR from 127.0.0.1:5300",
		"NOTIFY from the primary -> IXFR (only the difference) 2024060101 -> 2024060102",
		"seen by the client, answered by XDP,",
		"XDP: attached to xs0 (native)",
		"ok: all 14 answers as expected, 11 by XDP and 3 by Go; the change arrived by NOTIFY and IXFR",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, row := range []string{
		`ok  example\.com\. A +udp4 +XDP `,
		`ok  host\.example\.com\. AAAA +udp6 +XDP `,
		`ok  www\.example\.com\. A +udp6 +XDP +CNAME chain`,
		`ok  nope\.example\.com\. A +udp6 +XDP +NXDOMAIN`,
		`ok  anything\.apps\.example\.com\. A +udp\d +XDP +wildcard`,
		`ok  example\.com\. TXT +tcp6 +Go \(TCP\)`,
		`ok  id\.server\. CH TXT +udp6 +Go \(class not IN\)`,
		`ok  www\.example\.com\. A +udp4 +XDP +new address`,
	} {
		if !regexp.MustCompile(row).MatchString(stdout) {
			t.Errorf("no row %s:\n%s", row, stdout)
		}
	}
	if strings.Contains(stdout, "FAIL") {
		t.Errorf("a row failed:\n%s", stdout)
	}
	checkLabCleaned(t, stdout)
}

// TestDemoXDPXdpnsPrimary: the lab with another xdpns as the primary
// (named missing); -keep serves until SIGINT, then the lab is removed.
func TestDemoXDPXdpnsPrimary(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "nsenter")
	defer func(old string) { demoNamed = old }(demoNamed)
	demoNamed = "named-not-installed-xdpns-test"
	got := make(chan chan<- os.Signal, 1)
	var out, errb syncBuffer
	e := &env{stdout: &out, stderr: &errb, args: []string{"demo", "-keep"},
		notify: func(c chan<- os.Signal, _ ...os.Signal) { got <- c }}
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), e) }()
	sigs := <-got
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "still serving"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never said still serving:\n%s\n%s", out.String(), errb.String())
		}
	}
	m := regexp.MustCompile(`nsenter --net=/run/netns/(\S+) dig @198\.18\.0\.1 www\.example\.com A`).FindStringSubmatch(out.String())
	if m == nil {
		t.Errorf("no dig hint:\n%s", out.String())
	} else if a, err := exec.Command("nsenter", "--net=/run/netns/"+m[1], "dig", "+short", "+time=2", "+tries=1", "@198.18.0.1", "host.example.com", "A").Output(); err != nil || strings.TrimSpace(string(a)) != demoNewAddr {
		t.Errorf("dig from the client namespace while kept: %q %v", a, err)
	}
	sigs <- syscall.SIGINT
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d:\n%s\n%s", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo -keep did not stop on SIGINT")
	}
	stdout := out.String()
	for _, want := range []string{
		"named (Debian package bind9) is not installed: the primary is another xdpns instead",
		"primary:   xdpns serve in the server namespace on 127.0.0.1:5300",
		"made with an edited zone file and `xdpns zone reload` at the primary",
		"NOTIFY from the primary -> AXFR (full transfer) 2024060101 -> 2024060102",
		"ok: all 14 answers as expected, 11 by XDP and 3 by Go; the change arrived by NOTIFY and AXFR",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	checkLabCleaned(t, stdout)
}

// checkLabCleaned checks the demo removed its directory and its network
// namespaces (and so the veth pair and XDP).
func checkLabCleaned(t *testing.T, stdout string) {
	t.Helper()
	m := regexp.MustCompile(`state in (\S+)/state`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no state directory in the output:\n%s", stdout)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("demo directory %s left behind: %v", m[1], err)
	}
	ns := regexp.MustCompile(`network namespaces (\S+) \(server\) and (\S+) \(client\)`).FindStringSubmatch(stdout)
	if ns == nil {
		t.Fatalf("no namespaces in the output:\n%s", stdout)
	}
	for _, n := range ns[1:] {
		if _, err := os.Stat("/run/netns/" + n); !os.IsNotExist(err) {
			t.Errorf("network namespace %s left behind: %v", n, err)
		}
	}
}
