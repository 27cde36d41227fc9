package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// xdpTest is a veth lab with `xdpns serve` run in its server namespace
// (the test binary, through nsenter: see TestMain) and helpers to ask
// from the client namespace and read the counters.
type xdpTest struct {
	t    *testing.T
	lab  *vethLab
	dir  string
	cfg  string // configuration file
	sock string
}

func newXDPTest(t *testing.T) *xdpTest {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "nsenter")
	lab, err := newVethLab("xdpns-t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	dir := t.TempDir()
	return &xdpTest{t: t, lab: lab, dir: dir, cfg: filepath.Join(dir, "xdpns.yaml"), sock: filepath.Join(dir, "ctl.sock")}
}

// bpffs mounts a bpffs of the test's own and returns a pin directory on it.
func bpffs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return filepath.Join(dir, "xdpns")
}

// writeConfig writes the configuration: listeners on the server's veth
// addresses and on loopback port 53 (NOTIFY from a primary in the
// namespace), XDP on the server end.
func (x *xdpTest) writeConfig(mode, pin, zones string) {
	x.t.Helper()
	writeFile(x.t, x.dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["%s:53", "[%s]:53", "127.0.0.1:53"]
  udp-sockets: 1
log: {level: debug}
xfr: {state-dir: state}
control: {socket: ctl.sock}
xdp:
  interfaces: [%s]
  mode: %s
  pin: %q
zones:
%s`, x.lab.Server4, x.lab.Server6, x.lab.ServerIf, mode, pin, zones))
}

// serve starts `xdpns serve` in the server namespace and waits until XDP
// is attached with the expected number of zones.
func (x *xdpTest) serve(zones int) *testenv.Process {
	x.t.Helper()
	x.t.Setenv(envRunMain, "1")
	p := testenv.StartProcess(x.t, "nsenter", "--net=/run/netns/"+x.lab.ServerNS, "--", os.Args[0], "serve", "-c", x.cfg)
	p.WaitFor(x.t, 20*time.Second, func() error {
		r, err := x.stats()
		if err != nil {
			return err
		}
		if r.XDP.State != "attached" || r.XDP.Zones != zones {
			return fmt.Errorf("xdp %s with %d zones, want attached with %d", r.XDP.State, r.XDP.Zones, zones)
		}
		return nil
	})
	return p
}

// stop ends serve with SIGTERM and waits.
func (x *xdpTest) stop(p *testenv.Process) {
	x.t.Helper()
	if err := syscall.Kill(p.Pid, syscall.SIGTERM); err != nil {
		x.t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		x.t.Fatal("serve did not stop")
	}
	if !strings.Contains(p.Output(), `msg=stopped`) {
		x.t.Errorf("serve did not stop cleanly:\n%s", p.Output())
	}
}

// stats is `xdpns xdp stats -json`.
func (x *xdpTest) stats() (ctlResponse, error) {
	code, out, errOut := runCmd(x.t, "xdp", "stats", "-json", "-s", x.sock)
	if code != exitOK {
		return ctlResponse{}, fmt.Errorf("xdp stats: exit %d: %s", code, errOut)
	}
	var r ctlResponse
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, err
	}
	if r.XDP == nil || r.Server == nil {
		return r, fmt.Errorf("xdp stats without xdp or server: %s", out)
	}
	return r, nil
}

func (x *xdpTest) mustStats() ctlResponse {
	x.t.Helper()
	r, err := x.stats()
	if err != nil {
		x.t.Fatal(err)
	}
	return r
}

// dig asks with dig (or kdig) from the client namespace; it returns the
// RCODE and the answer section as "TYPE RDATA".
func (x *xdpTest) dig(tool string, server netip.Addr, name, qtype string, flags ...string) (string, []string) {
	x.t.Helper()
	args := []string{"@" + server.String(), "+norec", "+time=2", "+noall", "+answer", name, qtype}
	if tool == "dig" {
		args = append(args, "+comments", "+tries=1")
	} else {
		args = append(args, "+header", "+retry=0")
	}
	prog, full, err := nsArgs(x.lab.ClientNS, tool, append(args, flags...)...)
	if err != nil {
		x.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := execOutput(ctx, prog, full...)
	if err != nil {
		x.t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	rcode := ""
	var ans []string
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "status: "); i >= 0 {
			rcode = strings.TrimRight(strings.Fields(line[i+len("status: "):])[0], ",;")
			continue
		}
		if f := strings.Fields(line); len(f) >= 5 && !strings.HasPrefix(line, ";") {
			ans = append(ans, strings.Join(f[3:], " "))
		}
	}
	return rcode, ans
}

// via asks name A with dig and checks the answer and who gave it: "xdp"
// (tx__answer moved, the server's sockets saw nothing), "udp" (passed as
// pass__no_entry, answered by Go) or "tcp".
func (x *xdpTest) via(tool string, server netip.Addr, name, wantRcode string, want []string, path string, flags ...string) {
	x.t.Helper()
	before := x.mustStats()
	rcode, got := x.dig(tool, server, name, "A", flags...)
	after := x.mustStats()
	label := fmt.Sprintf("%s %s A @%s %v", tool, name, server, flags)
	if rcode != wantRcode || !slices.Equal(got, want) {
		x.t.Errorf("%s: %s %q, want %s %q", label, rcode, got, wantRcode, want)
	}
	tx := after.XDP.Counters["tx__answer"] - before.XDP.Counters["tx__answer"]
	nxd := after.XDP.Counters["tx__nxdomain"] - before.XDP.Counters["tx__nxdomain"]
	miss := after.XDP.Counters["pass__no_entry"] - before.XDP.Counters["pass__no_entry"]
	udp := after.Server.UDPQueries - before.Server.UDPQueries
	tcp := after.Server.TCPQueries - before.Server.TCPQueries
	ok := false
	switch path {
	case "xdp":
		ok = tx == 1 && udp == 0 && tcp == 0
	case "nxd": // the zone's NXDOMAIN, from XDP
		ok = nxd == 1 && tx == 0 && udp == 0 && tcp == 0
	case "udp":
		ok = tx == 0 && miss == 1 && udp == 1
	case "tcp":
		ok = tx == 0 && tcp == 1 && udp == 0
	case "go": // XDP detached: no counters move
		ok = udp == 1
	}
	if !ok {
		x.t.Errorf("%s: want it answered by %s; tx__answer +%d, pass__no_entry +%d, server udp +%d, tcp +%d", label, path, tx, miss, udp, tcp)
	}
}

// attached reports whether the server end has an XDP program.
func (x *xdpTest) attached() bool {
	x.t.Helper()
	var on bool
	err := x.lab.InServer(func() error {
		l, err := netlink.LinkByName(x.lab.ServerIf)
		if err != nil {
			return err
		}
		on = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	})
	if err != nil {
		x.t.Fatal(err)
	}
	return on
}

// waitAnswer polls (bounded) until name A is answered with addr from the
// client namespace.
func (x *xdpTest) waitAnswer(server netip.Addr, name, addr string) {
	x.t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, err := exchangeVia(context.Background(), &dns.Client{Timeout: 500 * time.Millisecond}, x.lab.DialClient, m, netip.AddrPortFrom(server, 53).String())
		switch {
		case err != nil:
			last = err.Error()
		case len(r.Answer) == 1:
			if a, ok := r.Answer[0].(*dns.A); ok {
				last = a.A.String()
			}
			if last == addr {
				return
			}
		default:
			last = dns.RcodeToString[r.Rcode]
		}
	}
	x.t.Fatalf("%s A: last answer %q, want %s", name, last, addr)
}

func (x *xdpTest) zoneFile(origin string, serial int, addr string) {
	x.t.Helper()
	writeFile(x.t, x.dir, strings.TrimSuffix(origin, ".")+".zone", zoneText(origin, serial, addr))
}

const twoFileZones = `  - {name: example.com., file: example.com.zone}
  - {name: example.net., file: example.net.zone}
`

// TestServeXDP: serve with XDP on the server end of a veth pair (auto:
// native on veth). dig and kdig in the client namespace get the right
// answers over IPv4 and IPv6 from XDP; a miss and TCP are answered by Go;
// a changed zone file, after a reload, is answered by XDP; a zone removed
// from the configuration is not answered by XDP any more (REFUSED by Go);
// `xdpns xdp detach` takes it off and Go answers everything.
func TestServeXDP(t *testing.T) {
	x := newXDPTest(t)
	for _, b := range []string{"dig", "kdig"} {
		testenv.RequireBinary(t, b)
	}
	x.zoneFile("example.com.", 1, "203.0.113.10")
	x.zoneFile("example.net.", 1, "198.51.100.10")
	x.writeConfig("auto", "", twoFileZones)
	p := x.serve(2)
	st := x.mustStats()
	if len(st.XDP.Interfaces) != 1 || st.XDP.Interfaces[0] != (xdpInterface{Name: x.lab.ServerIf, Mode: "native"}) {
		t.Errorf("interfaces %+v, want %s native", st.XDP.Interfaces, x.lab.ServerIf)
	}
	s4, s6 := x.lab.Server4, x.lab.Server6
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
	x.via("dig", s6, "WWW.Example.COM.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
	x.via("kdig", s4, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp")
	x.via("kdig", s6, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp", "+dnssec")
	x.via("dig", s4, "nosuch.example.com.", "NXDOMAIN", nil, "nxd")
	x.via("dig", s6, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "tcp", "+tcp")
	x.via("dig", s4, "www.example.org.", "REFUSED", nil, "udp")

	// A changed zone file, reloaded: XDP answers the new data.
	loads := st.XDP.Loads + st.XDP.Updates
	x.zoneFile("example.com.", 2, "203.0.113.11")
	if code, out, errOut := runCmd(t, "zone", "reload", "-s", x.sock); code != exitOK {
		t.Fatalf("zone reload: exit %d\n%s%s", code, out, errOut)
	}
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.11"}, "xdp")
	x.via("dig", s6, "www.example.com.", "NOERROR", []string{"A 203.0.113.11"}, "xdp")
	if st := x.mustStats(); st.XDP.Loads+st.XDP.Updates <= loads || st.XDP.Zones != 2 {
		t.Errorf("after the reload: %+v", st.XDP)
	}

	// A zone taken out of the configuration leaves XDP too.
	x.writeConfig("auto", "", "  - {name: example.com., file: example.com.zone}\n")
	if code, out, errOut := runCmd(t, "zone", "reload", "-s", x.sock); code != exitOK {
		t.Fatalf("zone reload: exit %d\n%s%s", code, out, errOut)
	}
	x.via("dig", s4, "www.example.net.", "REFUSED", nil, "udp")
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.11"}, "xdp")
	if st := x.mustStats(); st.XDP.Zones != 1 || st.XDP.Served != 1 {
		t.Errorf("after removing a zone: %d zones in XDP, %d served", st.XDP.Zones, st.XDP.Served)
	}

	// The human form.
	code, out, _ := runCmd(t, "xdp", "stats", "-s", x.sock)
	for _, want := range []string{"XDP: attached to xs0 (native)", "zones: 1 in XDP of 1 served", "answered in XDP", "tx__answer", "passed to the kernel", "pass__no_entry", "server sockets: "} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("xdp stats: exit %d, lacks %q:\n%s", code, want, out)
		}
	}

	// Detach: nothing attached, Go answers.
	code, out, errOut := runCmd(t, "xdp", "detach", "-c", x.cfg)
	if code != exitOK || !strings.Contains(out, "XDP detached from xs0; serving from userspace only") {
		t.Errorf("xdp detach: exit %d\n%s%s", code, out, errOut)
	}
	if x.attached() {
		t.Error("XDP still attached after xdp detach")
	}
	if st := x.mustStats(); st.XDP.State != "detached" {
		t.Errorf("state %q after detach", st.XDP.State)
	}
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.11"}, "go")
	x.stop(p)
	for _, want := range []string{"XDP attached", "XDP loaded", "XDP detached"} {
		if !strings.Contains(p.Output(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestServeXDPPinRestart: with xdp.pin, a stopped serve leaves XDP
// attached and answering from the pinned maps with no process serving; the
// next serve adopts them, loads its zones (a change made meanwhile) and
// keeps updating; `xdpns xdp detach` with serve stopped removes it all.
// Generic mode, on a bpffs of the test's own.
func TestServeXDPPinRestart(t *testing.T) {
	x := newXDPTest(t)
	testenv.RequireBinary(t, "dig")
	pin := bpffs(t)
	t.Cleanup(func() { loader.RemovePins(pin) })
	x.zoneFile("example.com.", 1, "203.0.113.10")
	x.zoneFile("example.net.", 1, "198.51.100.10")
	x.writeConfig("generic", pin, twoFileZones)
	s4, s6 := x.lab.Server4, x.lab.Server6

	p1 := x.serve(2)
	if st := x.mustStats(); st.XDP.Adopted || st.XDP.Pin != pin || st.XDP.Interfaces[0].Mode != "generic" {
		t.Errorf("first serve: %+v", st.XDP)
	}
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
	x.stop(p1)
	if !strings.Contains(p1.Output(), "XDP left attached") {
		t.Errorf("serve did not say XDP stays attached:\n%s", p1.Output())
	}

	// No serve: only XDP can answer.
	if !x.attached() {
		t.Fatal("XDP detached when the pinned serve stopped")
	}
	before := pinnedCounter(t, pin, "tx__answer")
	for _, srv := range []netip.Addr{s4, s6} {
		if rcode, got := x.dig("dig", srv, "www.example.com.", "A"); rcode != "NOERROR" || !slices.Equal(got, []string{"A 203.0.113.10"}) {
			t.Errorf("with serve stopped, @%s: %s %q", srv, rcode, got)
		}
	}
	if got := pinnedCounter(t, pin, "tx__answer") - before; got != 2 {
		t.Errorf("with serve stopped: tx__answer +%d, want 2", got)
	}

	// A change while it is stopped; the next serve adopts, then loads it.
	x.zoneFile("example.com.", 2, "203.0.113.11")
	p2 := x.serve(2)
	st := x.mustStats()
	if !st.XDP.Adopted || st.XDP.Interfaces[0].Mode != "generic" {
		t.Errorf("second serve: %+v", st.XDP)
	}
	if !strings.Contains(p2.Output(), "adopted pinned XDP answers") {
		t.Errorf("second serve did not log the adoption:\n%s", p2.Output())
	}
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.11"}, "xdp")
	x.via("dig", s6, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp")
	x.zoneFile("example.com.", 3, "203.0.113.12")
	if code, out, errOut := runCmd(t, "zone", "reload", "-s", x.sock); code != exitOK {
		t.Fatalf("zone reload: exit %d\n%s%s", code, out, errOut)
	}
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.12"}, "xdp")
	x.stop(p2)

	// Detach with no serve running: the pins say what to remove.
	if !x.attached() {
		t.Fatal("XDP detached when the second serve stopped")
	}
	code, out, errOut := runCmd(t, "xdp", "detach", "-c", x.cfg)
	if code != exitOK || !strings.Contains(out, "no serve answered on the control socket; pinned XDP links and maps under "+pin+" removed") {
		t.Errorf("xdp detach: exit %d\n%s%s", code, out, errOut)
	}
	if x.attached() {
		t.Error("XDP still attached after xdp detach")
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("pin directory left: %v", err)
	}
	code, out, _ = runCmd(t, "xdp", "detach", "-c", x.cfg)
	if code != exitOK || !strings.Contains(out, "nothing pinned under "+pin) {
		t.Errorf("second detach: exit %d\n%s", code, out)
	}
}

// pinnedCounter reads one XDP counter from the pinned stats map, summed
// over CPUs (no serve needed).
func pinnedCounter(t *testing.T, pin, name string) uint64 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "stats"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	i := slices.Index(loader.StatNames(), name)
	var per []uint64
	if err := m.Lookup(uint32(i), &per); err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, v := range per {
		sum += v
	}
	return sum
}

// TestServeXDPSecondary: xdpns as the secondary of named, both in the
// server namespace; the change made at the primary (nsupdate) arrives by
// NOTIFY and IXFR and is answered by XDP through an incremental update
// (UpdateZone with CompileFrom's changes), not a reload.
func TestServeXDPSecondary(t *testing.T) {
	x := newXDPTest(t)
	named := testenv.RequireBinary(t, "named")
	testenv.RequireBinary(t, "dig")
	nsupdate := testenv.RequireBinary(t, "nsupdate")
	const primaryPort = 5300
	n := x.namedPrimary(named, primaryPort, namedZone{name: "example.com.", text: zoneText("example.com.", 1, "203.0.113.10"), allowUpdate: "127.0.0.1;"})
	x.zoneFile("example.net.", 1, "198.51.100.10")
	// Short timers: the zone expires 1-2 s after the primary goes away.
	x.writeConfig("auto", "", fmt.Sprintf(`  - name: example.com.
    primaries: ["127.0.0.1:%d"]
    timers: {refresh-min: 100ms, refresh-max: 200ms, retry-min: 100ms, retry-max: 200ms, expire-min: 1s, expire-max: 2s}
  - {name: example.net., file: example.net.zone}
`, primaryPort))
	p := x.serve(2) // both: the secondary transferred before XDP counts it
	s4, s6 := x.lab.Server4, x.lab.Server6
	x.waitAnswer(s4, "www.example.com.", "203.0.113.10")
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
	before := x.mustStats().XDP

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	script := fmt.Sprintf("server 127.0.0.1 %d\nzone example.com.\nupdate delete www.example.com. A\nupdate add www.example.com. 300 A 203.0.113.99\nsend\n", primaryPort)
	prog, args, err := nsArgs(x.lab.ServerNS, nsupdate)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := execInput(ctx, script, prog, args...); err != nil {
		t.Fatalf("nsupdate: %v\n%s", err, out)
	}
	x.waitAnswer(s4, "www.example.com.", "203.0.113.99")
	x.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.99"}, "xdp")
	x.via("dig", s6, "www.example.com.", "NOERROR", []string{"A 203.0.113.99"}, "xdp")
	after := x.mustStats().XDP
	if after.Updates <= before.Updates || after.Loads != before.Loads {
		t.Errorf("the IXFR reached XDP by %d updates and %d loads, want updates only", after.Updates-before.Updates, after.Loads-before.Loads)
	}
	if !strings.Contains(p.Output(), "incremental=true") {
		t.Errorf("no incremental XDP update logged:\n%s", p.Output())
	}
	code, out, _ := runCmd(t, "zone", "status", "example.com.", "-s", x.sock)
	if code != exitOK || !strings.Contains(out, "1 IXFR") {
		t.Errorf("zone status: the change did not come by IXFR:\n%s", out)
	}

	// The primary goes away; the zone expires: Go answers SERVFAIL, and
	// XDP, which must not answer it any more, passes it.
	n.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st := x.mustStats().XDP; st.Zones == 1 && st.Served == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the zone did not leave XDP on expiry: %+v", x.mustStats().XDP)
		}
	}
	x.via("dig", s4, "www.example.com.", "SERVFAIL", nil, "udp")
	x.via("dig", s6, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp")
	code, out, _ = runCmd(t, "zone", "status", "example.com.", "-s", x.sock)
	if code != exitOK || !strings.Contains(out, "expired") {
		t.Errorf("zone status:\n%s", out)
	}
}

// TestServeXDPRestartFromDisk: a secondary restarted without its primary
// serves the zone from its state directory; at start every zone is served
// by the engine first and compiled afterwards (startup.go), and XDP then
// answers it, loaded once for all (not once per zone).
func TestServeXDPRestartFromDisk(t *testing.T) {
	x := newXDPTest(t)
	named := testenv.RequireBinary(t, "named")
	testenv.RequireBinary(t, "dig")
	const primaryPort = 5300
	n := x.namedPrimary(named, primaryPort, namedZone{name: "example.com.", text: zoneText("example.com.", 7, "203.0.113.10")})
	x.zoneFile("example.net.", 1, "198.51.100.10")
	x.writeConfig("auto", "", fmt.Sprintf(`  - name: example.com.
    primaries: ["127.0.0.1:%d"]
  - {name: example.net., file: example.net.zone}
`, primaryPort))
	p1 := x.serve(2)
	x.waitAnswer(x.lab.Server4, "www.example.com.", "203.0.113.10")
	x.stop(p1)
	n.Stop()

	p2 := x.serve(2)
	x.waitAnswer(x.lab.Server4, "www.example.com.", "203.0.113.10")
	p2.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(p2.Output(), "answers compiled for the zones served at start") {
			return errors.New("no compile of the zones served at start logged")
		}
		return nil
	})
	x.via("dig", x.lab.Server4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
	x.via("dig", x.lab.Server6, "www.example.net.", "NOERROR", []string{"A 198.51.100.10"}, "xdp")
	out := p2.Output()
	if !strings.Contains(out, "zone loaded from disk") {
		t.Errorf("the secondary was not served from disk:\n%s", out)
	}
	// One load at start (zones held for Go), one when the compiles end.
	st := x.mustStats().XDP
	t.Logf("XDP loads at start: %d", st.Loads)
	if st.Loads > 2 {
		t.Errorf("XDP loaded %d times at start, want at most 2", st.Loads)
	}
}

// namedPrimary starts named in the server namespace on port, serving z
// and sending NOTIFY to port 53; stopped when the test ends.
func (x *xdpTest) namedPrimary(bin string, port int, z namedZone) *named {
	x.t.Helper()
	n, err := startNamed(context.Background(), bin, namedConfig{
		dir: filepath.Join(x.dir, "named"), port: port, notifyPort: 53,
		zones: []namedZone{z}, netns: x.lab.ServerNS, dial: x.lab.DialServer,
	})
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(n.Stop)
	return n
}

// TestXDPZones: XDP holds the zones the responder answers from compiled
// answers, and not a zone enclosing one that Go answers alone (its
// entries for the child's names would answer what Go answers SERVFAIL).
func TestXDPZones(t *testing.T) {
	mk := func(origin string) *responder.Zone {
		z, _, err := zone.Parse(strings.NewReader(zoneText(origin, 1, "192.0.2.1")), "test", origin, zone.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rz, err := responder.Compile(z)
		if err != nil {
			t.Fatal(err)
		}
		return rz
	}
	com, sub, net, org := mk("example.com."), mk("sub.example.com."), mk("example.net."), mk("example.org.")
	expired := *sub
	expired.Expired = true
	uncompiled := &responder.Zone{Zone: org.Zone}
	for _, tc := range []struct {
		name         string
		served       map[string]*responder.Zone
		want, goOnly []string
	}{
		{"all", map[string]*responder.Zone{"example.com.": com, "sub.example.com.": sub, "example.net.": net}, []string{"example.com.", "example.net.", "sub.example.com."}, nil},
		{"child expired", map[string]*responder.Zone{"example.com.": com, "sub.example.com.": &expired, "example.net.": net}, []string{"example.com.", "example.net."}, []string{"sub.example.com."}},
		{"child pending", map[string]*responder.Zone{"example.com.": com, "sub.example.com.": responder.Pending("sub.example.com."), "example.net.": net}, []string{"example.com.", "example.net."}, []string{"sub.example.com."}},
		{"parent expired", map[string]*responder.Zone{"sub.example.com.": sub, "example.com.": {Zone: com.Zone, Expired: true}}, []string{"sub.example.com."}, []string{"example.com."}},
		{"not compiled", map[string]*responder.Zone{"example.org.": uncompiled, "example.net.": net}, []string{"example.net."}, []string{"example.org."}},
		{"root enclosing pending", map[string]*responder.Zone{".": responder.Pending("."), "example.net.": net}, []string{"example.net."}, []string{"."}},
	} {
		var got, goOnly []string
		for o, z := range xdpZones(tc.served) {
			if z == nil {
				goOnly = append(goOnly, o)
			} else {
				got = append(got, o)
			}
		}
		slices.Sort(got)
		slices.Sort(goOnly)
		if !slices.Equal(got, tc.want) || !slices.Equal(goOnly, tc.goOnly) {
			t.Errorf("%s: in XDP %q, Go only %q; want %q and %q", tc.name, got, goOnly, tc.want, tc.goOnly)
		}
	}
}

// execOutput runs a program and returns its combined output.
func execOutput(ctx context.Context, prog string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	return string(out), err
}

// execInput runs a program with input on stdin.
func execInput(ctx context.Context, input, prog string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestServeXDPNotPermitted: without the capabilities for BPF (a container),
// serve says so and answers from userspace. As root the capabilities are
// dropped from the bounding set with setpriv.
func TestServeXDPNotPermitted(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	writeFile(t, dir, "example.com.zone", zoneText("example.com.", 1, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server: {listen: ["127.0.0.1:%d"], udp-sockets: 1}
xfr: {state-dir: ""}
control: {socket: ctl.sock}
xdp: {interfaces: [lo]}
zones:
  - {name: example.com., file: example.com.zone}
`, port))
	t.Setenv(envRunMain, "1")
	var p *testenv.Process
	if os.Geteuid() == 0 {
		testenv.RequireBinary(t, "setpriv")
		p = testenv.StartProcess(t, "setpriv", "--bounding-set", "-bpf,-net_admin,-sys_admin,-perfmon", "--inh-caps", "-all", "--",
			os.Args[0], "serve", "-c", cfg)
	} else {
		p = testenv.StartProcess(t, os.Args[0], "serve", "-c", cfg)
	}
	sock := filepath.Join(dir, "ctl.sock")
	var st ctlResponse
	p.WaitFor(t, 10*time.Second, func() error {
		code, out, errOut := runCmd(t, "xdp", "stats", "-json", "-s", sock)
		if code != exitOK {
			return fmt.Errorf("xdp stats: %s", errOut)
		}
		return json.Unmarshal([]byte(out), &st)
	})
	if st.XDP.State != "not permitted" || !strings.Contains(st.XDP.Reason, "xdp not permitted") {
		t.Errorf("xdp %+v", st.XDP)
	}
	if !strings.Contains(p.Output(), "XDP is not permitted here (needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON); serving from userspace only") {
		t.Errorf("log:\n%s", p.Output())
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	r, err := dns.Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "203.0.113.10" {
		t.Errorf("answer %v, %v", r, err)
	}
	code, out, _ := runCmd(t, "xdp", "stats", "-s", sock)
	if code != exitOK || !strings.Contains(out, "XDP: not permitted: ") || !strings.Contains(out, "server sockets: 1 UDP queries") {
		t.Errorf("xdp stats:\n%s", out)
	}
}

