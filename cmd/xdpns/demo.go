package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/config"
)

// demoZones are the bundled zones; each file is named ORIGIN.zone.
//
//go:embed demo/*.zone
var demoZones embed.FS

// demoIdentity is what the demo answers to CHAOS TXT id.server.
const demoIdentity = "xdpns-demo"

// demoQuery is one question the demo asks and the answer it expects. RRs are
// written "OWNER TYPE RDATA" (no TTL or class), in the order sent.
type demoQuery struct {
	name   string
	qtype  uint16
	class  uint16 // 0: IN
	tcp    bool
	rcode  int
	aa     bool
	answer []string
	ns     []string // authority section; nil: not checked
	note   string   // what the row shows
}

const demoSOA = "example.com. SOA ns1.example.com. hostmaster.example.com. 2024060101 7200 3600 1209600 300"

var demoQueries = []demoQuery{
	{name: "example.com.", qtype: dns.TypeA, aa: true, note: "apex A",
		answer: []string{"example.com. A 203.0.113.10"}},
	{name: "host.example.com.", qtype: dns.TypeAAAA, aa: true, note: "AAAA",
		answer: []string{"host.example.com. AAAA 2001:db8::20"}},
	{name: "example.com.", qtype: dns.TypeMX, aa: true, note: "MX",
		answer: []string{"example.com. MX 10 mail.example.com.", "example.com. MX 20 mail.example.net."}},
	{name: "www.example.com.", qtype: dns.TypeA, aa: true, note: "CNAME chain",
		answer: []string{
			"www.example.com. CNAME web.example.com.",
			"web.example.com. CNAME host.example.com.",
			"host.example.com. A 203.0.113.20",
		}},
	{name: "anything.apps.example.com.", qtype: dns.TypeA, aa: true, note: "wildcard",
		answer: []string{"anything.apps.example.com. A 203.0.113.30"}},
	{name: "nope.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, note: "NXDOMAIN",
		ns: []string{demoSOA}},
	{name: "host.example.com.", qtype: dns.TypeMX, aa: true, note: "NODATA",
		ns: []string{demoSOA}},
	{name: "www.sub.example.com.", qtype: dns.TypeA, note: "referral",
		ns: []string{"sub.example.com. NS ns1.sub.example.com.", "sub.example.com. NS ns2.example.net."}},
	{name: "example.net.", qtype: dns.TypeA, aa: true, note: "second zone",
		answer: []string{"example.net. A 198.51.100.80"}},
	{name: "example.com.", qtype: dns.TypeTXT, tcp: true, aa: true, note: "TCP",
		answer: []string{`example.com. TXT "v=spf1 mx -all"`}},
	{name: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused, note: "not our zone"},
	{name: "id.server.", qtype: dns.TypeTXT, class: dns.ClassCHAOS, aa: true, note: "CHAOS identity",
		answer: []string{`id.server. TXT "` + demoIdentity + `"`}},
}

// The demo's change at the primary: host.example.com. moves to a new
// address, which www.example.com. reaches through its CNAME chain.
const (
	demoChangeName = "host.example.com."
	demoOldAddr    = "203.0.113.20"
	demoNewAddr    = "203.0.113.21"
	demoSerial     = 2024060101
)

// demoAfter are the questions asked after the change.
var demoAfter = []demoQuery{
	{name: "www.example.com.", qtype: dns.TypeA, aa: true, note: "new address",
		answer: []string{
			"www.example.com. CNAME web.example.com.",
			"web.example.com. CNAME host.example.com.",
			"host.example.com. A " + demoNewAddr,
		}},
	{name: "example.com.", qtype: dns.TypeSOA, aa: true, note: "new serial",
		answer: []string{strings.Replace(demoSOA, fmt.Sprint(demoSerial), fmt.Sprint(demoSerial+1), 1)}},
}

// demoNamed is the program the demo runs as its primary (a variable so a
// test can pretend it is missing).
var demoNamed = "named"

// demoTimeout bounds the demo (without -keep); demoWait bounds each wait
// for a transfer within it.
const (
	demoTimeout = 30 * time.Second
	demoWait    = 10 * time.Second
)

// demoPrimary is the primary the demo's secondary transfers from.
type demoPrimary interface {
	// describe says what it is, for the first line of output.
	describe() string
	addr() netip.AddrPort
	// change moves host.example.com. to demoNewAddr and bumps the serial;
	// it returns how the change was made.
	change(ctx context.Context) (string, error)
	// incremental reports whether the secondary should get the change by
	// IXFR (the primary keeps a journal).
	incremental() bool
	// signed reports whether transfers and NOTIFY are signed with the
	// demo's transfer key.
	signed() bool
	stop()
}

