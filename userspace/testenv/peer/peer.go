// Package peer starts real DNS servers (BIND's named, Knot's knotd) on
// loopback ports for tests, and decides when such tests may be skipped:
// never when the CI environment variable is set.
package peer

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// Skip skips the test with the reason, or fails it when CI is set: CI runs
// as root with every peer installed, so a skip there hides a broken setup.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if testenv.InCI() {
		t.Fatalf("%s (CI is set: not skipping)", msg)
	}
	t.Skip(msg)
}

// Need returns the paths of the binaries, skipping the test (or failing
// under CI) when one is missing or when not running as root.
func Need(t testing.TB, bins ...string) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root to run %s", strings.Join(bins, ", "))
	}
	out := map[string]string{}
	for _, b := range bins {
		p, err := exec.LookPath(b)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/sbin"} {
				if _, serr := os.Stat(filepath.Join(dir, b)); serr == nil {
					p, err = filepath.Join(dir, b), nil
					break
				}
			}
		}
		if err != nil {
			Skip(t, "%s not installed", b)
		}
		out[b] = p
	}
	return out
}

// FreePort returns a loopback port that was free for both UDP and TCP
// (testenv.FreePort: below the ephemeral range, so a socket bound to port
// 0 elsewhere cannot take it before the peer binds it, and never handed
// out twice in one test binary).
func FreePort(t testing.TB) int {
	t.Helper()
	return testenv.FreePort(t)
}

// Key is a TSIG key as named.conf declares it.
type Key struct {
	Name, Algorithm, Secret string
}

// Zone is one primary zone of a named instance.
type Zone struct {
	Name string
	// Text is the zone file.
	Text string
	// AllowTransfer is the address match list, e.g. `any;` or `key "k";`.
	// Empty: any.
	AllowTransfer string
	// Extra is added to the zone statement.
	Extra string
}

// NamedConfig describes a named primary.
type NamedConfig struct {
	Zones []Zone
	Keys  []Key
	// NotifyPort is where named sends NOTIFY (127.0.0.1); 0: no NOTIFY.
	NotifyPort int
	// NotifyKey signs the NOTIFYs.
	NotifyKey string
	// TLS, when set, makes named serve DNS over TLS as well (and so XoT,
	// RFC 9103) on 127.0.0.1:TLSPort, with this certificate, in a tls
	// block named "peer-tls".
	TLS *NamedTLS
	// Conf is appended to named.conf as it is: tls blocks, secondary
	// zones (not waited for).
	Conf string
}

// NamedTLS is the certificate named serves TLS with.
type NamedTLS struct {
	CertFile, KeyFile string
	// CAFile, when set, makes named require client certificates signed
	// by this CA (mutual TLS).
	CAFile string
}

