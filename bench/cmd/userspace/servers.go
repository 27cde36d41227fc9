package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/zone"
)

// proc is a server under test, running as a child process.
type proc struct {
	name string
	port int
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// pinned prefixes argv with taskset when it is there and cpu >= 0.
func pinned(cpu int, argv []string) []string {
	if cpu < 0 {
		return argv
	}
	if ts, err := exec.LookPath("taskset"); err == nil {
		return append([]string{ts, "-c", strconv.Itoa(cpu)}, argv...)
	}
	return argv
}

// launch starts argv in its own process group, output to dir/name.log.
func launch(name, dir string, env []string, argv []string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM to the server, then SIGKILL to its process group.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitReady polls the server's SOA until it answers authoritatively.
func (p *proc) waitReady(origin string, timeout time.Duration) error {
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s exited: %s", p.name, strings.TrimSpace(string(out)))
		default:
		}
		var r *dns.Msg
		r, _, err = c.Exchange(new(dns.Msg).SetQuestion(origin, dns.TypeSOA), p.addr())
		if err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("SOA: %s", dns.RcodeToString[r.Rcode])
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", p.name, timeout, err)
}

// freePort returns a loopback port free for UDP and TCP, below the
// ephemeral range so dnsperf's own sockets never take it.
func freePort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp4", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no free port")
}

// setup is what every server is started with.
type setup struct {
	dir      string // scratch directory (absolute)
	zoneFile string // absolute
	origin   string
	cpu      int
	xdpnsBin string // "" = this program in -serve-xdpns mode
}

func startXdpns(s setup) (*proc, error) {
	port, err := freePort()
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
	p, err := launch("xdpns", dir, nil, pinned(s.cpu, argv))
	if p != nil {
		p.port = port
	}
	return p, err
}

func startNSD(s setup) (*proc, error) {
	port, err := freePort()
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
	bin, err := lookSbin("nsd")
	if err != nil {
		return nil, err
	}
	p, err := launch("nsd", dir, nil, pinned(s.cpu, []string{bin, "-d", "-c", path}))
	if p != nil {
		p.port = port
	}
	return p, err
}

func startKnot(s setup) (*proc, error) {
	port, err := freePort()
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
	bin, err := lookSbin("knotd")
	if err != nil {
		return nil, err
	}
	p, err := launch("knot", dir, nil, pinned(s.cpu, []string{bin, "-c", path}))
	if p != nil {
		p.port = port
	}
	return p, err
}

func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (run .ci/deps.sh as root)", name)
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