// demoRun is one run of the demo.
type demoRun struct {
	e       *env
	dir     string // temporary; removed at the end
	verbose bool
	xfrKey  tsigKey // transfers and NOTIFY
	updKey  tsigKey // dynamic updates at the primary
	served  chan demoServed
	failed  int
}

// demoServed is a version of a secondary zone the daemon started serving.
type demoServed struct {
	origin string
	serial uint32
	at     time.Time
}

// cmdDemo starts a primary on loopback (BIND's named when installed, else
// an in-process xdpns), makes xdpns its secondary, asks demoQueries, then
// changes the zone at the primary and shows the change arriving by NOTIFY
// and IXFR. It exits 1 if anything was not as expected.
func cmdDemo(ctx context.Context, e *env, args []string) int {
	fset := newFlagSet(e, "demo", "[-keep] [-v] [-primary auto|named|xdpns] [-xdp auto|on|off]")
	keep := fset.Bool("keep", false, "keep serving after the demo until interrupted (try dig against it)")
	verbose := fset.Bool("v", false, "print the configurations of the primary and the secondary")
	which := fset.String("primary", "auto", "the primary: named (BIND), xdpns, or auto: named when installed")
	xdp := fset.String("xdp", "auto", "on: a veth lab with XDP (root); off: userspace on loopback; auto: the lab when privileged")
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	switch *which {
	case "auto", "named", "xdpns":
	default:
		e.errorf("demo: -primary must be auto, named or xdpns, got %q\n", *which)
		return exitUsage
	}
	switch *xdp {
	case "auto", "on", "off":
	default:
		e.errorf("demo: -xdp must be auto, on or off, got %q\n", *xdp)
		return exitUsage
	}
	dir, err := os.MkdirTemp("", "xdpns-demo-")
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail
	}
	defer os.RemoveAll(dir)
	d := &demoRun{e: e, dir: dir, verbose: *verbose, served: make(chan demoServed, 64),
		xfrKey: tsigKey{"demo-xfr.", "hmac-sha256", randomSecret()},
		updKey: tsigKey{"demo-update.", "hmac-sha256", randomSecret()}}
	// A signal ends the demo at any point: runCtx for its steps,
	// interrupted for -keep's wait after them.
	sigs, stop := e.signals(syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	interrupted, finished := make(chan struct{}), make(chan struct{})
	defer close(finished)
	runCtx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			close(interrupted)
			cancel()
		case <-finished:
		}
	}()
	if *xdp != "off" {
		why := labCanRun()
		if why == "" {
			if code, ok := d.runLab(runCtx, *which, *keep, ctx, interrupted); ok {
				return code
			}
		} else {
			e.printf("no privileges for XDP here: %s\n", why)
		}
		if *xdp == "on" {
			e.errorf("demo: -xdp on: the XDP lab cannot run here\n")
			return exitFail
		}
		e.printf("running the demo in userspace mode (as in a container): xdpns on loopback, every answer from Go\n\n")
	}
	return d.run(runCtx, *which, *keep, ctx, interrupted)
}

