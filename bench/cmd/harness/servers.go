package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
	// XDP is the mode the server's XDP program must be attached in
	// ("native", "generic"), "" for none.
	XDP   string
	start func(s *server, g *group) error
	// About says how it runs, for the report.
	About string
}

var kinds = []kind{
	{"xdpns-native", "native", startXdpns, "xdpns serve, `xdp: {mode: native}`: XDP in the veth driver answers with XDP_TX, misses go to the Go server"},
	{"xdpns-generic", "generic", startXdpns, "xdpns serve, `xdp: {mode: generic}`: XDP after the skb is built"},
	{"xdpns-user", "", startXdpns, "xdpns serve without XDP: the Go UDP server (compiled answers first)"},
	{"knot-xdp", "native", startKnot, "knotd, `xdp: listen: IF@53` (AF_XDP, answers built in userspace), one UDP/TCP/background worker"},
	{"knot-udp", "", startKnot, "knotd, plain UDP, one UDP/TCP/background worker"},
	{"nsd", "", startNSD, "nsd -d, server-count 1, RRL off"},
	{"bind", "", startBind, "named -g -n 1, recursion no, minimal-responses yes"},
}

func serverNames() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.Name)
	}
	return out
}

func kindByName(name string) (kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return kind{}, false
}

// primaryPort is where the updates scenario's primary (named) listens on
// 127.0.0.1 inside each server namespace.
const primaryPort = 5300

// server is a running server in a lab of its own.
type server struct {
	kind
	idx      int
	v        *lab.Veth
	dir      string
	cpu      int
	xdpnsBin string
	proc     *lab.Proc
	primary  *lab.Proc // the updates scenario's primary
	stats    *ebpf.Map // xdpns's verdict counters; nil for others
	rrlMap   *ebpf.Map // xdpns's XDP limiter counters; nil for others
	progID   uint32
	Version  string
	// ok: the answers were checked and were right; only then do runs count.
	ok    bool
	setup serverSetup
}

// serverSetup is what starting it cost.
type serverSetup struct {
	load     time.Duration
	rss      int64
	mapBytes int64
	err      error
}

// stop stops the server (and its primary) and removes its lab.
func (s *server) stop() error {
	if s.proc != nil {
		s.proc.Stop()
	}
	if s.primary != nil {
		s.primary.Stop()
	}
	if s.stats != nil {
		s.stats.Close()
		s.stats = nil
	}
	if s.rrlMap != nil {
		s.rrlMap.Close()
		s.rrlMap = nil
	}
	if s.v != nil {
		err := s.v.Close()
		s.v = nil
		return err
	}
	return nil
}

// listenAddrs is where a server answers: the server end's addresses, and
// 127.0.0.1 for NOTIFY from the primary when it is a secondary.
func listenAddrs(v *lab.Veth, g *group) []string {
	out := []string{net.JoinHostPort(v.Server4.String(), "53"), net.JoinHostPort(v.Server6.String(), "53")}
	if g.secondary {
		out = append(out, "127.0.0.1:53")
	}
	return out
}

