package xfrout

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
	"github.com/xdpns/xdpns/xfr"
)

// knotSecondary is a knotd secondary of xdpns for one zone.
type knotSecondary struct {
	p    *testenv.Process
	addr netip.AddrPort
}

// startKnotSecondary runs knotd from a fresh t.TempDir() (absolute paths:
// knotd changes to /) on port, as a secondary of primary for testOrigin:
// NOTIFY accepted from 127.0.0.1, transfers of its copy allowed to
// 127.0.0.1 (for comparing), the zone kept in memory and its journal.
func startKnotSecondary(t *testing.T, port int, primary string, key *Key) *knotSecondary {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "knotd")
	dir := t.TempDir()
	host, pport, _ := strings.Cut(primary, ":")
	keySection, keyRef := "", ""
	if key != nil {
		keySection = fmt.Sprintf("key:\n  - id: %s\n    algorithm: %s\n    secret: %s\n", key.Name, key.Algorithm, key.Secret)
		keyRef = "\n    key: " + key.Name
	}
	conf := fmt.Sprintf(`server:
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
%[6]sremote:
  - id: xdpns
    address: %[3]s@%[4]s%[7]s
acl:
  - id: from_xdpns
    address: 127.0.0.1
    action: notify%[7]s
  - id: compare
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "%[1]s"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    semantic-checks: off
zone:
  - domain: %[5]s
    master: xdpns
    acl: [from_xdpns, compare]
`, dir, port, host, pport, testOrigin, keySection, keyRef)
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &knotSecondary{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
	k.p = testenv.StartProcess(t, "knotd", "-c", path)
	return k
}

// serial asks knotd for the zone's SOA serial; ok is false while it does
// not serve the zone.
func (k *knotSecondary) serial() (uint32, bool) {
	q := new(dns.Msg).SetQuestion(testOrigin, dns.TypeSOA)
	r, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(q, k.addr.String())
	if err != nil || r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
		return 0, false
	}
	soa, ok := r.Answer[0].(*dns.SOA)
	if !ok {
		return 0, false
	}
	return soa.Serial, true
}

// waitSerial waits until knotd serves serial.
func (k *knotSecondary) waitSerial(t *testing.T, serial uint32) {
	t.Helper()
	k.p.WaitFor(t, 15*time.Second, func() error {
		if got, ok := k.serial(); !ok || got != serial {
			return fmt.Errorf("knotd serves serial %d (ok %v), want %d", got, ok, serial)
		}
		return nil
	})
}

// transferLog returns knotd's incoming transfer lines, e.g.
// "AXFR, incoming, remote 127.0.0.1@N, finished, ...".
func (k *knotSecondary) transferLog() []string {
	var out []string
	re := regexp.MustCompile(`[AI]XFR, incoming.*(finished|failed|fallback).*`)
	for _, l := range strings.Split(k.p.Output(), "\n") {
		if m := re.FindString(l); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// TestKnotSecondary is issue 3 test 11: a knotd secondary transfers the
// zone from xdpns by AXFR, then, told of each change by NOTIFY, by IXFR
// from the journal, and ends with the same zone. Unsigned, and with TSIG on
// everything (transfers and NOTIFY): knotd checks the MAC of every message.
func TestKnotSecondary(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "knotd")
	t.Run("unsigned", func(t *testing.T) { testKnotSecondary(t, nil) })
	t.Run("tsig", func(t *testing.T) {
		testKnotSecondary(t, &Key{Name: "xfr.key.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0LXNoYTI1Ni1rZXktZm9yLXRlc3Rz"})
	})
}

func testKnotSecondary(t *testing.T, key *Key) {
	knotPort := testenv.FreePort(t)
	knotAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(knotPort))
	zc := Zone{Name: testOrigin, AllowTransfer: ACL{Prefixes: loopback}, Notify: []netip.AddrPort{knotAddr}}
	cfg := Config{Zones: []Zone{zc}}
	if key != nil {
		cfg.Keys = []Key{*key}
		cfg.Zones[0].AllowTransfer.Keys = []string{key.Name}
		cfg.Zones[0].NotifyKey = key.Name
	}
	ts := startServer(t, cfg)

	// Enough records for a transfer of several messages.
	versions := []version{baseVersion(2024010100, 3000)}
	zones := []*zone.Zone{versions[0].zone(t)}
	ts.publish(Snapshot{Zone: zones[0]})

	k := startKnotSecondary(t, knotPort, ts.addr, key)
	k.waitSerial(t, versions[0].serial)
	compareWithKnot(t, k, zones[0])
	if got := ts.x.Stats.AXFR.Load(); got != 1 {
		t.Errorf("AXFRs served: %d, want 1 (knotd's bootstrap)", got)
	}

	var journal []xfr.Diff
	for i := 1; i <= 5; i++ {
		prev := versions[i-1]
		del := []string{prev.rrs[4+i*7], prev.rrs[5+i*7]}
		add := []string{
			fmt.Sprintf("change%d.%s 60 IN A 192.0.2.%d", i, testOrigin, i),
			fmt.Sprintf("change%d.%s 60 IN TXT \"version %d\"", i, testOrigin, i),
		}
		if i > 1 {
			del = append(del, fmt.Sprintf("change%d.%s 60 IN TXT \"version %d\"", i-1, testOrigin, i-1))
		}
		v := prev.next(del, add)
		versions = append(versions, v)
		zones = append(zones, v.zone(t))
		journal = append(journal, diff(t, prev, v))
		// What the daemon does on a new version: serve it (the responder
		// answers knotd's SOA query), then notify downstream.
		ts.publish(Snapshot{Zone: zones[i], Journal: journal})
		start := time.Now()
		ts.x.Changed(testOrigin)
		k.waitSerial(t, v.serial)
		t.Logf("change %d: knotd serves serial %d after %v", i, v.serial, time.Since(start).Round(time.Millisecond))
		compareWithKnot(t, k, zones[i])
	}

	if got := ts.x.Stats.IXFRIncremental.Load(); got != 5 {
		t.Errorf("incremental IXFRs served: %d, want 5", got)
	}
	if got := ts.x.Stats.AXFR.Load() + ts.x.Stats.IXFRFull.Load(); got != 1 {
		t.Errorf("full transfers served: %d, want 1", got)
	}
	if got := ts.x.Stats.NotifyAnswered.Load(); got != 5 {
		t.Errorf("NOTIFYs answered by knotd: %d, want 5", got)
	}
	// knotd's own account: one AXFR, then IXFRs only.
	lines := k.transferLog()
	var axfr, ixfr int
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "AXFR") && strings.Contains(l, "finished"):
			axfr++
		case strings.HasPrefix(l, "IXFR") && strings.Contains(l, "finished"):
			ixfr++
		default:
			t.Errorf("knotd: %s", l)
		}
	}
	if axfr != 1 || ixfr != 5 {
		t.Errorf("knotd logged %d AXFR and %d IXFR, want 1 and 5:\n%s", axfr, ixfr, strings.Join(lines, "\n"))
	}
	if key != nil && ts.x.Stats.Refused.Load() != 0 {
		t.Errorf("%d transfers refused", ts.x.Stats.Refused.Load())
	}
}