// randomSecret is a fresh 256-bit TSIG secret, base64.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func (d *demoRun) run(ctx context.Context, which string, keep bool, outer context.Context, interrupted <-chan struct{}) int {
	e := d.e
	port, err := freeLoopbackPort()
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail
	}
	p, err := d.startPrimary(ctx, which, port)
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail
	}
	defer p.stop()

	cfgPath, err := d.writeSecondaryConfig(port, p.addr(), p.signed())
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		printErrors(e, err)
		return exitFail
	}
	log := newLogger(e.stderr, cfg.Log)
	t0 := time.Now()
	sec, err := startDaemon(context.Background(), cfgPath, cfg, log, daemonHooks{served: d.onServed})
	if err != nil {
		e.errorf("demo: %v\n", err)
		return exitFail
	}
	defer sec.Close()
	addr := sec.srv.Addrs()[0]
	e.printf("primary:   %s\n", p.describe())
	tsig := ""
	if p.signed() {
		tsig = " (TSIG " + d.xfrKey.name + ")"
	}
	e.printf("secondary: xdpns on %s: example.com. from the primary%s, example.net. from a file;\n", addr, tsig)
	e.printf("           state in %s, control socket %s\n\n", cfg.Xfr.StateDir, cfg.Control.Socket)

	// The first transfer.
	first, ok := d.waitServed(ctx, "example.com.", 0)
	if !ok {
		e.printf("FAIL: example.com. was not transferred within %s\n", demoWait)
		d.printStatus(sec)
		return exitFail
	}
	st, _ := sec.manager().ZoneStatus("example.com.")
	how := "AXFR"
	if st.Counters.Full == 0 {
		how = "IXFR" // cannot happen: nothing to increment from
	}
	e.printf("example.com. serial %d transferred by %s from %s and served %s after xdpns started\n\n",
		first.serial, how, st.Source, ms(first.at.Sub(t0)))

	d.failed += demoAsk(ctx, e.stdout, addr, demoQueries)

	// The change.
	before := first.serial
	e.printf("\nchange at the primary: %s A %s -> %s\n", demoChangeName, demoOldAddr, demoNewAddr)
	t1 := time.Now()
	via, err := p.change(ctx)
	t2 := time.Now()
	if err != nil {
		e.printf("FAIL: %v\n", err)
		return exitFail
	}
	e.printf("  made with %s in %s\n", via, ms(t2.Sub(t1)))
	next, ok := d.waitServed(ctx, "example.com.", before)
	if !ok {
		e.printf("FAIL: the change did not arrive within %s\n", demoWait)
		d.printStatus(sec)
		return exitFail
	}
	st2, _ := sec.manager().ZoneStatus("example.com.")
	notified := st2.Counters.Notifies > st.Counters.Notifies
	ixfr := st2.Counters.Incremental > st.Counters.Incremental
	kind := "AXFR (full transfer)"
	if ixfr {
		kind = "IXFR (only the difference)"
	}
	trigger := "the refresh timer (no NOTIFY arrived)"
	if notified {
		trigger = "NOTIFY from the primary"
	}
	e.printf("  %s -> SOA check -> %s %d -> %d from %s\n", trigger, kind, before, next.serial, st2.Source)
	e.printf("  served %s after the update was sent\n\n", ms(next.at.Sub(t1)))
	d.failed += demoAsk(ctx, e.stdout, addr, demoAfter)
	if !notified {
		e.printf("FAIL: no NOTIFY was accepted\n")
		d.failed++
	}
	if ixfr != p.incremental() {
		e.printf("FAIL: the change came by %s, want %s\n", kind, map[bool]string{true: "IXFR", false: "AXFR"}[p.incremental()])
		d.failed++
	}
	e.printf("\nxdpns zone status:\n")
	d.printStatus(sec)

	e.printf("\n")
	total := len(demoQueries) + len(demoAfter)
	if d.failed > 0 {
		e.printf("FAIL: %d of %d checks were not as expected\n", d.failed, total+2)
		return exitFail
	}
	e.printf("ok: all %d answers as expected; the change arrived by %s and %s and was served %s after the update\n",
		total, map[bool]string{true: "NOTIFY", false: "timer"}[notified], map[bool]string{true: "IXFR", false: "AXFR"}[ixfr], ms(next.at.Sub(t1)))
	if keep {
		host, port, _ := strings.Cut(addr, ":")
		e.printf("\nstill serving; try: dig @%s -p %s www.example.com A   (Ctrl-C stops)\n", host, port)
		e.printf("or: xdpns zone status -s %s\n", cfg.Control.Socket)
		select {
		case <-outer.Done():
		case <-interrupted:
		}
	}
	return exitOK
}

func (d *demoRun) onServed(origin string, serial uint32) {
	select {
	case d.served <- demoServed{origin, serial, time.Now()}:
	default:
	}
}

// waitServed waits (at most demoWait) for a version of origin other than
// after (0: any).
func (d *demoRun) waitServed(ctx context.Context, origin string, after uint32) (demoServed, bool) {
	ctx, cancel := context.WithTimeout(ctx, demoWait)
	defer cancel()
	for {
		select {
		case s := <-d.served:
			if s.origin == origin && (after == 0 || s.serial != after) {
				return s, true
			}
		case <-ctx.Done():
			return demoServed{}, false
		}
	}
}

func (d *demoRun) printStatus(sec *daemon) {
	printStatus(d.e.stdout, sec.status(""), time.Now())
}

// ms writes a duration in milliseconds, e.g. "6 ms" or "0.4 ms".
func ms(t time.Duration) string {
	if t < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(t)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d ms", t.Milliseconds())
}