// startServer builds a lab for k and starts k in it for group g, ready to
// answer, with XDP attached as k asks; it records the load time, the
// memory and the map memory.
func startServer(ctx context.Context, k kind, idx int, o *options, g *group) (srv *server, err error) {
	v, err := lab.NewVeth(fmt.Sprintf("hn%d", idx))
	if err != nil {
		return nil, fmt.Errorf("%s: lab: %w", k.Name, err)
	}
	// A large zone's server loads on every CPU (issue 11 times loads on
	// two), unless -pin-load; it answers the load runs on serverCPU alone.
	// The others start there: servers size their threads by the CPUs they
	// start on, and the small scenarios' figures were always of one.
	loadCPU := o.serverCPU
	if !o.pinLoad && g.names >= xdpnsPublishFirst {
		loadCPU = -1
	}
	srv = &server{kind: k, idx: idx, v: v, cpu: loadCPU, xdpnsBin: o.xdpnsBin,
		dir: filepath.Join(o.scratch, g.name, k.Name)}
	defer func() {
		if err != nil {
			srv.stop()
			srv = nil
		}
	}()
	if err := os.MkdirAll(srv.dir, 0o755); err != nil {
		return srv, err
	}
	if g.rrl {
		// rrl-flood's two client networks, each a /24 of its own.
		for _, a := range []netip.Addr{floodSrc, quietSrc} {
			if err := v.AddClientAddr(a); err != nil {
				return srv, fmt.Errorf("%s: lab: %w", k.Name, err)
			}
		}
	}
	if g.secondary {
		if srv.primary, err = startPrimary(srv, g, o.clientCPU); err != nil {
			return srv, err
		}
		if err := waitSOA(ctx, srv.primary, func() (*dns.Msg, error) {
			return askIn(v.InServer, "127.0.0.1:"+strconv.Itoa(primaryPort), origin, dns.TypeSOA, false)
		}, 60*time.Second); err != nil {
			return srv, fmt.Errorf("%s: primary: %w", k.Name, err)
		}
	}
	t0 := time.Now()
	if err := k.start(srv, g); err != nil {
		return srv, fmt.Errorf("%s: %w", k.Name, err)
	}
	// Ready: the zone's SOA answered authoritatively, the last name
	// answered, and XDP attached.
	if err := waitSOA(ctx, srv.proc, func() (*dns.Msg, error) {
		return askIn(v.InClient, net.JoinHostPort(v.Server4.String(), "53"), origin, dns.TypeSOA, false)
	}, 10*time.Minute); err != nil {
		return srv, err
	}
	if k.XDP != "" {
		if err := srv.checkXDP(ctx, 60*time.Second+time.Duration(g.names/10000)*time.Second); err != nil {
			return srv, err
		}
	}
	// xdpns answers a large zone from its engine as soon as it is parsed
	// and compiles it meanwhile: ready (and loaded, for the figures) once
	// the compiled answers serve, in Go and in XDP.
	if strings.HasPrefix(k.Name, "xdpns") && g.names >= xdpnsPublishFirst {
		if err := waitLog(ctx, srv, `msg="answers compiled"`, 10*time.Minute); err != nil {
			return srv, err
		}
		if k.XDP != "" {
			if err := waitXDPEntries(ctx, srv, g.names, 2*time.Minute); err != nil {
				return srv, err
			}
		}
	}
	srv.setup.load = time.Since(t0)
	if err := lab.PinTree(srv.proc.Pid(), o.serverCPU); err != nil {
		return srv, fmt.Errorf("%s: %w", k.Name, err)
	}
	srv.cpu = o.serverCPU
	if g.names >= xdpnsPublishFirst {
		// Resident memory once settled, for every server alike: xdpns
		// hands what a bulk load freed back to the kernel soon after
		// compiling (a full collection: seconds for a 1M-name zone on one
		// CPU); a reading at the instant of readiness shows the
		// load's garbage, not what the server keeps.
		select {
		case <-ctx.Done():
			return srv, ctx.Err()
		case <-time.After(rssSettle):
		}
	}
	srv.setup.rss = lab.TreeMemory(srv.proc.Pid()).RSS
	if srv.stats != nil {
		srv.setup.mapBytes = progMapBytes(srv.progID)
	}
	return srv, nil
}

// rssSettle is how long after a large zone is ready its server's memory is
// read.
const rssSettle = 8 * time.Second

