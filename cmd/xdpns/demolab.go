package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/loader"
)

// The demo's XDP mode: a veth lab of two network namespaces, the primary
// and `xdpns serve` (this program again) in the server namespace with XDP
// on the server end, the questions asked from the client namespace. Every
// row says who answered it: XDP (tx__answer moved, the server's sockets
// saw nothing) or Go (the counter of the reason XDP passed it).

// Fixed ports inside the server namespace, which is ours alone.
const (
	labPrimaryPort = 5300 // the primary, on the namespace's loopback
	labPort        = 53   // xdpns on the veth addresses and on loopback (NOTIFY)
)

// labProc is a program started by the demo inside a namespace.
type labProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startLabProc runs this program with args inside ns (nsenter), its output
// going to logPath.
func startLabProc(ns, logPath string, args ...string) (*labProc, error) {
	self, err := selfPath()
	if err != nil {
		return nil, err
	}
	prog, full, err := nsArgs(ns, self, args...)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(prog, full...)
	cmd.Env = append(os.Environ(), selfEnv...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(self), err)
	}
	p := &labProc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends the process by its pid: SIGTERM, then SIGKILL after 5 s. It
// waits for the exit.
func (p *labProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *labProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the last lines of its output.
func (p *labProc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return indentText(strings.Join(lines, "\n"))
}

// labXdpnsPrimary is the lab's primary when named is missing: another
// `xdpns serve` in the server namespace, serving example.com. from a file
// to the secondary, with NOTIFY to it.
type labXdpnsPrimary struct {
	p        *labProc
	zoneFile string
	sock     string
}

func (dr *demoRun) startLabXdpnsPrimary(ctx context.Context, lab *vethLab) (demoPrimary, error) {
	zoneFile, path, err := dr.writeXdpnsPrimary(labPrimaryPort, labPort, "xfr:\n  state-dir: \"\"\n", "ctl.sock")
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	p, err := startLabProc(lab.ServerNS, filepath.Join(dir, "xdpns.log"), "serve", "-c", path)
	if err != nil {
		return nil, err
	}
	pr := &labXdpnsPrimary{p: p, zoneFile: zoneFile, sock: filepath.Join(dir, "ctl.sock")}
	c := dns.Client{Timeout: 200 * time.Millisecond}
	for deadline := time.Now().Add(demoWait); ; time.Sleep(20 * time.Millisecond) {
		if s, err := soaSerialVia(ctx, &c, lab.DialServer, pr.addr(), "example.com."); err == nil && s != 0 {
			return pr, nil
		}
		if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("the xdpns primary did not start:\n%s", p.tail(10))
		}
	}
}

func (p *labXdpnsPrimary) describe() string {
	return fmt.Sprintf("xdpns serve in the server namespace on %s: example.com. from a zone file;\n           NOTIFY only to the secondary, signed with the transfer key", p.addr())
}

func (p *labXdpnsPrimary) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), labPrimaryPort)
}

// incremental is false: a zone served from a file has no history of
// differences, so xdpns answers IXFR with the whole zone.
func (p *labXdpnsPrimary) incremental() bool { return false }
func (p *labXdpnsPrimary) signed() bool      { return true }
func (p *labXdpnsPrimary) stop()             { p.p.stop() }

func (p *labXdpnsPrimary) change(ctx context.Context) (string, error) {
	text, err := os.ReadFile(p.zoneFile)
	if err != nil {
		return "", err
	}
	next := strings.Replace(string(text), fmt.Sprint(demoSerial), fmt.Sprint(demoSerial+1), 1)
	next = strings.Replace(next, "host        A     "+demoOldAddr, "host        A     "+demoNewAddr, 1)
	if next == string(text) {
		return "", errors.New("the bundled zone changed; the demo cannot edit it")
	}
	if err := os.WriteFile(p.zoneFile, []byte(next), 0o644); err != nil {
		return "", err
	}
	resp, _, err := controlCall(ctx, p.sock, ctlRequest{Command: ctlReload})
	if err == nil && !resp.OK {
		err = errors.New(resp.Error + strings.Join(resp.Details, "; "))
	}
	if err != nil {
		return "", fmt.Errorf("reload the primary: %w", err)
	}
	return "an edited zone file and `xdpns zone reload` at the primary", nil
}