// startPrimary starts named (which is "named", or "auto" with named
// installed) or the in-process xdpns primary.
func (d *demoRun) startPrimary(ctx context.Context, which string, notifyPort int) (demoPrimary, error) {
	return d.choosePrimary(which, "an in-process xdpns",
		func(bin string) (demoPrimary, error) { return d.startNamed(ctx, bin, notifyPort) },
		func() (demoPrimary, error) { return d.startXdpnsPrimary(ctx, notifyPort) })
}

// choosePrimary is the demo's rule for its primary, in both demos: named
// when asked for or installed, else an xdpns primary (other says which),
// explaining the fallback; "named" asked for and failing is an error.
func (d *demoRun) choosePrimary(which, other string, named func(bin string) (demoPrimary, error), xdpns func() (demoPrimary, error)) (demoPrimary, error) {
	if which != "xdpns" {
		bin, err := lookPath(demoNamed)
		if err == nil {
			p, err := named(bin)
			if err == nil {
				return p, nil
			}
			if which == "named" {
				return nil, err
			}
			d.e.printf("named did not start (%v);\nfalling back to %s primary\n\n", firstLine(err), other)
		} else {
			if which == "named" {
				return nil, fmt.Errorf("%v (Debian package bind9)", err)
			}
			d.e.printf("named (Debian package bind9) is not installed: the primary is %s instead\n(make demo installs bind9 through .ci/deps.sh)\n\n", other)
		}
	}
	return xdpns()
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// namedPrimary is the demo's named.
type namedPrimary struct {
	n        *named
	version  string
	nsupdate string // path, or "" to send the update from here
	key      tsigKey
	where    string // e.g. "in the server namespace "
}

func (d *demoRun) startNamed(ctx context.Context, bin string, notifyPort int) (*namedPrimary, error) {
	dir := filepath.Join(d.dir, "named")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	text, err := demoZones.ReadFile("demo/example.com.zone")
	if err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	nc := namedConfig{
		dir: dir, port: port, notifyPort: notifyPort, notifyKey: d.xfrKey.name,
		keys: []tsigKey{d.xfrKey, d.updKey},
		zones: []namedZone{{name: "example.com.", text: string(text),
			allowTransfer: fmt.Sprintf("key %q;", d.xfrKey.name),
			allowUpdate:   fmt.Sprintf("key %q;", d.updKey.name)}},
	}
	if d.verbose {
		d.e.printf("named.conf:\n%s\n", indentText(namedConf(nc)))
	}
	n, err := startNamed(ctx, bin, nc)
	if err != nil {
		return nil, err
	}
	p := &namedPrimary{n: n, version: namedVersion(bin), key: d.updKey}
	p.nsupdate, _ = lookPath("nsupdate")
	return p, nil
}

func (p *namedPrimary) describe() string {
	return fmt.Sprintf("%s %son %s: example.com. from a zone file, with a journal;\n           NOTIFY only to the secondary, signed with the transfer key", p.version, p.where, p.n.Addr())
}

func (p *namedPrimary) addr() netip.AddrPort { return p.n.Addr() }
func (p *namedPrimary) incremental() bool    { return true }
func (p *namedPrimary) signed() bool         { return true }
func (p *namedPrimary) stop()                { p.n.Stop() }

func (p *namedPrimary) change(ctx context.Context) (string, error) {
	cmds := []string{
		"update delete " + demoChangeName + " A",
		"update add " + demoChangeName + " 3600 A " + demoNewAddr,
	}
	if p.nsupdate != "" {
		if err := p.n.nsupdate(ctx, p.nsupdate, p.key, "example.com.", cmds); err != nil {
			return "", err
		}
		return fmt.Sprintf("nsupdate (RFC 2136, signed with %s)", p.key.name), nil
	}
	// bind9-dnsutils missing: the same update, sent from here.
	m := new(dns.Msg)
	m.SetUpdate("example.com.")
	old, _ := dns.NewRR(demoChangeName + " 3600 IN A " + demoOldAddr)
	rr, _ := dns.NewRR(demoChangeName + " 3600 IN A " + demoNewAddr)
	m.RemoveRRset([]dns.RR{old})
	m.Insert([]dns.RR{rr})
	m.SetTsig(p.key.name, dns.HmacSHA256, 300, time.Now().Unix())
	c := dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{p.key.name: p.key.secret}}
	r, err := exchangeVia(ctx, &c, p.n.cfg.dial, m, p.n.Addr().String())
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return "", fmt.Errorf("update: %s", dns.RcodeToString[r.Rcode])
	}
	return fmt.Sprintf("a dynamic update (RFC 2136, signed with %s; nsupdate is not installed)", p.key.name), nil
}

