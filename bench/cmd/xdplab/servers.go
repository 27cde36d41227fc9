package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/bench/internal/lab"
	"github.com/xdpns/xdpns/loader"
)

// kind is a server under test.
type kind struct {
	Name string
	// XDP is the mode asked for ("native", "generic"), "" for none.
	XDP  string
	Knot bool
	// About says how it runs, for the report.
	About string
}

var kinds = []kind{
	{Name: "xdpns-native", XDP: "native", About: "xdpns, XDP in the veth driver (native), XDP_TX; misses to the Go server"},
	{Name: "xdpns-generic", XDP: "generic", About: "xdpns, XDP after the skb is built (generic)"},
	{Name: "xdpns-user", About: "xdpns serve without XDP: the Go UDP server (compiled answers first)"},
	{Name: "knot-xdp", XDP: "native", Knot: true, About: "knotd in XDP mode (`xdp: listen: IF@53`, `udp: on`): AF_XDP sockets, answers built in userspace"},
}

func kindByName(name string) (kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return kind{}, false
}

// setup is what every server is started with.
type setup struct {
	dir      string // scratch directory (absolute)
	zoneFile string // absolute
	origin   string
	cpu      int    // the server is pinned there; -1: not pinned
	xdpnsBin string // absolute
	attach   string // who attaches xdpns's XDP: auto, daemon, harness
}

// server is a running server in a lab of its own.
type server struct {
	kind
	v    *lab.Veth
	proc *lab.Proc
	// AttachedBy says who attached XDP: "xdpns serve" (the daemon's xdp
	// section), "harness" (this program's serve-inproc: the loader wired
	// in-process), "knotd".
	AttachedBy string
	// Mode is the XDP mode the kernel reports on the server end.
	Mode    string
	stats   *ebpf.Map // xdpns's verdict counters; nil for others
	Version string
}

// stop stops the server and removes its lab.
func (s *server) stop() error {
	if s.proc != nil {
		s.proc.Stop()
	}
	if s.stats != nil {
		s.stats.Close()
	}
	if s.v != nil {
		return s.v.Close()
	}
	return nil
}

// startServer builds a lab for k (interface prefix from idx) and starts k
// in it, ready to answer, with XDP attached as k asks.
func startServer(ctx context.Context, k kind, idx int, s setup) (srv *server, err error) {
	v, err := lab.NewVeth(fmt.Sprintf("xl%d", idx))
	if err != nil {
		return nil, fmt.Errorf("%s: lab: %w", k.Name, err)
	}
	srv = &server{kind: k, v: v}
	defer func() {
		if err != nil {
			srv.stop()
			srv = nil
		}
	}()
	dir := filepath.Join(s.dir, k.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return srv, err
	}
	if k.Knot {
		srv.Version = knotVersion()
		srv.proc, err = startKnot(s, v, dir)
		if err != nil {
			return srv, err
		}
		if err := waitReady(ctx, srv, 60*time.Second); err != nil {
			return srv, err
		}
		srv.AttachedBy = "knotd"
		return srv, srv.checkXDP(ctx, 10*time.Second)
	}

	srv.Version = xdpnsVersion(s.xdpnsBin)
	if k.XDP == "" || s.attach != "harness" {
		srv.proc, err = startXdpns(s, v, dir, k.XDP)
		if err != nil {
			return srv, err
		}
		if err := waitReady(ctx, srv, 60*time.Second); err != nil {
			return srv, err
		}
		if k.XDP == "" {
			return srv, nil
		}
		srv.AttachedBy = "xdpns serve"
		err := srv.checkXDP(ctx, 10*time.Second)
		if err == nil || s.attach == "daemon" || ctx.Err() != nil {
			return srv, err
		}
		logf("%s: %v; attaching from the harness instead (serve-inproc: loader and Go server in one process)", k.Name, err)
		srv.proc.Stop()
	}
	srv.proc, err = startInproc(s, v, dir, k.XDP)
	if err != nil {
		return srv, err
	}
	if err := waitReady(ctx, srv, 60*time.Second); err != nil {
		return srv, err
	}
	srv.AttachedBy = "harness"
	return srv, srv.checkXDP(ctx, 10*time.Second)
}

// checkXDP waits until a program is attached to the server end in the mode
// k asks for, and opens xdpns's counters.
func (s *server) checkXDP(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		id, mode, err := s.v.ServerXDP()
		if err != nil {
			return err
		}
		if id != 0 {
			s.Mode = mode
			if mode != s.XDP {
				return fmt.Errorf("%s: XDP attached in %s mode, want %s", s.Name, mode, s.XDP)
			}
			if s.Knot {
				return nil
			}
			s.stats, err = statsMap(id)
			return err
		}
		if err := s.proc.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no XDP program on %s after %v", s.v.ServerIf, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// statsMap opens the "stats" map of XDP program id (xdpns's per-CPU
// verdict counters, bpf/stats.h).
func statsMap(id uint32) (*ebpf.Map, error) {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return nil, fmt.Errorf("XDP program %d: %w", id, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return nil, err
	}
	ids, _ := info.MapIDs()
	for _, mid := range ids {
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			continue
		}
		if mi, err := m.Info(); err == nil && mi.Name == "stats" && mi.Type == ebpf.PerCPUArray {
			return m, nil
		}
		m.Close()
	}
	return nil, fmt.Errorf("XDP program %d (%s) has no stats map: not xdpns's", id, info.Name)
}