// labCanRun says why the lab cannot run, or "" when it can be tried.
func labCanRun() string {
	if _, err := lookPath("nsenter"); err != nil {
		return "nsenter (Debian package util-linux) is not installed"
	}
	if os.Geteuid() != 0 {
		return "XDP and the network namespaces need root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)"
	}
	return ""
}

// runLab is the demo in the veth lab. It returns ok=false with nothing
// printed but the reason when the lab cannot be built (no privileges), so
// the caller can run the userspace demo instead.
func (d *demoRun) runLab(ctx context.Context, which string, keep bool, outer context.Context, interrupted <-chan struct{}) (code int, ok bool) {
	e := d.e
	t0 := time.Now()
	lab, err := newVethLab("xdpns-demo")
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			e.printf("no privileges for XDP here (%v)\n", err)
		} else {
			e.printf("the XDP lab could not be built (%v)\n", err)
		}
		return 0, false
	}
	defer func() {
		if err := lab.Close(); err != nil {
			e.errorf("demo: %v\n", err)
		}
	}()
	e.printf("lab:       network namespaces %s (server) and %s (client),\n", lab.ServerNS, lab.ClientNS)
	e.printf("           veth %s %s %s <-> %s %s %s (pass-all XDP on the client end), built in %s\n",
		lab.ServerIf, lab.Server4, lab.Server6, lab.ClientIf, lab.Client4, lab.Client6, ms(time.Since(t0)))

	p, err := d.startLabPrimary(ctx, which, lab)
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail, true
	}
	defer p.stop()

	cfgPath, sock, err := d.writeLabConfig(lab, p.addr(), p.signed())
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail, true
	}
	t1 := time.Now()
	sec, err := startLabProc(lab.ServerNS, filepath.Join(d.dir, "xdpns.log"), "serve", "-c", cfgPath)
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail, true
	}
	defer sec.stop()
	e.printf("primary:   %s\n", p.describe())
	tsig := ""
	if p.signed() {
		tsig = " (TSIG " + d.xfrKey.name + ")"
	}
	e.printf("secondary: xdpns serve in the server namespace on %s:%d and [%s]:%d (127.0.0.1:%d for NOTIFY):\n",
		lab.Server4, labPort, lab.Server6, labPort, labPort)
	e.printf("           example.com. from the primary%s, example.net. from a file; XDP on %s;\n", tsig, lab.ServerIf)
	e.printf("           state in %s, control socket %s\n\n", filepath.Join(d.dir, "state"), sock)

	// Serving, with the first transfer done.
	var st ctlResponse
	var row zoneRow
	waitErr := waitFor(ctx, demoWait, func() error {
		if sec.exited() {
			return errors.New("xdpns serve exited")
		}
		var err error
		if st, _, err = controlCall(ctx, sock, ctlRequest{Command: ctlXDPStats}); err != nil {
			return err
		}
		zs, _, err := controlCall(ctx, sock, ctlRequest{Command: ctlStatus, Zone: "example.com."})
		if err != nil || len(zs.Zones) != 1 || !zs.Zones[0].Served {
			return fmt.Errorf("example.com. not transferred yet")
		}
		row = zs.Zones[0]
		if st.XDP == nil || (st.XDP.State == "attached" && st.XDP.Zones < 2) || st.XDP.State == "loaded" {
			return fmt.Errorf("XDP not loaded yet")
		}
		return nil
	})
	if waitErr != nil {
		e.printf("FAIL: xdpns did not serve example.com. within %s: %v\n%s", demoWait, waitErr, sec.tail(15))
		return exitFail, true
	}
	xdpOn := st.XDP.State == "attached"
	if xdpOn {
		var ifs []string
		for _, i := range st.XDP.Interfaces {
			ifs = append(ifs, i.Name+" in "+i.Mode+" mode")
		}
		e.printf("XDP attached to %s; %d zones in its maps\n", strings.Join(ifs, ", "), st.XDP.Zones)
	} else {
		e.printf("XDP is %s (%s): every query is answered in userspace\n", st.XDP.State, st.XDP.Reason)
	}
	how := "AXFR"
	if row.Counters != nil && row.Counters.Full == 0 {
		how = "IXFR"
	}
	e.printf("example.com. serial %d transferred by %s from %s and served %s after xdpns started\n\n",
		row.Serial, how, row.Source, ms(time.Since(t1)))

	asker := &labAsker{lab: lab, sock: sock}
	d.failed += asker.ask(ctx, e.stdout, demoQueries)

	// The change.
	e.printf("\nchange at the primary: %s A %s -> %s\n", demoChangeName, demoOldAddr, demoNewAddr)
	before := row
	tc := time.Now()
	via, err := p.change(ctx)
	tm := time.Now()
	if err != nil {
		e.printf("FAIL: %v\n", err)
		return exitFail, true
	}
	e.printf("  made with %s in %s\n", via, ms(tm.Sub(tc)))
	// Answered from the client as soon as the new SOA is: by XDP when on.
	var servedAt time.Time
	c := dns.Client{Timeout: 200 * time.Millisecond}
	waitErr = waitFor(ctx, demoWait, func() error {
		s, err := soaSerialVia(ctx, &c, lab.DialClient, netip.AddrPortFrom(lab.Server4, labPort), "example.com.")
		if err != nil || s == before.Serial {
			return fmt.Errorf("serial %d", s)
		}
		servedAt = time.Now()
		return nil
	})
	if waitErr != nil {
		e.printf("FAIL: the change did not arrive within %s\n%s", demoWait, sec.tail(15))
		return exitFail, true
	}
	zs, _, err := controlCall(ctx, sock, ctlRequest{Command: ctlStatus, Zone: "example.com."})
	if err != nil || len(zs.Zones) != 1 || zs.Zones[0].Counters == nil || before.Counters == nil {
		e.printf("FAIL: zone status: %v\n", err)
		return exitFail, true
	}
	after := zs.Zones[0]
	notified := after.Counters.Notifies > before.Counters.Notifies
	ixfr := after.Counters.Incremental > before.Counters.Incremental
	kind := "AXFR (full transfer)"
	if ixfr {
		kind = "IXFR (only the difference)"
	}
	trigger := "the refresh timer (no NOTIFY arrived)"
	if notified {
		trigger = "NOTIFY from the primary"
	}
	e.printf("  %s -> %s %d -> %d from %s\n", trigger, kind, before.Serial, after.Serial, after.Source)
	where := "the client"
	if xdpOn {
		where = "the client, answered by XDP,"
	}
	e.printf("  seen by %s %s after the update was sent\n\n", where, ms(servedAt.Sub(tc)))
	d.failed += asker.ask(ctx, e.stdout, demoAfter)
	if !notified {
		e.printf("FAIL: no NOTIFY was accepted\n")
		d.failed++
	}
	if ixfr != p.incremental() {
		e.printf("FAIL: the change came by %s, want %s\n", kind, map[bool]string{true: "IXFR", false: "AXFR"}[p.incremental()])
		d.failed++
	}
	if xdpOn && asker.after[true] == 0 {
		e.printf("FAIL: the new answers were not given by XDP\n")
		d.failed++
	}

	e.printf("\nxdpns zone status:\n")
	if rs, _, err := controlCall(ctx, sock, ctlRequest{Command: ctlStatus}); err == nil {
		printStatus(e.stdout, rs.Zones, rs.Now)
	}
	e.printf("\nxdpns xdp stats (all traffic, including the demo's polling):\n")
	if rs, _, err := controlCall(ctx, sock, ctlRequest{Command: ctlXDPStats}); err == nil && rs.XDP != nil {
		var b strings.Builder
		printXDPStats(&b, *rs.XDP, rs.Server)
		e.printf("%s", indentText(b.String()))
	}

	e.printf("\n")
	total := len(demoQueries) + len(demoAfter)
	if d.failed > 0 {
		e.printf("FAIL: %d of %d checks were not as expected\n", d.failed, total+2)
		return exitFail, true
	}
	e.printf("ok: all %d answers as expected, %d by XDP and %d by Go; the change arrived by %s and %s and was seen %s after the update\n",
		total, asker.byXDP, asker.byGo, map[bool]string{true: "NOTIFY", false: "timer"}[notified],
		map[bool]string{true: "IXFR", false: "AXFR"}[ixfr], ms(servedAt.Sub(tc)))
	if keep {
		e.printf("\nstill serving; try (Ctrl-C stops and removes the lab):\n")
		e.printf("  nsenter --net=/run/netns/%s dig @%s www.example.com A\n", lab.ClientNS, lab.Server4)
		e.printf("  nsenter --net=/run/netns/%s dig @%s www.example.com AAAA\n", lab.ClientNS, lab.Server6)
		e.printf("  xdpns xdp stats -s %s\n", sock)
		select {
		case <-outer.Done():
		case <-interrupted:
		}
	}
	return exitOK, true
}