// checkXDP waits until a program is attached to the server end in the mode
// the kind asks for, and opens xdpns's counters.
func (s *server) checkXDP(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		id, mode, err := s.v.ServerXDP()
		if err != nil {
			return err
		}
		if id != 0 {
			if mode != s.XDP {
				return fmt.Errorf("%s: XDP attached in %s mode, want %s", s.Name, mode, s.XDP)
			}
			if !strings.HasPrefix(s.Name, "xdpns") {
				return nil
			}
			s.progID = id
			if s.stats, err = progMap(id, "stats"); err != nil {
				return err
			}
			s.rrlMap, err = progMap(id, "rrl_stats")
			return err
		}
		if err := s.proc.Exited(); err != nil {
			return err
		}
		// xdpns goes on serving from userspace when XDP fails to start:
		// say why at once instead of waiting out the timeout.
		if line := grepLine(s.proc.Log, "XDP not started"); line != "" {
			return fmt.Errorf("%s: %s", s.Name, line)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no XDP program on %s after %v", s.Name, s.v.ServerIf, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// progMap opens the per-CPU array map called name of XDP program id:
// "stats" (xdpns's verdict counters, bpf/abi.h), "rrl_stats" (its
// limiter's, bpf/rrl.h).
func progMap(id uint32, name string) (*ebpf.Map, error) {
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
		if mi, err := m.Info(); err == nil && mi.Name == name && mi.Type == ebpf.PerCPUArray {
			return m, nil
		}
		m.Close()
	}
	return nil, fmt.Errorf("XDP program %d (%s) has no %s map: not xdpns's", id, info.Name, name)
}

// progMapBytes is the memory the kernel charges for the maps of program
// id (memlock in the maps' fdinfo), inner maps of map-in-maps included.
func progMapBytes(id uint32) int64 {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return 0
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return 0
	}
	ids, _ := info.MapIDs()
	seen := map[ebpf.MapID]bool{}
	var total int64
	var add func(mid ebpf.MapID)
	add = func(mid ebpf.MapID) {
		if seen[mid] {
			return
		}
		seen[mid] = true
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			return
		}
		defer m.Close()
		total += fdinfoMemlock(m.FD())
		if t := m.Type(); t == ebpf.ArrayOfMaps || t == ebpf.HashOfMaps {
			var k []byte
			var inner uint32
			it := m.Iterate()
			for it.Next(&k, &inner) {
				add(ebpf.MapID(inner))
			}
		}
	}
	for _, mid := range ids {
		add(mid)
	}
	return total
}

// grepLine returns the first line of file path containing s, or "".
// xdpnsPublishFirst is cmd/xdpns's publishFirst: zones of this many names
// or more are served before they are compiled.
const xdpnsPublishFirst = 20000

