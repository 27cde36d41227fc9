package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// setup is what every secondary is started with.
type setup struct {
	dir      string // the secondary's own directory (absolute), made by the caller
	port     int    // where it serves, on 127.0.0.1
	primary  int    // the primary's port on 127.0.0.1
	cpu      int    // pinned there; -1: not pinned
	xdpnsBin string // absolute
	xdpnsLog string // xdpns log level
}

// A secondary the benchmark knows how to run.
type secondary struct {
	start   func(setup) (*lab.Proc, error)
	version func(setup) string
	// settings says, for the report, what was set to make it fair.
	settings string
}

var secondaries = map[string]secondary{
	"xdpns": {startXdpns, xdpnsVersion,
		"`xdpns serve`, state directory in the scratch directory (snapshot after the AXFR, each IXFR appended to the journal and fsynced), one UDP socket"},
	"knot": {startKnot, knotVersion,
		"knotd, journal in the scratch directory (`journal-content: changes`), `zonefile-sync: -1` (the zone file is not rewritten after each change), one UDP and one TCP worker"},
	"nsd": {startNSD, nsdVersion,
		"nsd -d, `xfrd-reload-timeout: 0` (reload at once after each transfer instead of batching them for 1 s), no database, `server-count: 1`, RRL off"},
}

func startXdpns(s setup) (*lab.Proc, error) {
	conf := fmt.Sprintf(`server:
  listen: ["127.0.0.1:%d"]
log:
  level: %s
xfr:
  state-dir: %s
zones:
  - name: %s
    primaries:
      - address: "127.0.0.1:%d"
control:
  socket: %s
`, s.port, s.xdpnsLog, filepath.Join(s.dir, "state"), origin, s.primary, filepath.Join(s.dir, "control.sock"))
	path := filepath.Join(s.dir, "xdpns.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := lab.Launch("xdpns", s.dir, nil, lab.Pinned(s.cpu, []string{s.xdpnsBin, "serve", "-c", path}))
	if p != nil {
		p.Port = s.port
	}
	return p, err
}

func startKnot(s setup) (*lab.Proc, error) {
	bin, err := lab.LookSbin("knotd")
	if err != nil {
		return nil, err
	}
	// knotd does not create the database directory.
	if err := os.MkdirAll(filepath.Join(s.dir, "db"), 0o755); err != nil {
		return nil, err
	}
	// knotd chdirs to /: every path is absolute. The zone file does not
	// exist, so knotd transfers the zone at start.
	conf := fmt.Sprintf(`server:
    rundir: "%[1]s"
    pidfile: "%[1]s/knot.pid"
    listen: 127.0.0.1@%[2]d
    udp-workers: 1
    tcp-workers: 1
control:
    listen: "%[1]s/knot.sock"
database:
    storage: "%[1]s/db"
log:
  - target: stderr
    any: info
remote:
  - id: primary
    address: 127.0.0.1@%[3]d
acl:
  - id: notify-from-primary
    address: 127.0.0.1
    action: notify
zone:
  - domain: %[4]s
    storage: "%[1]s"
    file: "%[1]s/zone.db"
    master: primary
    acl: notify-from-primary
    journal-content: changes
    zonefile-sync: -1
    semantic-checks: off
`, s.dir, s.port, s.primary, origin)
	path := filepath.Join(s.dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := lab.Launch("knot", s.dir, nil, lab.Pinned(s.cpu, []string{bin, "-c", path}))
	if p != nil {
		p.Port = s.port
	}
	return p, err
}

func startNSD(s setup) (*lab.Proc, error) {
	bin, err := lab.LookSbin("nsd")
	if err != nil {
		return nil, err
	}
	// One server process, RRL off, no database (NSD then keeps the zone in
	// memory and writes the zone file hourly), nothing outside dir.
	// xfrd-reload-timeout 0: xfrd asks for a reload as soon as a transfer
	// is in, instead of at most once a second (the default 1).
	conf := fmt.Sprintf(`server:
	ip-address: 127.0.0.1@%[2]d
	port: %[2]d
	do-ip6: no
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "%[1]s"
	database: ""
	zonelistfile: "%[1]s/zone.list"
	xfrdfile: "%[1]s/xfrd.state"
	xfrdir: "%[1]s"
	pidfile: "%[1]s/nsd.pid"
	verbosity: 2
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
	xfrd-reload-timeout: 0
remote-control:
	control-enable: no
zone:
	name: %[3]s
	zonefile: "%[1]s/zone.db"
	allow-notify: 127.0.0.1 NOKEY
	request-xfr: 127.0.0.1@%[4]d NOKEY
`, s.dir, s.port, origin, s.primary)
	path := filepath.Join(s.dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := lab.Launch("nsd", s.dir, nil, lab.Pinned(s.cpu, []string{bin, "-d", "-c", path}))
	if p != nil {
		p.Port = s.port
	}
	return p, err
}

func xdpnsVersion(s setup) string {
	v := lab.FirstLine(exec.Command(s.xdpnsBin, "version"))
	if f := strings.Fields(v); len(f) > 1 {
		v = "xdpns " + f[1]
	}
	// A binary built from the tree says "dev": name the commit.
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		v += " @" + strings.TrimSpace(string(out))
	}
	return v
}

// buildXdpns builds cmd/xdpns from the tree this program belongs to into
// dir and returns the binary's path.
func buildXdpns(ctx context.Context, dir string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "bin", "xdpns")
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, "github.com/xdpns/xdpns/cmd/xdpns")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build xdpns (or pass -xdpns-bin): %v\n%s", err, b)
	}
	return out, nil
}

func knotVersion(setup) string { return lab.KnotVersion() }
func nsdVersion(setup) string  { return lab.NSDVersion() }