// Named is a running named.
type Named struct {
	t    testing.TB
	bin  string
	Dir  string
	Port int
	// TLSPort is where named serves TLS (127.0.0.1), when NamedConfig.TLS
	// was set.
	TLSPort int
	// ControlPort is named's rndc control channel (127.0.0.1, TCP), keyed
	// with a key generated for this instance (see Rndc).
	ControlPort int

	mu  sync.Mutex
	cmd *exec.Cmd
	log *lockedBuffer
	// waited is closed when the current process has exited.
	waited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartNamed writes the configuration and zone files into a fresh
// t.TempDir() and runs `named -g -4` there, with recursion off, NOTIFY
// only to the configured loopback port, dynamic updates from 127.0.0.1
// (kept in a journal, so named answers IXFR) and an rndc control channel
// on 127.0.0.1:ControlPort. It returns when every zone answers its SOA;
// t.Cleanup stops it.
func StartNamed(t testing.TB, cfg NamedConfig) *Named {
	t.Helper()
	bin := Need(t, "named")["named"]
	n := &Named{t: t, bin: bin, Dir: t.TempDir(), Port: FreePort(t), ControlPort: FreePort(t), log: &lockedBuffer{}}
	// The rndc key: named.conf and rndc.conf both include it.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	rndcKey := fmt.Sprintf("key %q { algorithm hmac-sha256; secret %q; };\n", rndcKeyName, base64.StdEncoding.EncodeToString(secret))
	if err := os.WriteFile(filepath.Join(n.Dir, "rndc.key"), []byte(rndcKey), 0o600); err != nil {
		t.Fatal(err)
	}
	rndcConf := fmt.Sprintf("include %q;\noptions {\n\tdefault-key %q;\n\tdefault-server 127.0.0.1;\n\tdefault-port %d;\n};\n",
		filepath.Join(n.Dir, "rndc.key"), rndcKeyName, n.ControlPort)
	if err := os.WriteFile(n.rndcConf(), []byte(rndcConf), 0o600); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "include %q;\n", filepath.Join(n.Dir, "rndc.key"))
	fmt.Fprintf(&conf, `options {
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
`, n.Dir, n.Port)
	if cfg.TLS != nil {
		n.TLSPort = FreePort(t)
		fmt.Fprintf(&conf, "\tlisten-on port %d tls peer-tls { 127.0.0.1; };\n", n.TLSPort)
	}
	if cfg.NotifyPort != 0 {
		key := ""
		if cfg.NotifyKey != "" {
			key = fmt.Sprintf(" key %q", cfg.NotifyKey)
		}
		fmt.Fprintf(&conf, "\tnotify explicit;\n\talso-notify { 127.0.0.1 port %d%s; };\n", cfg.NotifyPort, key)
	} else {
		conf.WriteString("\tnotify no;\n")
	}
	conf.WriteString("};\n")
	fmt.Fprintf(&conf, "controls { inet 127.0.0.1 port %d allow { 127.0.0.1; } keys { %q; }; };\n", n.ControlPort, rndcKeyName)
	conf.WriteString(`server 0.0.0.0/0 { bogus yes; };
server ::/0 { bogus yes; };
server 127.0.0.1/32 { bogus no; };
`)
	for _, k := range cfg.Keys {
		fmt.Fprintf(&conf, "key %q { algorithm %s; secret %q; };\n", k.Name, k.Algorithm, k.Secret)
	}
	if cfg.TLS != nil {
		ca := ""
		if cfg.TLS.CAFile != "" {
			ca = fmt.Sprintf(" ca-file %q;", cfg.TLS.CAFile)
		}
		fmt.Fprintf(&conf, "tls peer-tls { cert-file %q; key-file %q;%s };\n", cfg.TLS.CertFile, cfg.TLS.KeyFile, ca)
	}
	conf.WriteString(cfg.Conf)
	for _, z := range cfg.Zones {
		file := filepath.Base(n.ZoneFile(z.Name))
		if err := os.WriteFile(filepath.Join(n.Dir, file), []byte(z.Text), 0o644); err != nil {
			t.Fatal(err)
		}
		at := z.AllowTransfer
		if at == "" {
			at = "any;"
		}
		fmt.Fprintf(&conf, "zone %q {\n\ttype primary;\n\tfile %q;\n\tallow-transfer { %s };\n\tallow-update { 127.0.0.1; };\n%s};\n",
			z.Name, file, at, z.Extra)
	}
	if err := os.WriteFile(n.Conf(), []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	n.Start()
	for _, z := range cfg.Zones {
		n.WaitZone(z.Name)
	}
	return n
}

// rndcKeyName names the control channel's key; tests' own keys must not
// use it.
const rndcKeyName = "peer-rndc-control"

// Conf is the path of named.conf.
func (n *Named) Conf() string { return filepath.Join(n.Dir, "named.conf") }

func (n *Named) rndcConf() string { return filepath.Join(n.Dir, "rndc.conf") }

// ZoneFile is the path of the zone's file in Dir (named writes it on
// `rndc sync`, `rndc freeze`; its journal is ZoneFile + ".jnl").
func (n *Named) ZoneFile(name string) string {
	return filepath.Join(n.Dir, strings.TrimSuffix(dns.Fqdn(name), ".")+".db")
}

// Rndc runs `rndc -c DIR/rndc.conf -s 127.0.0.1 -p CONTROLPORT args...`
// against this named, as an operator would (e.g. "sync", "-clean", zone;
// "freeze", zone; "thaw", zone), and returns what rndc printed. A failure
// fails the test with rndc's output and the end of named's log.
func (n *Named) Rndc(args ...string) string {
	n.t.Helper()
	bin := Need(n.t, "rndc")["rndc"]
	full := append([]string{"-c", n.rndcConf(), "-s", "127.0.0.1", "-p", fmt.Sprint(n.ControlPort)}, args...)
	out, err := run(bin, full, "")
	if err != nil {
		n.t.Fatalf("rndc %s: %v\n%s\nnamed:\n%s", strings.Join(args, " "), err, out, n.tail())
	}
	return out
}

// Nsupdate sends one dynamic update with the `nsupdate` program (over
// TCP, -v): "server 127.0.0.1 PORT", "zone NAME", the given commands (e.g.
// "update add www.example. 300 IN A 192.0.2.1"), then "send". A refused
// or failed update fails the test with nsupdate's output.
func (n *Named) Nsupdate(name string, commands ...string) {
	n.t.Helper()
	bin := Need(n.t, "nsupdate")["nsupdate"]
	var script strings.Builder
	fmt.Fprintf(&script, "server 127.0.0.1 %d\nzone %s\n", n.Port, dns.Fqdn(name))
	for _, c := range commands {
		script.WriteString(c + "\n")
	}
	script.WriteString("send\n")
	out, err := run(bin, []string{"-v", "-t", "5"}, script.String())
	if err != nil {
		n.t.Fatalf("nsupdate %s: %v\n%s\nscript:\n%s", name, err, out, script.String())
	}
}

// run runs a short-lived tool (rndc, nsupdate) with stdin, in its own
// process group, and kills that group if it has not finished in 10 s.
func run(bin string, args []string, stdin string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("%s still running after 10s: killed", filepath.Base(bin))
	}
}