// waitFor polls ready every 10 ms until it returns nil, ctx ends or limit
// passes; it returns the last error.
func waitFor(ctx context.Context, limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startLabPrimary starts named in the server namespace (which is "named",
// or "auto" with named installed), else an xdpns primary there.
func (d *demoRun) startLabPrimary(ctx context.Context, which string, lab *vethLab) (demoPrimary, error) {
	return d.choosePrimary(which, "another xdpns",
		func(bin string) (demoPrimary, error) { return d.startLabNamed(ctx, bin, lab) },
		func() (demoPrimary, error) { return d.startLabXdpnsPrimary(ctx, lab) })
}

func (d *demoRun) startLabNamed(ctx context.Context, bin string, lab *vethLab) (*namedPrimary, error) {
	dir := filepath.Join(d.dir, "named")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	text, err := demoZones.ReadFile("demo/example.com.zone")
	if err != nil {
		return nil, err
	}
	nc := namedConfig{
		dir: dir, port: labPrimaryPort, notifyPort: labPort, notifyKey: d.xfrKey.name,
		keys: []tsigKey{d.xfrKey, d.updKey},
		zones: []namedZone{{name: "example.com.", text: string(text),
			allowTransfer: fmt.Sprintf("key %q;", d.xfrKey.name),
			allowUpdate:   fmt.Sprintf("key %q;", d.updKey.name)}},
		netns: lab.ServerNS, dial: lab.DialServer,
	}
	if d.verbose {
		d.e.printf("named.conf:\n%s\n", indentText(namedConf(nc)))
	}
	n, err := startNamed(ctx, bin, nc)
	if err != nil {
		return nil, err
	}
	p := &namedPrimary{n: n, version: namedVersion(bin), key: d.updKey, where: "in the server namespace "}
	p.nsupdate, _ = lookPath("nsupdate")
	return p, nil
}

// writeLabConfig writes the secondary's xdpns.yaml for the lab; it returns
// its path and the control socket's.
func (d *demoRun) writeLabConfig(lab *vethLab, primary netip.AddrPort, signed bool) (string, string, error) {
	netZone, err := demoZones.ReadFile("demo/example.net.zone")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "example.net.zone"), netZone, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "demo-xfr.key"), []byte(d.xfrKey.secret+"\n"), 0o600); err != nil {
		return "", "", err
	}
	keyLine := ""
	if signed {
		keyLine = "\n        key: " + d.xfrKey.name
	}
	text := fmt.Sprintf(`# xdpns as a secondary of the demo's primary, with XDP (written by xdpns demo).
server:
  listen: ["%[1]s:%[2]d", "[%[3]s]:%[2]d", "127.0.0.1:%[2]d"]
  udp-sockets: 1
  identity: %[4]s
  version: %[5]q
log:
  level: info
xfr:
  state-dir: state           # zones and timers survive a restart here
keys:
  - name: %[6]s
    algorithm: %[7]s
    secret-file: demo-xfr.key
zones:
  - name: example.com.
    primaries:
      - address: %[8]s%[9]s
  - name: example.net.
    file: example.net.zone
control:
  socket: control.sock
xdp:
  interfaces: [%[10]s]       # the server end of the veth pair
  mode: auto                 # native, else generic
`, lab.Server4, labPort, lab.Server6, demoIdentity, versionString(), d.xfrKey.name, d.xfrKey.algorithm, primary, keyLine, lab.ServerIf)
	path := filepath.Join(d.dir, "xdpns.yaml")
	if d.verbose {
		d.e.printf("xdpns.yaml:\n%s\n", indentText(text))
	}
	return path, filepath.Join(d.dir, "control.sock"), os.WriteFile(path, []byte(text), 0o644)
}