// writeSecondaryConfig writes the secondary's xdpns.yaml (and its key file
// and file zone) into the demo directory.
func (d *demoRun) writeSecondaryConfig(port int, primary netip.AddrPort, signed bool) (string, error) {
	net, err := demoZones.ReadFile("demo/example.net.zone")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "example.net.zone"), net, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "demo-xfr.key"), []byte(d.xfrKey.secret+"\n"), 0o600); err != nil {
		return "", err
	}
	keyLine := ""
	if signed {
		keyLine = "\n        key: " + d.xfrKey.name
	}
	text := fmt.Sprintf(`# xdpns as a secondary of the demo's primary (written by xdpns demo).
server:
  listen: ["127.0.0.1:%d"]
  udp-sockets: 1
  identity: %s
  version: %q
log:
  level: warn
xfr:
  state-dir: state           # zones and timers survive a restart here
keys:
  - name: %s
    algorithm: %s
    secret-file: demo-xfr.key
zones:
  - name: example.com.
    primaries:
      - address: %s%s
  - name: example.net.
    file: example.net.zone
control:
  socket: control.sock
`, port, demoIdentity, versionString(), d.xfrKey.name, d.xfrKey.algorithm, primary, keyLine)
	path := filepath.Join(d.dir, "xdpns.yaml")
	if d.verbose {
		d.e.printf("xdpns.yaml:\n%s\n", indentText(text))
	}
	return path, os.WriteFile(path, []byte(text), 0o644)
}

func indentText(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

// writeXdpnsPrimary lays out an xdpns primary for both demos in
// dr.dir/primary: the bundled example.com. zone and a configuration serving
// it on 127.0.0.1:port with transfers and NOTIFY (to notifyPort) under the
// demo's key. extra is YAML added after the server section; control is the
// control socket ("" for none).
func (dr *demoRun) writeXdpnsPrimary(port, notifyPort int, extra, control string) (zoneFile, path string, err error) {
	dir := filepath.Join(dr.dir, "primary")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", err
	}
	text, err := demoZones.ReadFile("demo/example.com.zone")
	if err != nil {
		return "", "", err
	}
	zoneFile = filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(zoneFile, text, 0o644); err != nil {
		return "", "", err
	}
	yaml := fmt.Sprintf(`# the demo's primary: xdpns serving a zone file to its secondary
server:
  listen: ["127.0.0.1:%[1]d"]
  udp-sockets: 1
%[6]skeys:
  - {name: %[2]s, algorithm: %[3]s, secret: %[4]q}
zones:
  - name: example.com.
    file: example.com.zone
    allow-transfer: {from: [127.0.0.1/32], keys: [%[2]s]}
    notify: ["127.0.0.1:%[5]d"]
    notify-key: %[2]s
control:
  socket: %[7]q
`, port, dr.xfrKey.name, dr.xfrKey.algorithm, dr.xfrKey.secret, notifyPort, extra, control)
	path = filepath.Join(dir, "xdpns.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return "", "", err
	}
	if dr.verbose {
		dr.e.printf("primary xdpns.yaml:\n%s\n", indentText(yaml))
	}
	return zoneFile, path, nil
}

// xdpnsPrimary is the fallback primary: an in-process xdpns serving
// example.com. from a file, with transfers out to the secondary and NOTIFY
// to it.
type xdpnsPrimary struct {
	d        *daemon
	zoneFile string
}

func (dr *demoRun) startXdpnsPrimary(ctx context.Context, notifyPort int) (demoPrimary, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	zoneFile, path, err := dr.writeXdpnsPrimary(port, notifyPort, "log:\n  level: warn\n", "")
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	d, err := startDaemon(context.Background(), path, cfg, newLogger(dr.e.stderr, cfg.Log), daemonHooks{})
	if err != nil {
		return nil, err
	}
	return &xdpnsPrimary{d: d, zoneFile: zoneFile}, nil
}

func (p *xdpnsPrimary) describe() string {
	return fmt.Sprintf("xdpns (in-process) on %s: example.com. from a zone file;\n           NOTIFY only to the secondary, signed with the transfer key", p.addr())
}