// xdpStats reads xdpns's counters summed over CPUs (nil when there are
// none). A binary older or newer than this program may count fewer or
// more reasons: only the counters both know are read.
func (s *server) xdpStats() (loader.Stats, error) {
	if s.stats == nil {
		return nil, nil
	}
	out := make(loader.Stats, min(len(loader.StatNames()), int(s.stats.MaxEntries())))
	var per []uint64
	for i := range out {
		if err := s.stats.Lookup(uint32(i), &per); err != nil {
			return nil, err
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}

// waitReady polls the zone's SOA from the client namespace until the
// server answers it authoritatively.
func waitReady(ctx context.Context, s *server, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err := s.proc.Exited(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var r *dns.Msg
		r, err = ask(s.v, origin, dns.TypeSOA, 200*time.Millisecond)
		if err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("SOA: %s", dns.RcodeToString[r.Rcode])
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", s.Name, timeout, err)
}

// ask sends one query from the client namespace to the server's IPv4
// address over UDP.
func ask(v *lab.Veth, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	var c net.Conn
	err := v.InClient(func() error {
		var err error
		c, err = net.Dial("udp4", net.JoinHostPort(v.Server4.String(), "53"))
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	co := &dns.Conn{Conn: c}
	co.SetDeadline(time.Now().Add(timeout))
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.RecursionDesired = false
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

// listen is what every server listens on: the server end's addresses.
func listen(v *lab.Veth) []string {
	return []string{net.JoinHostPort(v.Server4.String(), "53"), net.JoinHostPort(v.Server6.String(), "53")}
}

// startXdpns runs `xdpns serve` in the server namespace, with an xdp
// section when mode is not "".
func startXdpns(s setup, v *lab.Veth, dir, mode string) (*lab.Proc, error) {
	l := listen(v)
	conf := fmt.Sprintf(`server:
  listen: ["%s", "%s"]
log:
  level: info
xfr:
  state-dir: ""
zones:
  - name: %s
    file: %s
control:
  socket: %s
`, l[0], l[1], s.origin, s.zoneFile, filepath.Join(dir, "control.sock"))
	if mode != "" {
		conf += fmt.Sprintf("xdp:\n  interfaces: [%s]\n  mode: %s\n", v.ServerIf, mode)
	}
	path := filepath.Join(dir, "xdpns.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return lab.Launch("xdpns", dir, nil, lab.Pinned(s.cpu, v.ServerArgv(s.xdpnsBin, "serve", "-c", path)))
}

// startInproc runs this program's serve-inproc in the server namespace.
func startInproc(s setup, v *lab.Veth, dir, mode string) (*lab.Proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := v.ServerArgv(self, inprocCommand, "-zone", s.zoneFile, "-origin", s.origin,
		"-listen", strings.Join(listen(v), ","), "-iface", v.ServerIf, "-mode", mode)
	return lab.Launch("xdpns-inproc", dir, nil, lab.Pinned(s.cpu, argv))
}

// startKnot runs knotd in XDP mode in the server namespace: XDP workers on
// the server end for UDP, the usual sockets beside them (TCP, and what
// XDP passes).
func startKnot(s setup, v *lab.Veth, dir string) (*lab.Proc, error) {
	// knotd chdirs to /: every path is absolute. One UDP, TCP and
	// background worker (the XDP worker comes on top: one per queue of
	// the interface, one here); no journal; the zone file never written
	// back; route-check off (its default: answers go back to the query's
	// source MAC).
	conf := fmt.Sprintf(`server:
    rundir: "%[1]s"
    listen: [ %[2]s@53, %[3]s@53 ]
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
xdp:
    listen: %[4]s@53
    udp: on
    tcp: off
control:
    listen: "%[1]s/knot.sock"
database:
    storage: "%[1]s"
log:
  - target: stderr
    any: info
zone:
  - domain: %[5]s
    storage: "%[1]s"
    file: "%[6]s"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    semantic-checks: off
`, dir, v.Server4, v.Server6, v.ServerIf, s.origin, s.zoneFile)
	path := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := lab.LookSbin("knotd")
	if err != nil {
		return nil, err
	}
	return lab.Launch("knot", dir, nil, lab.Pinned(s.cpu, v.ServerArgv(bin, "-c", path)))
}

func xdpnsVersion(bin string) string {
	v := firstLine(exec.Command(bin, "version"))
	if f := strings.Fields(v); len(f) > 1 {
		v = "xdpns " + f[1]
	}
	// A binary built from the tree says "dev": name the commit, and say
	// when the tree had changes not committed.
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		v += " @" + strings.TrimSpace(string(out))
	}
	return v
}

func knotVersion() string {
	bin, err := lab.LookSbin("knotd")
	if err != nil {
		return "Knot ?"
	}
	v := firstLine(exec.Command(bin, "--version")) // knotd (Knot DNS), version 3.2.6
	if _, after, ok := strings.Cut(v, "version "); ok {
		return "Knot " + after
	}
	return v
}

func firstLine(cmd *exec.Cmd) string {
	out, _ := cmd.CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
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

var errWrong = errors.New("wrong answer")