// TLSAddr is where named serves TLS (NamedConfig.TLS).
func (n *Named) TLSAddr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(n.TLSPort))
}

// Addr is where named listens (UDP and TCP).
func (n *Named) Addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(n.Port))
}

// Log returns what named printed.
func (n *Named) Log() string { return n.log.String() }

// tail is the end of the log, for failure messages.
func (n *Named) tail() string {
	lines := strings.Split(strings.TrimRight(n.Log(), "\n"), "\n")
	if len(lines) > 25 {
		lines = append([]string{"..."}, lines[len(lines)-25:]...)
	}
	return strings.Join(lines, "\n")
}

// Start runs named (again, after Stop) on the same port and directory.
func (n *Named) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.t.Fatal("named already running")
	}
	cmd := exec.Command(n.bin, "-g", "-4", "-c", n.Conf())
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start named: %v", err)
	}
	n.cmd = cmd
	done := make(chan struct{})
	n.waited = done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
}

// Stop terminates named (by its pid) and waits for it to exit.
func (n *Named) Stop() {
	n.mu.Lock()
	cmd, done := n.cmd, n.waited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// WaitZone waits until named answers the zone's SOA authoritatively.
func (n *Named) WaitZone(name string) {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	c := dns.Client{Timeout: 200 * time.Millisecond}
	for time.Now().Before(deadline) {
		n.mu.Lock()
		done := n.waited
		n.mu.Unlock()
		select {
		case <-done:
			n.t.Fatalf("named exited:\n%s", n.tail())
		default:
		}
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeSOA)
		r, _, err := c.Exchange(q, n.Addr().String())
		if err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("named does not serve %s:\n%s", name, n.tail())
}

// Serial asks named for the zone's SOA serial.
func (n *Named) Serial(name string) uint32 {
	n.t.Helper()
	return Serial(n.t, n.Addr(), name)
}

// Serial asks the server at addr for the zone's SOA serial.
func Serial(t testing.TB, addr netip.AddrPort, name string) uint32 {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeSOA)
	c := dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(q, addr.String())
	if err != nil || len(r.Answer) == 0 {
		t.Fatalf("SOA %s from %s: %v %v", name, addr, err, r)
	}
	return r.Answer[0].(*dns.SOA).Serial
}

// Update sends a dynamic update (RFC 2136) built by fill.
func (n *Named) Update(name string, fill func(m *dns.Msg)) {
	n.t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(name))
	fill(m)
	c := dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, n.Addr().String())
	if err != nil {
		n.t.Fatalf("update %s: %v", name, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		n.t.Fatalf("update %s: %s", name, dns.RcodeToString[r.Rcode])
	}
}

// AXFR transfers the zone from named (see AXFR).
func (n *Named) AXFR(name string, key *Key) []dns.RR {
	n.t.Helper()
	return AXFR(n.t, n.Addr(), name, key)
}

// AXFR transfers the zone from addr with miekg/dns (an implementation
// independent of the one under test) and returns its records without the
// closing SOA.
func AXFR(t testing.TB, addr netip.AddrPort, name string, key *Key) []dns.RR {
	t.Helper()
	q := new(dns.Msg)
	q.SetAxfr(dns.Fqdn(name))
	tr := &dns.Transfer{}
	if key != nil {
		q.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{key.Name: key.Secret}
	}
	ch, err := tr.In(q, addr.String())
	if err != nil {
		t.Fatalf("AXFR %s from %s: %v", name, addr, err)
	}
	var out []dns.RR
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("AXFR %s from %s: %v", name, addr, env.Error)
		}
		out = append(out, env.RR...)
	}
	if len(out) < 2 {
		t.Fatalf("AXFR %s from %s: %d records", name, addr, len(out))
	}
	return out[:len(out)-1]
}
