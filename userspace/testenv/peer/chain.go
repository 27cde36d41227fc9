package peer

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// SecondaryZone is one zone of a knotd secondary.
type SecondaryZone struct {
	Name string
	// Key, when set, signs the transfers from the primary and the
	// primary's NOTIFYs must carry it; nil: unsigned.
	Key *Key
}

// KnotSecondaryConfig describes a knotd secondary: the end of a
// distribution chain (a primary → xdpns → knotd).
type KnotSecondaryConfig struct {
	// Primary is where knotd transfers from (and whose address may NOTIFY).
	Primary netip.AddrPort
	Zones   []SecondaryZone
	// Port to listen on (127.0.0.1); 0: a free one.
	Port int
}

// KnotSecondary is a running knotd secondary.
type KnotSecondary struct {
	t     testing.TB
	Dir   string
	Port  int
	Proc  *testenv.Process
	zones []SecondaryZone
}

// StartKnotSecondary writes a configuration into a fresh t.TempDir() and runs
// knotd as a secondary of cfg.Primary for cfg.Zones: it bootstraps each zone
// by AXFR, accepts NOTIFY from 127.0.0.1 (with the zone's key when it has
// one), asks for IXFR once it has a copy (its journal keeps the changes),
// and lets 127.0.0.1 transfer its copy unsigned, for comparing. It returns
// at once (knotd transfers in the background; see WaitSerial); t.Cleanup
// stops knotd by its pid and prints its log when the test failed.
func StartKnotSecondary(t testing.TB, cfg KnotSecondaryConfig) *KnotSecondary {
	t.Helper()
	Need(t, "knotd")
	k := &KnotSecondary{t: t, Dir: t.TempDir(), Port: cfg.Port, zones: cfg.Zones}
	if k.Port == 0 {
		k.Port = FreePort(t)
	}
	var c strings.Builder
	c.WriteString(knotServerConf(k.Dir, k.Port))
	// One remote (and one NOTIFY ACL) per key: knotd ties a key to a remote.
	keys := map[string]*Key{}
	for _, z := range cfg.Zones {
		if z.Key != nil {
			keys[z.Key.Name] = z.Key
		}
	}
	if len(keys) > 0 {
		c.WriteString("key:\n")
		for _, key := range keys {
			fmt.Fprintf(&c, "  - id: %s\n    algorithm: %s\n    secret: %s\n", key.Name, key.Algorithm, key.Secret)
		}
	}
	host, port := cfg.Primary.Addr().String(), cfg.Primary.Port()
	c.WriteString("remote:\n")
	fmt.Fprintf(&c, "  - id: primary\n    address: %s@%d\n", host, port)
	for name := range keys {
		fmt.Fprintf(&c, "  - id: primary-%s\n    address: %s@%d\n    key: %s\n", remoteID(name), host, port, name)
	}
	fmt.Fprintf(&c, "acl:\n  - id: notify\n    address: %s\n    action: notify\n", host)
	for name := range keys {
		fmt.Fprintf(&c, "  - id: notify-%s\n    address: %s\n    action: notify\n    key: %s\n", remoteID(name), host, name)
	}
	fmt.Fprintf(&c, `  - id: compare
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "%s"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    semantic-checks: off
zone:
`, k.Dir)
	for _, z := range cfg.Zones {
		remote, acl := "primary", "notify"
		if z.Key != nil {
			remote, acl = "primary-"+remoteID(z.Key.Name), "notify-"+remoteID(z.Key.Name)
		}
		fmt.Fprintf(&c, "  - domain: %s\n    master: %s\n    acl: [%s, compare]\n", z.Name, remote, acl)
	}
	// knotd does not create the journal's directory.
	if err := os.Mkdir(filepath.Join(k.Dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(k.Dir, "knot.conf")
	if err := os.WriteFile(conf, []byte(c.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	k.Proc = testenv.StartProcess(t, "knotd", "-c", conf)
	return k
}

// remoteID makes a key name usable in a knotd id.
func remoteID(key string) string { return strings.ReplaceAll(strings.TrimSuffix(key, "."), ".", "-") }

// Addr is where knotd listens (UDP and TCP).
func (k *KnotSecondary) Addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(k.Port))
}

// Log is what knotd has printed so far.
func (k *KnotSecondary) Log() string { return k.Proc.Output() }

// serial asks knotd for the zone's SOA serial; ok is false while it does
// not serve the zone.
func (k *KnotSecondary) serial(name string) (uint32, bool) {
	q := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeSOA)
	r, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(q, k.Addr().String())
	if err != nil || r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
		return 0, false
	}
	soa, ok := r.Answer[0].(*dns.SOA)
	if !ok {
		return 0, false
	}
	return soa.Serial, true
}

// WaitSerial waits (at most timeout) until knotd serves the zone at serial.
func (k *KnotSecondary) WaitSerial(name string, serial uint32, timeout time.Duration) {
	k.t.Helper()
	k.Proc.WaitFor(k.t, timeout, func() error {
		if got, ok := k.serial(name); !ok || got != serial {
			return fmt.Errorf("knotd serves %s at serial %d (served: %v), want %d", name, got, ok, serial)
		}
		return nil
	})
}

// AXFR transfers knotd's copy of the zone (see AXFR).
func (k *KnotSecondary) AXFR(name string) []dns.RR { return AXFR(k.t, k.Addr(), name, nil) }

// Transfers returns how knotd's incoming transfers of the zone ended, as it
// logged them, e.g. "AXFR, incoming, remote 127.0.0.1@N, finished, 0.00
// seconds, 1 messages, 412 bytes" or "IXFR, incoming, remote ..., fallback
// to AXFR" (the "started" lines are left out).
func (k *KnotSecondary) Transfers(name string) []string {
	re := regexp.MustCompile(`\[` + regexp.QuoteMeta(dns.Fqdn(name)) + `\] ([AI]XFR, incoming.*)`)
	var out []string
	for _, l := range strings.Split(k.Log(), "\n") {
		if m := re.FindStringSubmatch(l); m != nil && !strings.HasSuffix(m[1], ", started") {
			out = append(out, m[1])
		}
	}
	return out
}