// compareWithKnot transfers knotd's copy with miekg/dns and compares it
// with z.
func compareWithKnot(t *testing.T, k *knotSecondary, z *zone.Zone) {
	t.Helper()
	rrs, _, err := transferIn(k.addr.String(), axfrQuery(testOrigin), nil)
	if err != nil {
		t.Fatalf("AXFR from knotd: %v", err)
	}
	sameSet(t, "knotd's copy", rrs[:len(rrs)-1], z.Records())
}

// TestKdigTSIG checks our signed, multi-message AXFR with kdig, an
// implementation of the TSIG chain independent of miekg/dns: right keys
// verify, a wrong secret is refused.
func TestKdigTSIG(t *testing.T) {
	testenv.RequireRoot(t)
	kdig := testenv.RequireBinary(t, "kdig")
	keys := []Key{
		{Name: "k256.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0LXNoYTI1Ni1rZXktZm9yLXRlc3Rz"},
		{Name: "kmd5.", Algorithm: "hmac-md5", Secret: "bWQ1LXNlY3JldC1mb3ItdGVzdHM="},
	}
	ts := startServer(t, Config{Keys: keys, Zones: []Zone{{Name: testOrigin,
		AllowTransfer: ACL{Prefixes: loopback, Keys: []string{"k256.", "kmd5."}}}}})
	z := baseVersion(1, 2000).zone(t)
	ts.publish(Snapshot{Zone: z})
	host, port, _ := strings.Cut(ts.addr, ":")
	run := func(key Key) (string, error) {
		out, err := exec.Command(kdig, "@"+host, "-p", port, "-y",
			fmt.Sprintf("%s:%s:%s", key.Algorithm, key.Name, key.Secret),
			"AXFR", testOrigin, "+nostats").CombinedOutput()
		return string(out), err
	}
	want := len(z.Records()) + 1
	for _, key := range keys {
		out, err := run(key)
		if err != nil || strings.Contains(out, "WARNING") || strings.Contains(out, "failed") {
			t.Fatalf("kdig AXFR with %s: %v\n%s", key.Algorithm, err, lastLines(out, 5))
		}
		n, sigs := 0, 0
		for _, l := range strings.Split(out, "\n") {
			switch {
			case l == "" || strings.HasPrefix(l, ";"):
			case strings.Contains(l, "\tTSIG\t"):
				sigs++
			default:
				n++
			}
		}
		if n != want || sigs < 3 {
			t.Errorf("kdig AXFR with %s: %d records in %d signed messages, want %d in several\n%s", key.Algorithm, n, sigs, want, lastLines(out, 5))
		}
	}
	bad := keys[0]
	bad.Secret = "d3Jvbmctc2VjcmV0"
	out, _ := run(bad)
	if !strings.Contains(out, "NOTAUTH") && !strings.Contains(out, "BADSIG") {
		t.Errorf("kdig with a wrong secret:\n%s", lastLines(out, 5))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n") + "\n(" + strconv.Itoa(len(lines)) + " lines)"
}