// waitLog waits until the server's log has a line containing what.
func waitLog(ctx context.Context, s *server, what string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; {
		if grepLine(s.proc.Log, what) != "" {
			return nil
		}
		if err := s.proc.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %q in its log after %v", s.Name, what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitXDPEntries waits until xdpns logs an XDP load of at least n entries.
func waitXDPEntries(ctx context.Context, s *server, n int, timeout time.Duration) error {
	re := regexp.MustCompile(`msg="XDP loaded" .*entries=(\d+)`)
	for deadline := time.Now().Add(timeout); ; {
		b, _ := os.ReadFile(s.proc.Log)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if got, _ := strconv.Atoi(m[1]); got >= n {
				return nil
			}
		}
		if err := s.proc.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no XDP load of %d entries in its log after %v", s.Name, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func grepLine(path, s string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func fdinfoMemlock(fd int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "memlock:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// xdpStats reads xdpns's counters summed over CPUs (nil when there are
// none). Only the counters both this program and the binary know are read.
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

// waitSOA polls ask until it gets an authoritative NOERROR SOA answer.
func waitSOA(ctx context.Context, p *lab.Proc, ask func() (*dns.Msg, error), timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err := p.Exited(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var r *dns.Msg
		r, err = ask()
		if err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative && len(r.Answer) > 0 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("SOA: %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", p.Name, timeout, err)
}

// askIn sends one query over UDP from a socket opened in a namespace (in
// is Veth.InClient or InServer) to addr.
func askIn(in func(func() error) error, addr, name string, qtype uint16, do bool) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.RecursionDesired = false
	if do {
		m.SetEdns0(1232, true)
	}
	return exchangeIn(in, addr, m)
}

func exchangeIn(in func(func() error) error, addr string, m *dns.Msg) (*dns.Msg, error) {
	var c net.Conn
	err := in(func() error {
		var err error
		c, err = net.Dial("udp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	co := &dns.Conn{Conn: c, UDPSize: 4096}
	co.SetDeadline(time.Now().Add(time.Second))
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

func (s *server) launch(name string, argv ...string) error {
	argv = s.v.ServerArgv(argv...)
	if s.cpu < 0 {
		argv = lab.OnEveryCPU(argv) // not the harness's CPU, which it would inherit
	} else {
		argv = lab.Pinned(s.cpu, argv)
	}
	p, err := lab.Launch(name, s.dir, nil, argv)
	s.proc = p
	return err
}

// startXdpns runs `xdpns serve` in the server namespace, with an xdp
// section when the kind asks for XDP.
func startXdpns(s *server, g *group) error {
	l := listenAddrs(s.v, g)
	zone := fmt.Sprintf("  - name: %s\n    file: %s\n", origin, g.zoneFile)
	state := `""`
	if g.secondary {
		zone = fmt.Sprintf("  - name: %s\n    primaries:\n      - address: \"127.0.0.1:%d\"\n", origin, primaryPort)
		state = filepath.Join(s.dir, "state")
	}
	rrl := ""
	if g.rrl {
		rrl = rrlConfigXdpns()
	}
	conf := fmt.Sprintf("server:\n  listen: [\"%s\"]\n%slog:\n  level: info\nxfr:\n  state-dir: %s\nzones:\n%scontrol:\n  socket: %s\n",
		strings.Join(l, `", "`), rrl, state, zone, filepath.Join(s.dir, "control.sock"))
	if s.XDP != "" {
		conf += fmt.Sprintf("xdp:\n  interfaces: [%s]\n  mode: %s\n", s.v.ServerIf, s.XDP)
	}
	path := filepath.Join(s.dir, "xdpns.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	s.Version = xdpnsVersion(s.xdpnsBin)
	return s.launch("xdpns", s.xdpnsBin, "serve", "-c", path)
}

// startKnot runs knotd in the server namespace: with `xdp: listen` for
// knot-xdp (its XDP workers beside the usual sockets, which take TCP and
// what XDP passes), plain sockets for knot-udp.
func startKnot(s *server, g *group) error {
	var listen []string
	for _, a := range listenAddrs(s.v, g) {
		h, p, _ := net.SplitHostPort(a)
		listen = append(listen, h+"@"+p)
	}
	conf := fmt.Sprintf(`server:
    rundir: "%[1]s"
    pidfile: "%[1]s/knot.pid"
    listen: [ %[2]s ]
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "%[1]s/knot.sock"
database:
    storage: "%[1]s/db"
log:
  - target: stderr
    any: notice
`, s.dir, strings.Join(listen, ", "))
	if s.XDP != "" {
		conf += fmt.Sprintf("xdp:\n    listen: %s@53\n    udp: on\n    tcp: off\n", s.v.ServerIf)
	}
	if g.rrl {
		module, template := rrlConfigKnot()
		conf += module + template
	}
	if g.secondary {
		conf += fmt.Sprintf(`remote:
  - id: primary
    address: 127.0.0.1@%[3]d
acl:
  - id: notify-from-primary
    address: 127.0.0.1
    action: notify
zone:
  - domain: %[2]s
    storage: "%[1]s"
    file: "%[1]s/zone.db"
    master: primary
    acl: notify-from-primary
    journal-content: changes
    zonefile-sync: -1
    semantic-checks: off
`, s.dir, origin, primaryPort)
	} else {
		conf += fmt.Sprintf(`zone:
  - domain: %s
    storage: "%s"
    file: "%s"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    semantic-checks: off
`, origin, s.dir, g.zoneFile)
	}
	// knotd chdirs to /: every path is absolute.
	path := filepath.Join(s.dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	bin, err := lab.LookSbin("knotd")
	if err != nil {
		return err
	}
	s.Version = lab.KnotVersion()
	return s.launch("knot", bin, "-c", path)
}

// startNSD runs nsd -d in the server namespace.
func startNSD(s *server, g *group) error {
	var ips strings.Builder
	for _, a := range listenAddrs(s.v, g) {
		h, _, _ := net.SplitHostPort(a)
		fmt.Fprintf(&ips, "\tip-address: %s\n", h)
	}
	zone := fmt.Sprintf("\tzonefile: %s\n", g.zoneFile)
	if g.secondary {
		zone = fmt.Sprintf("\tzonefile: \"%s/zone.db\"\n\tallow-notify: 127.0.0.1 NOKEY\n\trequest-xfr: 127.0.0.1@%d NOKEY\n", s.dir, primaryPort)
	}
	conf := fmt.Sprintf(`server:
%[2]s	port: 53
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "%[1]s"
	database: ""
	zonelistfile: "%[1]s/zone.list"
	xfrdfile: "%[1]s/xfrd.state"
	xfrdir: "%[1]s"
	pidfile: "%[1]s/nsd.pid"
	verbosity: 1
%[5]s	xfrd-reload-timeout: 0
remote-control:
	control-enable: no
zone:
	name: %[3]s
%[4]s`, s.dir, ips.String(), origin, zone, rrlConfigNSD(g.rrl))
	path := filepath.Join(s.dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	bin, err := lab.LookSbin("nsd")
	if err != nil {
		return err
	}
	s.Version = lab.NSDVersion()
	return s.launch("nsd", bin, "-d", "-c", path)
}

// bindOptions are what every named here runs with: no recursion, no
// NOTIFY but to configured targets, no rndc port, and never a query to an
// address other than 127.0.0.1 (DESIGN.md).
const bindOptions = `	recursion no;
	dnssec-validation no;
	minimal-responses yes;
	check-integrity no;
	check-mx ignore;
	check-names primary ignore;
	check-names secondary ignore;
`

const bindServers = `controls { };
server 0.0.0.0/0 { bogus yes; };
server ::/0 { bogus yes; };
server 127.0.0.1/32 { bogus no; };
`

// startBind runs named -g -n 1 in the server namespace.
func startBind(s *server, g *group) error {
	var v4, v6 []string
	for _, a := range listenAddrs(s.v, g) {
		h, _, _ := net.SplitHostPort(a)
		if strings.Contains(h, ":") {
			v6 = append(v6, h+";")
		} else {
			v4 = append(v4, h+";")
		}
	}
	zone := fmt.Sprintf("\ttype primary;\n\tfile \"%s\";\n", g.zoneFile)
	if g.secondary {
		zone = fmt.Sprintf("\ttype secondary;\n\tfile \"sec.db\";\n\tprimaries { 127.0.0.1 port %d; };\n\tallow-notify { 127.0.0.1; };\n", primaryPort)
	}
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port 53 { %[2]s };
	listen-on-v6 port 53 { %[3]s };
	notify no;
%[4]s%[8]s};
%[5]szone "%[6]s" {
%[7]s};
`, s.dir, strings.Join(v4, " "), strings.Join(v6, " "), bindOptions, bindServers, origin, zone, rrlConfigBind(g.rrl))
	path := filepath.Join(s.dir, "named.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	bin, err := lab.LookSbin("named")
	if err != nil {
		return err
	}
	s.Version = lab.NamedVersion()
	return s.launch("named", bin, "-g", "-n", "1", "-c", path)
}

func xdpnsVersion(bin string) string {
	v := lab.FirstLine(exec.Command(bin, "version"))
	if f := strings.Fields(v); len(f) > 1 {
		v = "xdpns " + f[1]
	}
	return v + builtFrom
}

// builtFrom names the commit the xdpns binary was built from, when the
// harness built it.
var builtFrom string

// buildXdpns builds cmd/xdpns from a clean git worktree of HEAD (others
// may be editing the working tree) into dir and returns the binary's path.
// Outside a git checkout (a source tarball) it builds the module as it is.
func buildXdpns(ctx context.Context, dir string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	out := filepath.Join(dir, "bin", "xdpns")
	build := func(src string) error {
		cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, "./cmd/xdpns")
		cmd.Dir = src
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build xdpns (or pass -xdpns-bin): %v\n%s", err, b)
		}
		return nil
	}
	top, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		gomod, err := exec.CommandContext(ctx, gobin, "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(gomod)) == "" {
			return "", fmt.Errorf("build xdpns: neither a git checkout nor a Go module here (pass -xdpns-bin)")
		}
		builtFrom = " (source tree)"
		return out, build(filepath.Dir(strings.TrimSpace(string(gomod))))
	}
	repo := strings.TrimSpace(string(top))
	head, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "src")
	if b, err := exec.CommandContext(ctx, "git", "-C", repo, "worktree", "add", "--detach", src, "HEAD").CombinedOutput(); err != nil {
		return "", fmt.Errorf("git worktree add: %v\n%s", err, b)
	}
	defer func() {
		// Not ctx: the worktree goes also when the run was interrupted.
		exec.Command("git", "-C", repo, "worktree", "remove", "--force", src).Run()
	}()
	if err := build(src); err != nil {
		return "", err
	}
	builtFrom = " @" + strings.TrimSpace(string(head))
	return out, nil
}
