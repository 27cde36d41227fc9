package peer

import (
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
)

// KnotConfig describes a knotd primary.
type KnotConfig struct {
	Zones []Zone // AllowTransfer and Extra are ignored
	// NotifyPort is where knotd sends NOTIFY (127.0.0.1); 0: no NOTIFY.
	NotifyPort int
	// Modules is configuration text for module sections (e.g. mod-rrl:),
	// and GlobalModule what the default template's global-module names
	// (e.g. mod-rrl/flood); empty: none.
	Modules, GlobalModule string
}

// Knot is a running knotd.
type Knot struct {
	t     testing.TB
	bins  map[string]string
	Dir   string
	Port  int
	log   *lockedBuffer
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	zones []Zone
}

// StartKnot writes a configuration into a fresh t.TempDir() and runs knotd
// there (absolute paths: knotd changes to /). Zones keep their changes in
// the journal, so knotd answers IXFR. t.Cleanup stops it.
func StartKnot(t testing.TB, cfg KnotConfig) *Knot {
	t.Helper()
	bins := Need(t, "knotd", "knotc")
	k := &Knot{t: t, bins: bins, Dir: t.TempDir(), Port: FreePort(t), log: &lockedBuffer{}, zones: cfg.Zones}
	var c strings.Builder
	c.WriteString(knotServerConf(k.Dir, k.Port))
	c.WriteString(`acl:
  - id: local
    address: 127.0.0.1
    action: transfer
`)
	notify := ""
	if cfg.NotifyPort != 0 {
		fmt.Fprintf(&c, "remote:\n  - id: secondary\n    address: 127.0.0.1@%d\n", cfg.NotifyPort)
		notify = "\n    notify: secondary"
	}
	c.WriteString(cfg.Modules)
	global := ""
	if cfg.GlobalModule != "" {
		global = "\n    global-module: " + cfg.GlobalModule
	}
	fmt.Fprintf(&c, `template:
  - id: default
    storage: "%s"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    serial-policy: increment
    semantic-checks: off%s
zone:
`, k.Dir, global)
	for _, z := range cfg.Zones {
		file := strings.TrimSuffix(z.Name, ".") + ".zone"
		if err := os.WriteFile(filepath.Join(k.Dir, file), []byte(z.Text), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&c, "  - domain: %s\n    file: %q\n    acl: local%s\n", z.Name, file, notify)
	}
	// knotd does not create the journal's directory; commits fail without it.
	if err := os.Mkdir(filepath.Join(k.Dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.conf(), []byte(c.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins["knotd"], "-c", k.conf())
	cmd.Dir = k.Dir
	cmd.Stdout, cmd.Stderr = k.log, k.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start knotd: %v", err)
	}
	k.cmd, k.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(k.done)
	}()
	t.Cleanup(func() {
		k.Stop()
		if t.Failed() {
			t.Logf("knotd log:\n%s", k.Log())
		}
	})
	for _, z := range cfg.Zones {
		k.waitZone(z.Name)
	}
	return k
}

func (k *Knot) conf() string { return filepath.Join(k.Dir, "knot.conf") }

// knotServerConf is the start of a knotd configuration that keeps
// everything in dir and listens on 127.0.0.1@port, logging to stderr.
func knotServerConf(dir string, port int) string {
	return fmt.Sprintf(`server:
    rundir: "%[1]s"
    pidfile: "%[1]s/knot.pid"
    listen: 127.0.0.1@%[2]d
database:
    storage: "%[1]s/db"
control:
    listen: "%[1]s/knot.sock"
log:
  - target: stderr
    any: info
`, dir, port)
}

// Addr is where knotd listens (UDP and TCP).
func (k *Knot) Addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(k.Port))
}

// Log returns what knotd printed.
func (k *Knot) Log() string { return k.log.String() }

// Stop terminates knotd by its pid and waits for it.
func (k *Knot) Stop() {
	k.mu.Lock()
	cmd := k.cmd
	k.cmd = nil
	k.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-k.done
	}
}

func (k *Knot) waitZone(name string) {
	k.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	c := dns.Client{Timeout: 200 * time.Millisecond}
	for time.Now().Before(deadline) {
		select {
		case <-k.done:
			k.t.Fatalf("knotd exited:\n%s", k.Log())
		default:
		}
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeSOA)
		r, _, err := c.Exchange(q, k.Addr().String())
		if err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	k.t.Fatalf("knotd does not serve %s:\n%s", name, k.Log())
}

// Knotc runs knotc against this knotd and fails the test on error.
func (k *Knot) Knotc(args ...string) string {
	k.t.Helper()
	out, err := exec.Command(k.bins["knotc"], append([]string{"-c", k.conf()}, args...)...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("knotc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Change applies one transaction: zone-begin, each change ("set NAME TTL
// TYPE DATA" or "unset NAME [TYPE [DATA]]"), zone-commit.
func (k *Knot) Change(zone string, changes ...[]string) {
	k.t.Helper()
	k.Knotc("zone-begin", zone)
	for _, ch := range changes {
		k.Knotc(append([]string{"zone-" + ch[0], zone}, ch[1:]...)...)
	}
	k.Knotc("zone-commit", zone)
}

// Serial asks knotd for the zone's SOA serial.
func (k *Knot) Serial(name string) uint32 { return Serial(k.t, k.Addr(), name) }

// AXFR transfers the zone from knotd (see AXFR).
func (k *Knot) AXFR(name string) []dns.RR { return AXFR(k.t, k.Addr(), name, nil) }
