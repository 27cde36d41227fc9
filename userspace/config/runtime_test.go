package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const runtimeBase = `xfr:
  state-dir: /var/lib/x/zones
keys:
  - name: k1
    algorithm: hmac-sha256
    secret: "c2VjcmV0c2VjcmV0c2VjcmV0"
zones:
  - name: in.yaml.
    primaries: [192.0.2.1:53]
`

func runtimeCfg(t *testing.T) *Config {
	t.Helper()
	cfg, err := Parse([]byte(runtimeBase), "/etc/x/xdpns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRuntimeZonesPath(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"", filepath.Join(DefaultStateDir, RuntimeZonesFile)},
		{"xfr: {state-dir: st}", "/etc/x/st/" + RuntimeZonesFile},
		{"xfr: {runtime-zones: rt.yaml}", "/etc/x/rt.yaml"},
		{"xfr: {runtime-zones: ''}", ""},
		{"xfr: {state-dir: ''}", ""},
	} {
		cfg, err := Parse([]byte(tc.yaml), "/etc/x/xdpns.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Xfr.RuntimeZones != tc.want {
			t.Errorf("%q: runtime-zones %q, want %q", tc.yaml, cfg.Xfr.RuntimeZones, tc.want)
		}
	}
}

func TestRuntimeZonesRoundTrip(t *testing.T) {
	cfg := runtimeCfg(t)
	var zones []RuntimeZone
	for _, req := range []RuntimeZoneRequest{
		{Name: "a.example", Primaries: []string{"127.0.0.1", "[::1]:5353"}, Key: "k1"},
		{Name: "B.example.", Owner: "catalog:cat.example.", Primaries: []string{"127.0.0.2:53"}, AllowNotify: []string{"10.0.0.0/8"},
			AXFROnly: true, AllowTransfer: []string{"127.0.0.0/8"}, TransferKeys: []string{"k1"}, Notify: []string{"127.0.0.9"}, NotifyKey: "k1"},
	} {
		z, err := NewRuntimeZone(req, cfg)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		zones = append(zones, z)
	}
	if zones[0].Name != "a.example." || zones[0].Primaries[0].Addr.String() != "127.0.0.1:53" || zones[0].Primaries[1].Key != "k1." {
		t.Errorf("zone a: %+v", zones[0])
	}
	data := MarshalRuntimeZones(zones)
	back, shadowed, err := ParseRuntimeZones(data, "rt.yaml", cfg)
	if err != nil || len(shadowed) > 0 {
		t.Fatalf("parse back: %v %v\n%s", err, shadowed, data)
	}
	for i := range back {
		back[i].Line = 0
	}
	if !reflect.DeepEqual(back, zones) {
		t.Errorf("round trip:\n got %+v\nwant %+v\n%s", back, zones, data)
	}
}

func TestNewRuntimeZoneErrors(t *testing.T) {
	cfg := runtimeCfg(t)
	for _, tc := range []struct {
		req  RuntimeZoneRequest
		want string
	}{
		{RuntimeZoneRequest{Name: "", Primaries: []string{"127.0.0.1"}}, "name: must not be empty"},
		{RuntimeZoneRequest{Name: "a b", Primaries: []string{"127.0.0.1"}}, "not a valid domain name"},
		{RuntimeZoneRequest{Name: "a.example"}, "needs at least one primary"},
		{RuntimeZoneRequest{Name: "a.example", Primaries: []string{"ns1.example:53"}}, `"ns1.example" is not an IP address`},
		{RuntimeZoneRequest{Name: "a.example", Primaries: []string{"127.0.0.1:0"}}, "port must be 1..65535"},
		{RuntimeZoneRequest{Name: "a.example", Primaries: []string{"127.0.0.1"}, Key: "nokey"}, "key nokey. is not defined in keys"},
		{RuntimeZoneRequest{Name: "a.example", Primaries: []string{"127.0.0.1"}, AllowNotify: []string{"10.0.0.1/8"}}, "bits set after the prefix length"},
		{RuntimeZoneRequest{Name: "a.example", Primaries: []string{"127.0.0.1"}, NotifyKey: "k1"}, "no notify targets"},
	} {
		_, err := NewRuntimeZone(tc.req, cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.req, err, tc.want)
		}
	}
}

func TestParseRuntimeZonesErrors(t *testing.T) {
	cfg := runtimeCfg(t)
	for _, tc := range []struct{ text, want string }{
		{"zones:\n  - name: a.\n    primaries: [127.0.0.1:53]\n  - name: a.\n    primaries: [127.0.0.1:53]\n", "rt.yaml:4: zones[1].name: duplicate zone a. (first at line 2)"},
		{"zones:\n  - name: a.\n    file: a.zone\n", "rt.yaml:3: zones[0].file: not for a zone added at run time"},
		{"zones:\n  - name: a.\n    primaries: [{address: 127.0.0.1:53, key: k2}]\n", "rt.yaml:3: zones[0].primaries[0].key: key k2. is not defined in keys"},
		{"zones:\n  - name: a.\n    primaries: [127.0.0.1:53\n", "rt.yaml:2:"},
		{"zone:\n", "rt.yaml:1: unknown key"},
	} {
		_, _, err := ParseRuntimeZones([]byte(tc.text), "rt.yaml", cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, tc.want)
		}
	}
	// A zone the configuration has: dropped, said where.
	zones, shadowed, err := ParseRuntimeZones([]byte("zones:\n  - name: b.\n    primaries: [127.0.0.1:53]\n  - name: in.yaml.\n    primaries: [127.0.0.1:53]\n"), "rt.yaml", cfg)
	if err != nil || len(zones) != 1 || zones[0].Name != "b." || len(shadowed) != 1 ||
		!strings.Contains(shadowed[0].Error(), "rt.yaml:4: zone in.yaml.: also in /etc/x/xdpns.yaml:8") {
		t.Errorf("shadowed: %v %v %v", zones, shadowed, err)
	}
	if zones, _, err := ParseRuntimeZones(nil, "rt.yaml", cfg); err != nil || zones != nil {
		t.Errorf("empty file: %v %v", zones, err)
	}
}

// BenchmarkParseRuntimeZones: reading a run-time zones file of 10,000
// zones at start.
func BenchmarkParseRuntimeZones(b *testing.B) {
	cfg, err := Parse([]byte(runtimeBase), "/etc/x/xdpns.yaml")
	if err != nil {
		b.Fatal(err)
	}
	zones := make([]RuntimeZone, 10000)
	for i := range zones {
		z, err := NewRuntimeZone(RuntimeZoneRequest{Name: fmt.Sprintf("z%05d.example.", i), Primaries: []string{"192.0.2.1"}, Key: "k1"}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		zones[i] = z
	}
	data := MarshalRuntimeZones(zones)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		got, _, err := ParseRuntimeZones(data, "rt.yaml", cfg)
		if err != nil || len(got) != len(zones) {
			b.Fatal(len(got), err)
		}
	}
}