func (p *xdpnsPrimary) addr() netip.AddrPort {
	return netip.MustParseAddrPort(p.d.srv.Addrs()[0])
}

// incremental is false: a zone served from a file has no history of
// differences, so xdpns answers IXFR with the whole zone.
func (p *xdpnsPrimary) incremental() bool { return false }

func (p *xdpnsPrimary) signed() bool { return true }
func (p *xdpnsPrimary) stop()        { p.d.Close() }

func (p *xdpnsPrimary) change(context.Context) (string, error) {
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
	res, err := p.d.reload()
	if err == nil && res.Failed > 0 {
		err = errors.New(strings.Join(res.Errors, "; "))
	}
	if err != nil {
		return "", fmt.Errorf("reload the primary: %w", err)
	}
	return "an edited zone file and a reload (xdpns zone reload)", nil
}

// demoRow is what both demos print for one query: mark, query, transport,
// rcode, answer lines, and what was wrong when it was.
type demoRow struct {
	mark, query, via, rcode, problem string
	lines                            []string
}

func newDemoRow(q demoQuery, resp *dns.Msg, err error) demoRow {
	r := demoRow{mark: "ok", rcode: "-", via: "udp", query: q.name + " " + dns.TypeToString[q.qtype]}
	if err != nil {
		r.lines = []string{"error: " + err.Error()}
	} else {
		r.rcode = dns.RcodeToString[resp.Rcode]
		r.lines = demoLines(resp)
	}
	if r.problem = demoCheck(q, resp, err); r.problem != "" {
		r.mark = "FAIL"
	}
	if q.class == dns.ClassCHAOS {
		r.query = q.name + " CH " + dns.TypeToString[q.qtype]
	}
	if q.tcp {
		r.via = "tcp"
	}
	return r
}

// demoAsk sends every query, prints the table and returns how many answers
// were not as expected.
func demoAsk(ctx context.Context, w io.Writer, addr string, qs []demoQuery) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tQUERY\tVIA\tSHOWS\tRCODE\tANSWER")
	for _, q := range qs {
		resp, err := demoExchange(ctx, addr, q)
		row := newDemoRow(q, resp, err)
		if row.problem != "" {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.mark, row.query, row.via, q.note, row.rcode, row.lines[0])
		for _, l := range row.lines[1:] {
			fmt.Fprintf(tw, "\t\t\t\t\t%s\n", l)
		}
		if row.problem != "" {
			fmt.Fprintf(tw, "\t\t\t\t\twant: %s\n", row.problem)
		}
	}
	tw.Flush()
	return failed
}

func demoExchange(ctx context.Context, addr string, q demoQuery) (*dns.Msg, error) {
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
	resp, _, err := c.ExchangeContext(ctx, m, addr)
	return resp, err
}

// demoLines is what the table shows of a response: the answer section, or
// when it is empty the authority and additional sections.
func demoLines(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, shortRR(rr))
	}
	if len(out) == 0 {
		for _, rr := range m.Ns {
			out = append(out, "authority: "+shortRR(rr))
		}
		for _, rr := range m.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				out = append(out, "additional: "+shortRR(rr))
			}
		}
	}
	if len(out) == 0 {
		out = []string{"-"}
	}
	return out
}

// shortRR writes rr as "OWNER TYPE RDATA".
func shortRR(rr dns.RR) string {
	h := rr.Header()
	rdata := strings.TrimPrefix(rr.String(), h.String())
	return h.Name + " " + dns.TypeToString[h.Rrtype] + " " + rdata
}

// demoCheck returns what was expected when resp is not the answer q
// expects, or "".
func demoCheck(q demoQuery, resp *dns.Msg, err error) string {
	want := func() string {
		s := fmt.Sprintf("rcode %s, aa=%t", dns.RcodeToString[q.rcode], q.aa)
		if len(q.answer) > 0 {
			s += ", answer " + strings.Join(q.answer, "; ")
		}
		if q.ns != nil {
			s += ", authority " + strings.Join(q.ns, "; ")
		}
		return s
	}
	if err != nil {
		return want()
	}
	var answer, ns []string
	for _, rr := range resp.Answer {
		answer = append(answer, shortRR(rr))
	}
	for _, rr := range resp.Ns {
		ns = append(ns, shortRR(rr))
	}
	if resp.Rcode != q.rcode || resp.Authoritative != q.aa || !slices.Equal(answer, q.answer) ||
		(q.ns != nil && !slices.Equal(ns, q.ns)) {
		return want()
	}
	return ""
}