// TestServeXDPStalePins: a serve that cannot adopt what an earlier serve
// pinned (here: started without the BPF capabilities) removes it, so that
// XDP does not go on answering from maps no one updates; Go answers.
func TestServeXDPStalePins(t *testing.T) {
	x := newXDPTest(t)
	testenv.RequireBinary(t, "dig")
	testenv.RequireBinary(t, "setpriv")
	pin := bpffs(t)
	t.Cleanup(func() { loader.RemovePins(pin) })
	x.zoneFile("example.com.", 1, "203.0.113.10")
	x.zoneFile("example.net.", 1, "198.51.100.10")
	x.writeConfig("auto", pin, twoFileZones)
	x.stop(x.serve(2))
	if !x.attached() {
		t.Fatal("pinned XDP not left attached")
	}
	x.zoneFile("example.com.", 2, "203.0.113.11")
	p := testenv.StartProcess(t, "nsenter", "--net=/run/netns/"+x.lab.ServerNS, "--",
		"setpriv", "--bounding-set", "-bpf,-net_admin,-sys_admin,-perfmon", "--inh-caps", "-all", "--",
		os.Args[0], "serve", "-c", x.cfg)
	p.WaitFor(t, 10*time.Second, func() error {
		r, err := x.stats()
		if err != nil {
			return err
		}
		if r.XDP.State != "not permitted" {
			return fmt.Errorf("xdp %s", r.XDP.State)
		}
		return nil
	})
	if !strings.Contains(p.Output(), "XDP pinned by an earlier serve removed") {
		t.Errorf("log:\n%s", p.Output())
	}
	if x.attached() {
		t.Error("stale pinned XDP still attached")
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("pins left: %v", err)
	}
	x.via("dig", x.lab.Server4, "www.example.com.", "NOERROR", []string{"A 203.0.113.11"}, "go")
}

