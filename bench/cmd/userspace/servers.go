package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/xdpns/xdpns/bench/internal/lab"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/zone"
)

// setup is what every server is started with.
type setup struct {
	dir      string // scratch directory (absolute)
	zoneFile string // absolute
	origin   string
	cpu      int
	xdpnsBin string // "" = this program in -serve-xdpns mode
}

func startXdpns(s setup) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, "xdpns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var argv []string
	if s.xdpnsBin != "" {
		conf := filepath.Join(dir, "xdpns.yaml")
		text := fmt.Sprintf("server:\n  listen: [\"127.0.0.1:%d\"]\nlog:\n  level: warn\nzones:\n  - name: %s\n    file: %s\n",
			port, s.origin, s.zoneFile)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		argv = []string{s.xdpnsBin, "serve", "-c", conf}
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = []string{self, "-serve-xdpns", s.zoneFile, "-origin", s.origin, "-listen", fmt.Sprintf("127.0.0.1:%d", port)}
	}
	p, err := lab.Launch("xdpns", dir, nil, lab.Pinned(s.cpu, argv))
	if p != nil {
		p.Port = port
	}
	return p, err
}

func startNSD(s setup) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, "nsd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// One server process (the machine has two CPUs: one for the server,
	// one for dnsperf), rate limiting off, no database, nothing outside dir.
	conf := fmt.Sprintf(`server:
	ip-address: 127.0.0.1@%d
	port: %d
	do-ip6: no
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "%[3]s"
	database: ""
	zonelistfile: "%[3]s/zone.list"
	xfrdfile: "%[3]s/xfrd.state"
	xfrdir: "%[3]s"
	pidfile: "%[3]s/nsd.pid"
	verbosity: 1
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
remote-control:
	control-enable: no
zone:
	name: %s
	zonefile: %s
`, port, port, dir, s.origin, s.zoneFile)
	path := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("nsd")
	if err != nil {
		return nil, err
	}
	p, err := lab.Launch("nsd", dir, nil, lab.Pinned(s.cpu, []string{bin, "-d", "-c", path}))
	if p != nil {
		p.Port = port
	}
	return p, err
}

func startKnot(s setup) (*lab.Proc, error) {
	port, err := lab.FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, "knot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// knotd chdirs to /: every path is absolute. One UDP worker, like the
	// others; no journal; the zone file is never written back.
	conf := fmt.Sprintf(`server:
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
    any: notice
zone:
  - domain: %[3]s
    storage: "%[1]s"
    file: "%[4]s"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    semantic-checks: off
`, dir, port, s.origin, s.zoneFile)
	path := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("knotd")
	if err != nil {
		return nil, err
	}
	p, err := lab.Launch("knot", dir, nil, lab.Pinned(s.cpu, []string{bin, "-c", path}))
	if p != nil {
		p.Port = port
	}
	return p, err
}

// serveXdpns is the -serve-xdpns mode: the userspace server in this
// process, until SIGTERM or SIGINT.
func serveXdpns(zoneFile, origin, listen string) error {
	z, _, err := zone.Load(zoneFile, origin, zone.LoadOptions{})
	if err != nil {
		return err
	}
	r := responder.New(responder.Config{})
	r.SetZones([]*zone.Zone{z})
	srv := server.New(server.Config{Listen: []string{listen}}, r, nil)
	if err := srv.Start(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return srv.Close()
}
