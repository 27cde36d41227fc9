package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// A BIND named on loopback, as the primary of the demo and of the tests:
// recursion off, NOTIFY only to the configured loopback port, and the
// safety settings of docs (bogus on every server but 127.0.0.1).

// lookPath finds a program in PATH or the sbin directories (daemons live in
// /usr/sbin, which a normal user's PATH often lacks).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or /usr/sbin", name)
}

// tsigKey is a TSIG key as named.conf and xdpns.yaml write it.
type tsigKey struct {
	name, algorithm, secret string
}

// namedZone is one primary zone of a named.
type namedZone struct {
	name, text string
	// allowTransfer is an address match list, e.g. `key "k.";`; "" is any.
	allowTransfer string
	// allowUpdate is an address match list; "" is none.
	allowUpdate string
}

// namedConfig describes a named primary.
type namedConfig struct {
	dir   string // written into; named's working directory
	port  int    // UDP and TCP on 127.0.0.1
	zones []namedZone
	keys  []tsigKey
	// notifyPort gets NOTIFY on 127.0.0.1 (signed with notifyKey when set);
	// 0: no NOTIFY.
	notifyPort int
	notifyKey  string
	// netns, when set, is the named network namespace named runs in
	// (through nsenter); dial then reaches it from there.
	netns string
	dial  dialFunc
}

// named is a running named, started by us.
type named struct {
	cfg  namedConfig
	cmd  *exec.Cmd
	done chan struct{}
	log  string // its output
}

// namedConf writes named.conf's text. max-ixfr-ratio is unlimited because
// BIND otherwise answers an IXFR of a small zone with the whole zone when the
// difference is large next to it (a test zone of five records).
func namedConf(c namedConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	check-integrity no;
	check-mx ignore;
	notify-delay 0;
	notify-rate 10000;
	startup-notify-rate 10000;
	serial-query-rate 10000;
	max-ixfr-ratio unlimited;
`, c.dir, c.port)
	if c.notifyPort != 0 {
		key := ""
		if c.notifyKey != "" {
			key = fmt.Sprintf(" key %q", c.notifyKey)
		}
		fmt.Fprintf(&b, "\tnotify explicit;\n\talso-notify { 127.0.0.1 port %d%s; };\n", c.notifyPort, key)
	} else {
		b.WriteString("\tnotify no;\n")
	}
	b.WriteString(`};