// TestServeXDPNoInterface: an interface that does not exist is logged and
// XDP closed; serve answers from userspace.
func TestServeXDPNoInterface(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	port := freePort(t)
	writeFile(t, dir, "example.com.zone", zoneText("example.com.", 1, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server: {listen: ["127.0.0.1:%d"], udp-sockets: 1}
xfr: {state-dir: ""}
control: {socket: ctl.sock}
xdp: {interfaces: [xdpns-nosuch0], mode: native}
zones:
  - {name: example.com., file: example.com.zone}
`, port))
	h := startServe(t, cfg, port)
	h.waitAnswer("www.example.com.", "203.0.113.10")
	h.waitLog("XDP attached to no interface; serving from userspace only")
	h.waitLog("msg=serving ") // logged once the control socket is up
	code, out, errOut := runCmd(t, "xdp", "stats", "-s", filepath.Join(dir, "ctl.sock"))
	if code != exitOK || !strings.Contains(out, "XDP: detached: attached to no interface") || !strings.Contains(out, "last error: attach xdp to xdpns-nosuch0") {
		t.Errorf("xdp stats: exit %d\n%s%s", code, out, errOut)
	}
}

// TestServeXDPPinnedInterfaceRemoved: an interface taken out of
// xdp.interfaces loses the XDP link the previous serve pinned for it.
func TestServeXDPPinnedInterfaceRemoved(t *testing.T) {
	x := newXDPTest(t)
	pin := bpffs(t)
	t.Cleanup(func() { loader.RemovePins(pin) })
	err := x.lab.InServer(func() error {
		// A second veth pair, both ends in the server namespace.
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "xd0"}, PeerName: "xd1"}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		return netlink.LinkSetUp(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	hasXDP := func(ifname string) bool {
		var on bool
		if err := x.lab.InServer(func() error {
			var err error
			on, err = xdpAttachedTo(ifname)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return on
	}
	x.zoneFile("example.com.", 1, "203.0.113.10")
	x.writeConfig("generic", pin, "  - {name: example.com., file: example.com.zone}\n")
	cfg := strings.Replace(readFile(t, x.cfg), "interfaces: [xs0]", "interfaces: [xs0, xd0]", 1)
	writeFile(t, x.dir, "xdpns.yaml", cfg)
	x.stop(x.serve(1))
	if !hasXDP("xs0") || !hasXDP("xd0") {
		t.Fatal("pinned XDP not left on both interfaces")
	}
	x.writeConfig("generic", pin, "  - {name: example.com., file: example.com.zone}\n")
	p := x.serve(1)
	if hasXDP("xd0") || !hasXDP("xs0") {
		t.Errorf("xd0 attached %t, xs0 %t; want only xs0", hasXDP("xd0"), hasXDP("xs0"))
	}
	if !strings.Contains(p.Output(), "pinned XDP link of an interface no longer configured removed") {
		t.Errorf("log:\n%s", p.Output())
	}
	if _, err := os.Stat(filepath.Join(pin, "link-xd0")); !os.IsNotExist(err) {
		t.Errorf("pin of xd0 left: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestXDPUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"xdp"}, exitUsage, "usage: xdpns xdp <command>"},
		{[]string{"xdp", "help"}, exitOK, "detach"},
		{[]string{"xdp", "attach"}, exitUsage, `unknown command "attach"`},
		{[]string{"xdp", "stats", "extra"}, exitUsage, "usage: xdpns xdp stats"},
		{[]string{"xdp", "stats", "-s", "/nonexistent/ctl.sock"}, exitFail, "is `xdpns serve` running with this control socket?"},
		{[]string{"xdp", "detach", "-c", "/nonexistent.yaml"}, exitFail, "read config"},
		{[]string{"xdp", "detach", "-s", "/nonexistent/ctl.sock"}, exitOK, ""},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("xdpns %q: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	_, out, _ := runCmd(t, "xdp", "detach", "-s", "/nonexistent/ctl.sock")
	if !strings.Contains(out, "nothing to detach (without xdp.pin, XDP goes away with serve)") {
		t.Errorf("detach with nothing running: %s", out)
	}
}

// TestDeferrable: a zone set is loaded later only when every difference
// adds answers XDP does not give yet (its queries pass to Go meanwhile).
func TestDeferrable(t *testing.T) {
	a, b, c := &zone.Zone{}, &zone.Zone{}, &zone.Zone{}
	for _, tc := range []struct {
		name       string
		want, have map[string]*zone.Zone
		ok         bool
	}{
		{"a new zone", map[string]*zone.Zone{"a.": a, "b.": b}, map[string]*zone.Zone{"a.": a}, true},
		{"a new zone held for Go", map[string]*zone.Zone{"a.": a, "b.": nil}, map[string]*zone.Zone{"a.": a}, true},
		{"first data", map[string]*zone.Zone{"a.": a, "b.": b}, map[string]*zone.Zone{"a.": a, "b.": nil}, true},
		{"removed", map[string]*zone.Zone{"a.": a}, map[string]*zone.Zone{"a.": a, "b.": b}, false},
		{"updated", map[string]*zone.Zone{"a.": c, "b.": b}, map[string]*zone.Zone{"a.": a}, false},
		{"to Go alone", map[string]*zone.Zone{"a.": nil}, map[string]*zone.Zone{"a.": a}, false},
		{"below a zone with data", map[string]*zone.Zone{"a.": a, "x.y.a.": b}, map[string]*zone.Zone{"a.": a}, false},
		{"below a zone held for Go", map[string]*zone.Zone{"a.": nil, "x.a.": b}, map[string]*zone.Zone{"a.": nil}, true},
		{"above a zone", map[string]*zone.Zone{"x.a.": a, "a.": b}, map[string]*zone.Zone{"x.a.": a}, true},
	} {
		if got := deferrable(tc.want, tc.have); got != tc.ok {
			t.Errorf("%s: deferrable %v, want %v", tc.name, got, tc.ok)
		}
	}
}