// labAsker asks from the client namespace and tells who answered from
// the counters before and after each question.
type labAsker struct {
	lab         *vethLab
	sock        string
	byXDP, byGo int
	after       map[bool]int // answers of the last ask, by XDP or not
}

// ask sends every query (odd rows over IPv6), prints the table and returns
// how many answers were not as expected.
func (a *labAsker) ask(ctx context.Context, w io.Writer, qs []demoQuery) (failed int) {
	a.after = map[bool]int{}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tQUERY\tVIA\tANSWERED BY\tSHOWS\tRCODE\tANSWER")
	for i, q := range qs {
		server := a.lab.Server4
		if i%2 == 1 {
			server = a.lab.Server6
		}
		before, _, berr := controlCall(ctx, a.sock, ctlRequest{Command: ctlXDPStats})
		resp, err := labExchange(ctx, a.lab, netip.AddrPortFrom(server, labPort), q)
		after, _, aerr := controlCall(ctx, a.sock, ctlRequest{Command: ctlXDPStats})
		by := "?"
		if berr == nil && aerr == nil {
			xdp := false
			by, xdp = answeredBy(before, after)
			if xdp {
				a.byXDP++
			} else {
				a.byGo++
			}
			a.after[xdp]++
		}
		row := newDemoRow(q, resp, err)
		if row.problem != "" {
			failed++
		}
		via := row.via + "6"
		if server.Is4() {
			via = row.via + "4"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.mark, row.query, via, by, q.note, row.rcode, row.lines[0])
		for _, l := range row.lines[1:] {
			fmt.Fprintf(tw, "\t\t\t\t\t\t%s\n", l)
		}
		if row.problem != "" {
			fmt.Fprintf(tw, "\t\t\t\t\t\twant: %s\n", row.problem)
		}
	}
	tw.Flush()
	return failed
}

