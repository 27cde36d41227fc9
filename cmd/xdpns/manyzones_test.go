package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// manyZones is the size of TestServeManyZones (issue 3: "a 1,000-zone
// config converges").
const manyZones = 1000

// TestServeManyZones: a configuration of 1,000 secondary zones, each its
// own block with its primary and its own TSIG key as a DNS provider writes
// them, all served by one real named, converges: every zone reaches ok
// (control API) within a bound, with one AXFR each (a few retried after a
// failed try), and answers over UDP.
func TestServeManyZones(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "named")
	dir := t.TempDir()
	name := func(i int) string { return fmt.Sprintf("z%04d.example.", i) }
	addr := func(i int) string { return fmt.Sprintf("198.18.%d.%d", i/256, i%256) }
	keys := make([]tsigKey, manyZones)
	zones := make([]namedZone, manyZones)
	for i := range manyZones {
		keys[i] = tsigKey{fmt.Sprintf("k%04d.xfr.", i), "hmac-sha256", randomSecret()}
		zones[i] = namedZone{name: name(i), text: zoneText(name(i), 1000+i, addr(i)),
			allowTransfer: fmt.Sprintf("key %q;", keys[i].name)}
	}
	start := time.Now()
	n := startTestNamed(t, namedConfig{dir: filepath.Join(dir, "named"), zones: zones, keys: keys})
	t.Logf("named loaded and answers %d zones in %v", manyZones, time.Since(start).Round(time.Millisecond))

	port := freePort(t)
	sock := filepath.Join(dir, "control.sock")
	var c strings.Builder
	fmt.Fprintf(&c, "server:\n  listen: [\"127.0.0.1:%d\"]\n  udp-sockets: 1\nxfr:\n  state-dir: state\ncontrol:\n  socket: %s\nkeys:\n", port, sock)
	for _, k := range keys {
		fmt.Fprintf(&c, "  - name: %s\n    algorithm: %s\n    secret: %q\n", k.name, k.algorithm, k.secret)
	}
	c.WriteString("zones:\n")
	for i := range manyZones {
		fmt.Fprintf(&c, "  - name: %s\n    primaries:\n      - address: %q\n        key: %s\n", name(i), n.Addr(), keys[i].name)
	}
	cfg := writeFile(t, dir, "xdpns.yaml", c.String())

	start = time.Now()
	h := startServe(t, cfg, port)
	h.waitLog("control socket")
	const bound = 15 * time.Second
	var last ctlResponse
	notOK := manyZones
	for deadline := start.Add(bound); ; time.Sleep(50 * time.Millisecond) {
		last = zoneStatusJSON(t, sock, "")
		notOK = manyZones - len(last.Zones)
		for _, r := range last.Zones {
			if r.State != "ok" {
				notOK++
			}
		}
		if notOK == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d zones not ok", bound, notOK, manyZones)
		}
	}
	took := time.Since(start)
	t.Logf("xdpns: %d zones ok %v after start (%.0f zones/s)", manyZones, took.Round(time.Millisecond), manyZones/took.Seconds())

	// A zone whose first transfer failed and was retried is counted, not
	// failed: with xdpns's ten transfers at a time against named's
	// transfers-out of ten, named sometimes still counts a finished
	// transfer and answers the next AXFR SERVFAIL (seen in CI, under the
	// other packages' tests). Beyond a few in a hundred, it is a fault.
	retried := 0
	for i, r := range last.Zones {
		if r.Name != name(i) || r.Serial != uint32(1000+i) || r.Source != n.Addr().String() ||
			r.Counters.Full != 1 || r.LastError != "" {
			t.Errorf("zone %d: %+v %+v", i, r, r.Counters)
		}
		if r.Counters.Failures == 0 {
			continue
		}
		retried++
		named := strings.Split(n.Output(1<<20), "\n")
		for _, l := range append(strings.Split(h.stderr.String(), "\n"), named...) {
			if strings.Contains(l, strings.TrimSuffix(name(i), ".")) && !strings.Contains(l, "level=INFO") &&
				!strings.Contains(l, "AXFR started") && !strings.Contains(l, "AXFR ended") {
				t.Logf("zone %d, retried: %s", i, l)
			}
		}
	}
	if retried > manyZones/50 {
		t.Errorf("%d of %d zones needed a second try", retried, manyZones)
	}
	// Answers from a sample of zones, first and last included.
	for _, i := range []int{0, 1, 255, 256, 499, 777, 998, manyZones - 1} {
		// A zone's status says ok a moment before the server has it.
		h.waitAnswer("www."+name(i), addr(i))
		r, err := h.query("www."+name(i), dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 ||
			r.Answer[0].(*dns.A).A.String() != addr(i) {
			t.Errorf("www.%s A: %v %v, want %s", name(i), r, err, addr(i))
		}
		r, err = h.query(name(i), dns.TypeSOA)
		if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != uint32(1000+i) {
			t.Errorf("%s SOA: %v %v", name(i), r, err)
		}
	}
}
