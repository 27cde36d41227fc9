package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// Every server gets the same fleet of zone files, logs at warning level or
// near it (10,000 "zone loaded" lines cost time too), and listens on one
// loopback port.

func startXdpnsFiles(o options, f *fleet, dir string) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  listen: [\"127.0.0.1:%d\"]\nlog:\n  level: warn\nzones:\n", port)
	for i := range f.zones {
		fmt.Fprintf(&b, "  - name: %s\n    file: %s\n", f.origin(i), f.file(i))
	}
	return launchXdpns(o, dir, port, b.String())
}

// startXdpnsSecondary runs xdpns as the secondary of every zone with its
// state directory in dir. With prepare, an xdpns primary serving the zone
// files runs beside it (on the other CPU) until every zone is transferred;
// the measured restart then has no primary at all: every zone must be
// served from the state directory.
func startXdpnsSecondary(o options, f *fleet, dir string, prepare bool) (*lab.Proc, error) {
	primaryPort := 0
	if prepare {
		pdir := filepath.Join(dir, "primary")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return nil, err
		}
		port, err := lab.FreePort()
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "server:\n  listen: [\"127.0.0.1:%d\"]\nlog:\n  level: warn\nzones:\n", port)
		for i := range f.zones {
			fmt.Fprintf(&b, "  - name: %s\n    file: %s\n    allow-transfer: {from: [127.0.0.0/8]}\n", f.origin(i), f.file(i))
		}
		o2 := o
		o2.cpu = otherCPU(o.cpu)
		pp, err := launchXdpns(o2, pdir, port, b.String())
		if err != nil {
			return nil, err
		}
		f.primary = pp
		primaryPort = port
	} else if f.primary != nil {
		f.primary.Stop()
		f.primary = nil
	}
	if primaryPort == 0 {
		primaryPort = 9 // discard: nothing listens; the zones come from disk
	}
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-state")
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  listen: [\"127.0.0.1:%d\"]\nlog:\n  level: warn\nxfr:\n  state-dir: %s\nzones:\n", port, state)
	for i := range f.zones {
		fmt.Fprintf(&b, "  - name: %s\n    primaries: [{address: \"127.0.0.1:%d\"}]\n", f.origin(i), primaryPort)
	}
	sdir := filepath.Join(dir, "secondary")
	if prepare {
		sdir = filepath.Join(dir, "secondary-prepare")
	}
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return nil, err
	}
	return launchXdpns(o, sdir, port, b.String())
}

func otherCPU(cpu int) int {
	if cpu < 0 {
		return -1
	}
	return 1 - cpu%2
}

func launchXdpns(o options, dir string, port int, conf string) (*lab.Proc, error) {
	path := filepath.Join(dir, "xdpns.yaml")
	// A metrics endpoint, read once every zone answers: it tells when
	// every zone's answers are compiled too (xdpns_zone_compiled).
	mport, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	conf += fmt.Sprintf("metrics:\n  listen: 127.0.0.1:%d\n", mport)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	args := []string{o.xdpnsBin, "serve", "-c", path}
	if o.profile != "" {
		// One pair per run directory (secondary, secondary-prepare, ...),
		// the last round's kept.
		base := filepath.Join(o.profile, filepath.Base(filepath.Dir(dir))+"-"+filepath.Base(dir))
		args = append(args, "-cpuprofile", base+".cpu", "-memprofile", base+".heap")
	}
	p, err := lab.Launch("xdpns", dir, nil, lab.Pinned(o.cpu, args))
	if p != nil {
		p.Port = port
		metricsPorts[p] = mport
	}
	return p, err
}

func startKnot(o options, f *fleet, dir string) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	// knotd chdirs to /: every path is absolute. The zone files are never
	// written back; no journal; semantic checks off, as NSD and BIND below
	// skip theirs where they can.
	var b strings.Builder
	fmt.Fprintf(&b, `server:
    rundir: "%[1]s"
    listen: 127.0.0.1@%[2]d
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "%[1]s/knot.sock"
database:
    storage: "%[1]s"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "%[1]s"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    semantic-checks: off
zone:
`, dir, port)
	for i := range f.zones {
		fmt.Fprintf(&b, "  - domain: %s\n    file: \"%s\"\n", f.origin(i), f.file(i))
	}
	path := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("knotd")
	if err != nil {
		return nil, err
	}
	p, err := lab.Launch("knot", dir, nil, lab.Pinned(o.cpu, []string{bin, "-c", path}))
	if p != nil {
		p.Port = port
	}
	return p, err
}

func startNSD(o options, f *fleet, dir string) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
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
	verbosity: 0
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
remote-control:
	control-enable: no
`, port, dir)
	for i := range f.zones {
		fmt.Fprintf(&b, "zone:\n\tname: %s\n\tzonefile: %s\n", f.origin(i), f.file(i))
	}
	path := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("nsd")
	if err != nil {
		return nil, err
	}
	p, err := lab.Launch("nsd", dir, nil, lab.Pinned(o.cpu, []string{bin, "-d", "-c", path}))
	if p != nil {
		p.Port = port
	}
	return p, err
}

func startBind(o options, f *fleet, dir string) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	// No recursion, no NOTIFY, no control channel, never a query to an
	// address but 127.0.0.1 (DESIGN.md); checks off as for the others.
	var b strings.Builder
	fmt.Fprintf(&b, `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	notify no;
	recursion no;
	dnssec-validation no;
	minimal-responses yes;
	check-integrity no;
	check-mx ignore;
	check-names primary ignore;
	rate-limit { responses-per-second 0; };
};
controls { };
server 0.0.0.0/0 { bogus yes; };
server ::/0 { bogus yes; };
server 127.0.0.1/32 { bogus no; };
`, dir, port)
	for i := range f.zones {
		fmt.Fprintf(&b, "zone \"%s\" { type primary; file \"%s\"; };\n", f.origin(i), f.file(i))
	}
	path := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("named")
	if err != nil {
		return nil, err
	}
	p, err := lab.Launch("named", dir, nil, lab.Pinned(o.cpu, []string{bin, "-g", "-4", "-n", "1", "-c", path}))
	if p != nil {
		p.Port = port
	}
	return p, err
}

// metricsPorts is the metrics port of each xdpns started (one goroutine
// starts and measures servers, so no lock).
var metricsPorts = map[*lab.Proc]int{}

// waitCompiled waits until every zone of an xdpns server has compiled
// answers (xdpns_zone_compiled 1), polling its metrics every 200 ms; false
// when p is not an xdpns or the wait times out.
func waitCompiled(ctx context.Context, p *lab.Proc, zones int, timeout time.Duration) bool {
	port, ok := metricsPorts[p]
	if !ok {
		return false
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	end := time.Now().Add(timeout)
	for time.Now().Before(end) && ctx.Err() == nil {
		if compiledZones(url) >= zones {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func compiledZones(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if bytes.HasPrefix(l, []byte("xdpns_zone_compiled{")) && bytes.HasSuffix(l, []byte(" 1")) {
			n++
		}
	}
	return n
}