// answeredBy reads two counter readings around one question: "XDP" when
// XDP answered it, else "Go" with the reason XDP passed it (or the
// transport that bypasses XDP's answers).
func answeredBy(before, after ctlResponse) (string, bool) {
	if before.XDP == nil || after.XDP == nil || before.Server == nil || after.Server == nil {
		return "?", false
	}
	delta := func(n string) uint64 { return after.XDP.Counters[n] - before.XDP.Counters[n] }
	if delta("tx__answer")+delta("tx__truncated")+delta("tx__nxdomain")+delta("tx__wildcard")+delta("tx__referral") > 0 && after.Server.UDPQueries == before.Server.UDPQueries &&
		after.Server.TCPQueries == before.Server.TCPQueries {
		return "XDP", true
	}
	if after.Server.TCPQueries > before.Server.TCPQueries {
		return "Go (TCP)", false
	}
	for _, n := range loader.StatNames() {
		if strings.HasPrefix(n, "pass__") && delta(n) > 0 {
			why := passReasons[n]
			if why == "" {
				why = n
			}
			return "Go (" + why + ")", false
		}
	}
	return "Go", false
}

// passReasons words the counters of the questions the demo asks.
var passReasons = map[string]string{
	"pass__no_entry": "not compiled",
	"pass__class":    "class not IN",
	"pass__qtype":    "QTYPE",
	"pass__nsid":     "NSID",
	"pass__oversize": "too large",
	"pass__no_room":  "no room",
}

// labExchange asks q from the client namespace.
func labExchange(ctx context.Context, lab *vethLab, server netip.AddrPort, q demoQuery) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	m.RecursionDesired = false
	if q.class != 0 {
		m.Question[0].Qclass = q.class
	}
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if q.tcp {
		c.Net = "tcp"
	}
	return exchangeVia(ctx, c, lab.DialClient, m, server.String())
}
