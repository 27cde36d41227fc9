package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/testenv/peer"
)

// TestChainNamedXdpnsKnot is issue 3 test 11 as users run it: a real named
// primary → `xdpns serve` (its secondary) → a real knotd (xdpns's
// secondary). knotd bootstraps by AXFR from xdpns; then each change made at
// named with the nsupdate binary goes named → NOTIFY → xdpns IXFR → NOTIFY →
// knotd IXFR from xdpns's journal, and after each one knotd's copy equals
// named's. Two zones: one unsigned on the xdpns → knotd leg, one with TSIG
// on it (knotd signs its SOA queries and transfers, xdpns its NOTIFYs). The
// named → xdpns leg is signed for both (transfers and NOTIFY).
func TestChainNamedXdpnsKnot(t *testing.T) {
	testenv.RequireRoot(t)
	nsupdate := testenv.RequireBinary(t, "nsupdate")
	testenv.RequireBinary(t, "knotd")
	dir := t.TempDir()
	port, knotPort := testenv.FreePort(t), testenv.FreePort(t)
	up := tsigKey{"upd.chain.", "hmac-sha256", randomSecret()}
	xfrKey := tsigKey{"xfr.chain.", "hmac-sha256", randomSecret()}
	down := peer.Key{Name: "down.chain.", Algorithm: "hmac-sha512", Secret: randomSecret()}
	zones := []string{"plain.example.", "signed.example."}
	var nz []namedZone
	for _, z := range zones {
		nz = append(nz, namedZone{name: z, text: chainZoneText(z),
			allowTransfer: fmt.Sprintf("key %q;", xfrKey.name), allowUpdate: fmt.Sprintf("key %q;", up.name)})
	}
	n := startTestNamed(t, namedConfig{dir: filepath.Join(dir, "named"), notifyPort: port, notifyKey: xfrKey.name,
		keys: []tsigKey{up, xfrKey}, zones: nz})

	knotAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(knotPort))
	sock := filepath.Join(dir, "control.sock")
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(`server:
  listen: ["127.0.0.1:%[1]d"]
  udp-sockets: 1
xfr:
  state-dir: state
keys:
  - {name: %[2]s, algorithm: %[3]s, secret: %[4]q}
  - {name: %[5]s, algorithm: %[6]s, secret: %[7]q}
zones:
  - name: plain.example.
    primaries: [{address: "%[8]s", key: %[2]s}]
    allow-transfer: {from: [127.0.0.1/32]}
    notify: ["%[9]s"]
  - name: signed.example.
    primaries: [{address: "%[8]s", key: %[2]s}]
    allow-transfer: {from: [127.0.0.1/32], keys: [%[5]s]}
    notify: ["%[9]s"]
    notify-key: %[5]s
control:
  socket: %[10]s
`, port, xfrKey.name, xfrKey.algorithm, xfrKey.secret, down.Name, down.Algorithm, down.Secret, n.Addr(), knotAddr, sock))
	h := startServe(t, cfg, port)
	for _, z := range zones {
		h.waitAnswer("www."+z, "192.0.2.10")
	}
	h.waitLog("control socket")

	k := peer.StartKnotSecondary(t, peer.KnotSecondaryConfig{Primary: netip.MustParseAddrPort(h.addr), Port: knotPort,
		Zones: []peer.SecondaryZone{{Name: "plain.example."}, {Name: "signed.example.", Key: &down}}})
	same := func(step string) {
		t.Helper()
		for _, z := range zones {
			if got, want := axfrText(t, k.Addr(), z, nil), axfrText(t, n.Addr(), z, &xfrKey); got != want {
				t.Fatalf("%s: knotd's %s differs from named's:\n%s\nnamed:\n%s", step, z, got, want)
			}
		}
	}
	start := time.Now()
	for _, z := range zones {
		k.WaitSerial(z, 1, 10*time.Second)
	}
	t.Logf("knotd bootstrapped both zones from xdpns in %v", time.Since(start).Round(time.Millisecond))
	same("bootstrap")

	// Each step is one nsupdate (one new serial) per zone: adds, deletes,
	// replacements, an RR out of an RRset, a new RRset of many records.
	steps := [][]string{
		{"update add new1.%s 300 A 192.0.2.1", "update add new1.%s 300 TXT \"first\""},
		{"update delete www.%s A"},
		{"update delete mail.%s MX", "update add mail.%s 300 MX 20 mx2.%s"},
		{"update delete multi.%s A 192.0.2.12"},
		{"update delete new1.%s TXT", "update add new1.%s 600 TXT \"replaced\""},
	}
	var bulk []string
	for i := range 40 {
		bulk = append(bulk, fmt.Sprintf("update add bulk%d.%%s 300 AAAA 2001:db8::%x", i, i))
	}
	steps = append(steps, bulk, []string{"update delete bulk7.%s", "update delete new1.%s", "update add www.%s 300 A 192.0.2.80"})
	ctx := context.Background()
	for i, step := range steps {
		serial := uint32(i + 2)
		start := time.Now()
		for _, z := range zones {
			cmds := make([]string, len(step))
			for j, c := range step {
				cmds[j] = strings.ReplaceAll(c, "%s", z)
			}
			if err := n.nsupdate(ctx, nsupdate, up, z, cmds); err != nil {
				t.Fatalf("step %d, %s: %v", i+1, z, err)
			}
		}
		updated := time.Now()
		for _, z := range zones {
			k.WaitSerial(z, serial, 10*time.Second)
		}
		// Typically under a millisecond; about a second now and then, when
		// knotd defers its refresh (its events are scheduled by the second).
		t.Logf("step %d: nsupdate of both zones %v, then both at serial %d in knotd after %v", i+1,
			updated.Sub(start).Round(time.Millisecond), serial, time.Since(updated).Round(time.Millisecond))
		same(fmt.Sprintf("step %d", i+1))
	}

	changes := len(steps)
	for _, z := range zones {
		// xdpns took every change from named by IXFR.
		row := waitStatus(t, sock, z, func(r zoneRow) bool { return r.Serial == uint32(changes+1) })
		if c := row.Counters; c.Full != 1 || c.Incremental != uint64(changes) || c.NotifyDenied != 0 {
			t.Errorf("%s: xdpns counters %+v, want 1 AXFR and %d IXFR from named", z, c, changes)
		}
		// knotd, by its own account: one AXFR, then IXFRs only.
		var axfr, ixfr int
		lines := k.Transfers(z)
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, "AXFR") && strings.Contains(l, "finished"):
				axfr++
			case strings.HasPrefix(l, "IXFR") && strings.Contains(l, "finished"):
				ixfr++
			default:
				t.Errorf("%s: knotd: %s", z, l)
			}
		}
		if axfr != 1 || ixfr != changes {
			t.Errorf("%s: knotd logged %d AXFR and %d IXFR, want 1 and %d:\n%s", z, axfr, ixfr, changes, strings.Join(lines, "\n"))
		}
		// xdpns, by its own: the same, served (signed for signed.example.).
		styles := map[string]int{}
		for _, l := range regexp.MustCompile(`msg="transfer out" component=xfrout zone=`+regexp.QuoteMeta(z)+` .*`).FindAllString(h.stderr.String(), -1) {
			styles[regexp.MustCompile(`style=(\S+)`).FindStringSubmatch(l)[1]]++
			if signed := strings.Contains(l, " key="+down.Name+" "); signed != (z == "signed.example.") {
				t.Errorf("%s: transfer out signed %v: %s", z, signed, l)
			}
		}
		if want := map[string]int{"axfr": 1, "incremental": changes}; !reflect.DeepEqual(styles, want) {
			t.Errorf("%s: xdpns served %v, want %v", z, styles, want)
		}
	}
	if strings.Contains(h.stderr.String(), "transfer refused") || strings.Contains(h.stderr.String(), "signed query refused") {
		t.Errorf("xdpns refused something:\n%s", h.stderr)
	}
}

// chainZoneText is a small zone with a few RRsets to change.
func chainZoneText(origin string) string {
	return "$ORIGIN " + origin + "\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 203.0.113.1\n" +
		"www A 192.0.2.10\nmail MX 10 mx1\nmx1 A 192.0.2.11\nmulti A 192.0.2.12\nmulti A 192.0.2.13\nmulti A 192.0.2.14\n" +
		"txt TXT \"hello world\" \"two strings\"\n"
}
