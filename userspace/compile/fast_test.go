package compile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// fastZone holds what the fast path must recognise as not plain, or as a
// NODATA body the shared one is not: SOA names under the origin that
// compress against QNAMEs (ns1, and hostmaster.people below a name
// "people"), names near 255 octets, CNAMEs, a cut with glue, a DNAME, a
// wildcard, a name with an escape, the probe label, TXT and CAA records.
var fastZone = `$ORIGIN fast.test.
$TTL 300
@ SOA ns1.fast.test. hostmaster.people.fast.test. 1 3600 600 86400 60
@ NS ns1
@ A 198.18.0.1
ns1 A 198.18.0.53
ns1 AAAA 2001:2::53
x.ns1 A 198.18.0.54
people TXT "staff"
a.people A 198.18.0.2
hostmaster.people MX 10 ns1
www A 198.18.0.3
www A 198.18.0.4
www TXT "v=spf1 -all" "two strings"
www CAA 0 issue "ca.example"
alias CNAME www
sub NS ns.sub
ns.sub A 198.18.0.5
deep.sub A 198.18.0.6
d DNAME www.fast.test.
*.wild A 198.18.0.7
host.wild A 198.18.0.8
esc\.aped A 198.18.0.9
xdpns-nxd-probe.probed A 198.18.0.10
probed A 198.18.0.11
empty.non.terminal A 198.18.0.12
` + longNames

// longNames: names of 250 to 255 octets, so the probe name below them is
// too long, or only just fits.
var longNames = func() string {
	var b strings.Builder
	l63 := strings.Repeat("a", 63)
	for _, extra := range []int{27, 30, 31, 33, 37} {
		// 3 labels of 63 (192 octets with length bytes) + fast.test. (11)
		// + one label of extra (extra+1) + root.
		b.WriteString(strings.Repeat("b", extra) + "." + l63 + "." + l63 + "." + l63 + " A 198.18.0.13\n")
	}
	return b.String()
}()

// TestFastPathMatchesEngine compiles zones with the fast path and with the
// engine alone: the tables must be the same, entry for entry.
func TestFastPathMatchesEngine(t *testing.T) {
	dir := t.TempDir()
	fast := filepath.Join(dir, "fast.test.zone")
	if err := os.WriteFile(fast, []byte(fastZone), 0o644); err != nil {
		t.Fatal(err)
	}
	zones := map[string]*zone.Zone{"hosts": testenv.HostsZone(t, "hosts.test.", 300)}
	for _, zf := range append(nxdZones, struct{ path, origin string }{fast, "fast.test."}) {
		z, _, err := zone.Load(zf.path, zf.origin, zone.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		zones[zf.path] = z
	}
	defer func() { fastPath = true }()
	for name, z := range zones {
		fastPath = true
		a, err := Build(z)
		if err != nil {
			t.Fatal(err)
		}
		fastPath = false
		b, err := Build(z)
		if err != nil {
			t.Fatal(err)
		}
		if fa, sl := tableString(a), tableString(b); fa != sl {
			t.Errorf("%s: tables differ\nfast:\n%s\nengine:\n%s", name, fa, sl)
		}
	}
}

func TestLabelBelow(t *testing.T) {
	for _, tc := range []struct {
		name, origin, want string
		ok                 bool
	}{
		{"a.b.fast.test.", "fast.test.", "b", true},
		{"B.Fast.Test.", "fast.test.", "b", true},
		{"fast.test.", "fast.test.", "", false},
		{"xfast.test.", "fast.test.", "", false},
		{"a.other.test.", "fast.test.", "", false},
		{"a.b.", ".", "b", true},
		{`a\.fast.test.`, "test.", `\`, true},
	} {
		got, ok := labelBelow(tc.name, tc.origin)
		if got != tc.want || ok != tc.ok {
			t.Errorf("labelBelow(%q, %q) = %q, %v; want %q, %v", tc.name, tc.origin, got, ok, tc.want, tc.ok)
		}
	}
}
