package zone_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
	"github.com/xdpns/xdpns/userspace/zone"
)

// genSOA is a zone apex for the $GENERATE TTL cases, with no TTLs of its own.
const genSOA = "@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n"

// generateTTLCases: the TTL of each record, as named-checkzone 9.18 prints
// it (-D -o -) for the same files (TestGenerateTTLsMatchBIND checks that
// again where named-checkzone is installed). want maps owner (relative to
// example.) to TTL; wantErr, if set, is part of the error Load must return
// (named-checkzone fails these too).
var generateTTLCases = []struct {
	name    string
	text    string
	include map[string]string // more files beside main.zone
	want    map[string]uint32
	wantErr string
}{
	{name: "explicit TTL, with class before or after it",
		text: "$ORIGIN example.\n$TTL 300\n" + genSOA +
			"$GENERATE 1-2 a$ 77 A 198.18.1.$\n$GENERATE 1-2 b$ 77 IN A 198.18.2.$\n$GENERATE 1-2 c$ IN 1m A 198.18.3.$\nd A 198.18.4.1\n",
		want: map[string]uint32{"a1": 77, "a2": 77, "b1": 77, "b2": 77, "c1": 60, "c2": 60, "d": 300, "ns": 300, "@": 300}},
	{name: "no TTL after $TTL",
		text: "$ORIGIN example.\n$TTL 300\n" + genSOA +
			"$GENERATE 1-2 a$ A 198.18.1.$\n$generate 1-5/2 b${0,3,d} IN A 198.18.2.$\n",
		want: map[string]uint32{"a1": 300, "a2": 300, "b001": 300, "b003": 300, "b005": 300, "ns": 300, "@": 300}},
	{name: "no TTL, no $TTL: the last explicit TTL (RFC 1035)",
		text: "$ORIGIN example.\n@ 500 SOA ns h 1 2 3 4 5\n@ NS ns\nns 600 A 198.18.0.1\n" +
			"$GENERATE 1-2 a$ A 198.18.1.$\nd A 198.18.4.1\ne 700 A 198.18.4.2\n$GENERATE 1-2 b$ A 198.18.2.$\n",
		want: map[string]uint32{"@": 500, "ns": 600, "a1": 600, "a2": 600, "d": 600, "e": 700, "b1": 700, "b2": 700}},
	{name: "$TTL wins over an earlier explicit TTL",
		text: "$ORIGIN example.\n$TTL 300\n@ 500 SOA ns h 1 2 3 4 5\n@ 500 NS ns\nns 600 A 198.18.0.1\n$GENERATE 1-2 a$ A 198.18.1.$\nd A 198.18.4.1\n",
		want: map[string]uint32{"@": 500, "ns": 600, "a1": 300, "a2": 300, "d": 300}},
	{name: "a $GENERATE TTL is the default after it without $TTL",
		text: "$ORIGIN example.\n@ 500 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n$GENERATE 1-2 a$ 77 A 198.18.1.$\nd A 198.18.4.1\n\tTXT \"x\"\n(e A 198.18.4.2)\n",
		want: map[string]uint32{"@": 500, "ns": 500, "a1": 77, "a2": 77, "d": 77, "e": 77}},
	{name: "a $GENERATE TTL is not the default after it with $TTL",
		text: "$ORIGIN example.\n$TTL 300\n" + genSOA + "$GENERATE 1-2 a$ 77 A 198.18.1.$\nd A 198.18.4.1\n",
		want: map[string]uint32{"@": 300, "ns": 300, "a1": 77, "a2": 77, "d": 300}},
	{name: "a later $TTL",
		text: "$ORIGIN example.\n$TTL 300\n" + genSOA + "$GENERATE 1-2 a$ A 198.18.1.$\n$TTL 1h\n$GENERATE 1-2 b$ A 198.18.2.$\nd A 198.18.4.1\n",
		want: map[string]uint32{"@": 300, "ns": 300, "a1": 300, "a2": 300, "b1": 3600, "b2": 3600, "d": 3600}},
	{name: "reverse zone",
		text: "$TTL 120\n" + genSOA + "$GENERATE 1-3 $ PTR host$.example.\n$GENERATE 4-5 $ 60 PTR host$.example.\n",
		want: map[string]uint32{"@": 120, "ns": 120, "1": 120, "2": 120, "3": 120, "4": 60, "5": 60}},
	{name: "$TTL set in an included file holds after it",
		include: map[string]string{"inc.zone": "$TTL 900\ni A 198.18.5.1\n$GENERATE 1-2 g$ A 198.18.6.$\n"},
		text:    "$ORIGIN example.\n$TTL 300\n" + genSOA + "$INCLUDE inc.zone\n$GENERATE 1-2 a$ A 198.18.1.$\nd A 198.18.4.1\n",
		want:    map[string]uint32{"@": 300, "ns": 300, "i": 900, "g1": 900, "g2": 900, "a1": 900, "a2": 900, "d": 900}},
	{name: "an explicit TTL in an included file holds after it without $TTL",
		include: map[string]string{"inc.zone": "i 800 A 198.18.5.2\n$GENERATE 1-2 h$ A 198.18.7.$\n"},
		text:    "$ORIGIN example.\n@ 500 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n$INCLUDE inc.zone\n$GENERATE 1-2 a$ A 198.18.1.$\nd A 198.18.4.1\n",
		want:    map[string]uint32{"@": 500, "ns": 500, "i": 800, "h1": 800, "h2": 800, "a1": 800, "a2": 800, "d": 800}},
	{name: "no TTL known at the $GENERATE",
		text:    "$ORIGIN example.\n$GENERATE 1-2 a$ A 198.18.1.$\n$TTL 300\n" + genSOA,
		wantErr: "main.zone:2: $GENERATE without a TTL"},
}