controls { };
server 0.0.0.0/0 { bogus yes; };
server ::/0 { bogus yes; };
server 127.0.0.1/32 { bogus no; };
`)
	for _, k := range c.keys {
		fmt.Fprintf(&b, "key %q { algorithm %s; secret %q; };\n", k.name, k.algorithm, k.secret)
	}
	for _, z := range c.zones {
		at, au := z.allowTransfer, z.allowUpdate
		if at == "" {
			at = "any;"
		}
		if au == "" {
			au = "none;"
		}
		fmt.Fprintf(&b, "zone %q {\n\ttype primary;\n\tfile %q;\n\tallow-transfer { %s };\n\tallow-update { %s };\n};\n",
			z.name, namedZoneFile(z.name), at, au)
	}
	return b.String()
}

func namedZoneFile(name string) string { return strings.TrimSuffix(name, ".") + ".db" }

// startNamed writes the configuration and zones into c.dir and runs `named
// -g -4` there. It returns once every zone answers its SOA (or an error,
// with named stopped).
func startNamed(ctx context.Context, bin string, c namedConfig) (*named, error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	for _, z := range c.zones {
		if err := os.WriteFile(filepath.Join(c.dir, namedZoneFile(z.name)), []byte(z.text), 0o644); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(c.dir, "named.conf")
	if err := os.WriteFile(conf, []byte(namedConf(c)), 0o644); err != nil {
		return nil, err
	}
	n := &named{cfg: c, done: make(chan struct{}), log: filepath.Join(c.dir, "named.log")}
	f, err := os.Create(n.log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n.cmd = exec.Command(bin, "-g", "-4", "-c", conf)
	if c.netns != "" {
		prog, args, err := nsArgs(c.netns, bin, "-g", "-4", "-c", conf)
		if err != nil {
			return nil, err
		}
		n.cmd = exec.Command(prog, args...)
	}
	n.cmd.Dir = c.dir
	n.cmd.Stdout, n.cmd.Stderr = f, f
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start named: %w", err)
	}
	go func() {
		_ = n.cmd.Wait()
		close(n.done)
	}()
	for _, z := range c.zones {
		if err := n.waitZone(ctx, z.name); err != nil {
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

// Addr is where named listens.
func (n *named) Addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(n.cfg.port))
}

// Output is what named printed, its last lines first trimmed to max.
func (n *named) Output(max int) string {
	b, _ := os.ReadFile(n.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > max {
		lines = append([]string{"..."}, lines[len(lines)-max:]...)
	}
	return strings.Join(lines, "\n")
}

// waitZone waits (at most 15 s) until named answers the zone's SOA
// authoritatively.
func (n *named) waitZone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c := dns.Client{Timeout: 200 * time.Millisecond}
	for {
		select {
		case <-n.done:
			return fmt.Errorf("named exited:\n%s", n.Output(20))
		default:
		}
		if s, err := soaSerialVia(ctx, &c, n.cfg.dial, n.Addr(), name); err == nil && s != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("named does not serve %s: %w\n%s", name, ctx.Err(), n.Output(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends named by its pid: SIGTERM, then SIGKILL to its process group
// after 5 s. It waits for the exit.
func (n *named) Stop() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
}

// soaSerial asks addr for the zone's SOA serial (UDP); 0 with an error when
// there is no authoritative answer.
func soaSerial(ctx context.Context, c *dns.Client, addr netip.AddrPort, name string) (uint32, error) {
	return soaSerialVia(ctx, c, nil, addr, name)
}

// dialFunc opens a connection, e.g. from inside a network namespace.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// exchangeVia sends m to addr with c, or over a connection from dial when
// it is set (c's Net and Timeout still apply).
func exchangeVia(ctx context.Context, c *dns.Client, dial dialFunc, m *dns.Msg, addr string) (*dns.Msg, error) {
	if dial == nil {
		r, _, err := c.ExchangeContext(ctx, m, addr)
		return r, err
	}
	network := c.Net
	if network == "" {
		network = "udp"
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	dc := &dns.Conn{Conn: conn, UDPSize: 4096, TsigSecret: c.TsigSecret}
	defer dc.Close()
	dl, _ := ctx.Deadline()
	_ = dc.SetDeadline(dl)
	if err := dc.WriteMsg(m); err != nil {
		return nil, err
	}
	for {
		r, err := dc.ReadMsg()
		if err != nil {
			return nil, err
		}
		if r.Id == m.Id {
			return r, nil
		}
	}
}

func soaSerialVia(ctx context.Context, c *dns.Client, dial dialFunc, addr netip.AddrPort, name string) (uint32, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeSOA)
	q.RecursionDesired = false
	r, err := exchangeVia(ctx, c, dial, q, addr.String())
	if err != nil {
		return 0, err
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
		return 0, fmt.Errorf("SOA %s: %s, aa=%t", name, dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	soa, ok := r.Answer[0].(*dns.SOA)
	if !ok {
		return 0, errors.New("SOA answer without SOA")
	}
	return soa.Serial, nil
}

// nsupdate runs BIND's nsupdate against named with the update commands
// (one per line, without server/zone/send), signed with key.
func (n *named) nsupdate(ctx context.Context, bin string, key tsigKey, zoneName string, commands []string) error {
	script := fmt.Sprintf("server 127.0.0.1 %d\nzone %s\n%s\nsend\n", n.cfg.port, zoneName, strings.Join(commands, "\n"))
	args := []string{"-t", "5", "-y", key.algorithm + ":" + key.name + ":" + key.secret}
	prog := bin
	if n.cfg.netns != "" {
		var err error
		if prog, args, err = nsArgs(n.cfg.netns, bin, args...); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nsupdate: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// freeLoopbackPort returns a port on 127.0.0.1 free for both UDP and TCP
// just now, for a server that binds it itself.
func freeLoopbackPort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port for UDP and TCP")
}

// namedVersion is the first line of `named -v`, e.g. "BIND 9.18.49-1~deb12u3-Debian (Extended Support Version)".
func namedVersion(bin string) string {
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return "BIND"
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), " <")
	return v
}