func writeGenerateCase(t *testing.T, dir, text string, include map[string]string) string {
	t.Helper()
	for name, body := range include {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "main.zone")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadTTLs loads main.zone and returns its records (see rrKey) with their
// TTLs.
func loadTTLs(t *testing.T, path string) (map[string]uint32, error) {
	t.Helper()
	z, _, err := zone.Load(path, "example.", zone.LoadOptions{AllowInclude: true})
	if err != nil {
		return nil, err
	}
	out := map[string]uint32{}
	for _, rr := range z.Records() {
		out[rrKey(rr)] = rr.Header().Ttl
	}
	return out, nil
}

// rrKey is rr in presentation form without its TTL.
func rrKey(rr dns.RR) string {
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	return c.String()
}

func TestGenerateTTLs(t *testing.T) {
	for _, c := range generateTTLCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := loadTTLs(t, writeGenerateCase(t, t.TempDir(), c.text, c.include))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			byOwner := map[string]uint32{}
			for k, ttl := range got {
				owner := strings.TrimSuffix(strings.Fields(k)[0], "example.")
				owner = strings.TrimSuffix(owner, ".")
				if owner == "" {
					owner = "@"
				}
				if prev, ok := byOwner[owner]; ok && prev != ttl {
					t.Errorf("%s: TTLs %d and %d", owner, prev, ttl)
				}
				byOwner[owner] = ttl
			}
			for owner, ttl := range c.want {
				if g, ok := byOwner[owner]; !ok || g != ttl {
					t.Errorf("%s: TTL %d (present %v), want %d", owner, g, ok, ttl)
				}
			}
			for owner := range byOwner {
				if _, ok := c.want[owner]; !ok {
					t.Errorf("%s: not expected", owner)
				}
			}
		})
	}
}

// Every record of every case has the TTL named-checkzone gives it.
func TestGenerateTTLsMatchBIND(t *testing.T) {
	bin := testenv.RequireBinary(t, "named-checkzone")
	for _, c := range generateTTLCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeGenerateCase(t, dir, c.text, c.include)
			got, err := loadTTLs(t, p)
			// named-checkzone reads $INCLUDE relative to its working
			// directory, xdpns relative to the including file.
			cmd := exec.Command(bin, "-D", "-o", "-", "example.", p)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			bindErr := cmd.Run()
			if (err != nil) != (bindErr != nil) {
				t.Fatalf("xdpns: %v; named-checkzone: %v\n%s", err, bindErr, stderr.String())
			}
			if err != nil {
				return
			}
			want := map[string]uint32{}
			zp := dns.NewZoneParser(&stdout, ".", "named-checkzone")
			for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
				want[rrKey(rr)] = rr.Header().Ttl
			}
			if err := zp.Err(); err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("named-checkzone printed no records:\n%s", stderr.String())
			}
			var keys []string
			for k := range want {
				keys = append(keys, k)
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				g, gok := got[k]
				w, wok := want[k]
				if g != w || gok != wok {
					t.Errorf("%s: xdpns TTL %d (present %v), named-checkzone %d (present %v)", k, g, gok, w, wok)
				}
			}
		})
	}
}

// LoadOptions.DefaultTTL is in effect from the start, for $GENERATE too.
func TestGenerateDefaultTTLOption(t *testing.T) {
	text := "$ORIGIN example.\n$GENERATE 1-2 a$ A 198.18.1.$\n" + genSOA + "$GENERATE 1-2 b$ 40 A 198.18.2.$\nc A 198.18.3.1\n"
	z, _, err := zone.Parse(strings.NewReader(text), "t.zone", "example.", zone.LoadOptions{DefaultTTL: 30})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{"a1.example.": 30, "a2.example.": 30, "example.": 30, "ns.example.": 30, "b1.example.": 40, "b2.example.": 40, "c.example.": 40}
	for _, rr := range z.Records() {
		if w, ok := want[rr.Header().Name]; !ok || rr.Header().Ttl != w {
			t.Errorf("%s: TTL %d, want %d", rr.Header().Name, rr.Header().Ttl, w)
		}
	}
}
