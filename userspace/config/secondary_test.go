package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const secondary = `xfr:
  state-dir: state
  max-transfers: 4
  max-soa-queries: 8
  timers:
    refresh-min: 30s
    retry-max: 1h
    jitter: 0
  timeouts: {query: 1s, read: 5s, transfer: 1m}
  limits: {max-records: 1000, max-rr-size: 4096, journal-records: 100}
keys:
  - name: XFR.example
    algorithm: HMAC-SHA256
    secret: "c2VjcmV0c2VjcmV0c2VjcmV0"
  - name: down.example.
    algorithm: hmac-md5.sig-alg.reg.int.
    secret-file: keys/down.key
zones:
  - name: example.com
    primaries:
      - address: 192.0.2.1:53
        key: xfr.example.
      - "[2001:db8::1]:5353"
    allow-notify: [192.0.2.0/28, 2001:db8::2]
    axfr-only: true
    timers: {refresh-min: 1m, jitter: 0.2}
    allow-transfer:
      from: [127.0.0.0/8]
      keys: [down.example]
    notify: ["127.0.0.1:5300"]
    notify-key: down.example
  - name: example.net
    file: example.net.zone
    allow-transfer: {keys: down.example.}
control:
  socket: run/control.sock
  group: xdpns
`

func TestParseSecondary(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	// tsig-keygen output.
	keyFile := "key \"down.example\" {\n\talgorithm hmac-md5;\n\tsecret \"ZG93bnNlY3JldA==\";\n};\n"
	if err := os.WriteFile(filepath.Join(dir, "keys/down.key"), []byte(keyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(secondary), filepath.Join(dir, "xdpns.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	zero, fifth := 0.0, 0.2
	wantXfr := Xfr{
		StateDir:      filepath.Join(dir, "state"),
		RuntimeZones:  filepath.Join(dir, "state", RuntimeZonesFile),
		MaxTransfers:  4,
		MaxSOAQueries: 8,
		Timers: Timers{RefreshMin: 30 * time.Second, RefreshMax: 24 * time.Hour, RetryMin: time.Second, RetryMax: time.Hour,
			ExpireMin: time.Minute, ExpireMax: 2160 * time.Hour, Jitter: &zero},
		Timeouts: Timeouts{Query: time.Second, Read: 5 * time.Second, Transfer: time.Minute},
		Limits:   Limits{MaxRecords: 1000, MaxRRSize: 4096, JournalRecords: 100},
	}
	if !reflect.DeepEqual(cfg.Xfr, wantXfr) {
		t.Errorf("xfr:\n got  %+v\n want %+v", cfg.Xfr, wantXfr)
	}
	wantKeys := []Key{
		{Name: "xfr.example.", Algorithm: "hmac-sha256", Secret: "c2VjcmV0c2VjcmV0c2VjcmV0", Line: 12},
		{Name: "down.example.", Algorithm: "hmac-md5", Secret: "ZG93bnNlY3JldA==", Line: 15},
	}
	if !reflect.DeepEqual(cfg.Keys, wantKeys) {
		t.Errorf("keys:\n got  %+v\n want %+v", cfg.Keys, wantKeys)
	}
	wantZones := []Zone{{
		Name: "example.com.",
		Primaries: []Primary{
			{Addr: netip.MustParseAddrPort("192.0.2.1:53"), Key: "xfr.example."},
			{Addr: netip.MustParseAddrPort("[2001:db8::1]:5353")},
		},
		AllowNotify:   []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28"), netip.MustParsePrefix("2001:db8::2/128")},
		AXFROnly:      true,
		Timers:        Timers{RefreshMin: time.Minute, Jitter: &fifth},
		AllowTransfer: AllowTransfer{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Keys: []string{"down.example."}},
		Notify:        []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5300")},
		NotifyKey:     "down.example.",
		Line:          19,
	}, {
		Name:          "example.net.",
		File:          filepath.Join(dir, "example.net.zone"),
		AllowTransfer: AllowTransfer{Keys: []string{"down.example."}},
		Line:          32,
	}}
	if !reflect.DeepEqual(cfg.Zones, wantZones) {
		t.Errorf("zones:\n got  %+v\n want %+v", cfg.Zones, wantZones)
	}
	if !cfg.Zones[0].Secondary() || cfg.Zones[1].Secondary() || cfg.Secondaries() != 1 {
		t.Error("Secondary() wrong")
	}
	if k := cfg.Key("down.example."); k == nil || k.Line != 15 {
		t.Errorf("Key(down.example.) = %+v", k)
	}
	wantCtl := Control{Socket: filepath.Join(dir, "run/control.sock"), Group: "xdpns", GroupLine: 37}
	if cfg.Control != wantCtl {
		t.Errorf("control %+v, want %+v", cfg.Control, wantCtl)
	}
	// Zone timers inherit: merged with the xfr section.
	if m := cfg.Zones[0].Timers.or(cfg.Xfr.Timers); m.RefreshMin != time.Minute || m.RetryMax != time.Hour || *m.Jitter != 0.2 {
		t.Errorf("merged timers %+v", m)
	}
}

func TestParseSecretFile(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"plain": "c2VjcmV0\n", "bad": "not base64!\n", "empty": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := func(file string) string {
		return "keys:\n  - name: k.\n    algorithm: hmac-sha512\n    secret-file: " + file + "\n"
	}
	cfg, err := Parse([]byte(conf("plain")), filepath.Join(dir, "x.yaml"))
	if err != nil || cfg.Keys[0].Secret != "c2VjcmV0" {
		t.Fatalf("plain: %v %+v", err, cfg)
	}
	for file, want := range map[string]string{
		"bad":     "x.yaml:4: keys[0].secret-file: " + dir + "/bad: secret not base64",
		"empty":   "x.yaml:4: keys[0].secret-file: " + dir + "/empty: secret must not be empty",
		"missing": "x.yaml:4: keys[0].secret-file: open " + dir + "/missing: no such file or directory",
	} {
		_, err := Parse([]byte(conf(file)), filepath.Join(dir, "x.yaml"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v\nwant %s", file, err, want)
		}
	}
}

func TestParseSecondaryErrors(t *testing.T) {
	key := "keys:\n  - {name: k., algorithm: hmac-sha256, secret: c2VjcmV0}\n" // lines 1-2
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"file and primaries", "zones:\n  - name: a.\n    file: a\n    primaries: [\"127.0.0.1:53\"]\n", []string{
			`c.yaml:4: zones[0]: has both file and primaries`}},
		{"empty file", "zones:\n  - {name: a., file: \"\"}\n", []string{
			`c.yaml:2: zones[0].file: must not be empty`}},
		{"secondary options on a file zone", "zones:\n  - name: a.\n    file: a\n    allow-notify: [127.0.0.1]\n    axfr-only: true\n    timers: {refresh-min: 1s}\n", []string{
			`c.yaml:4: zones[0].allow-notify: only for a secondary zone (one with primaries)`,
			`c.yaml:5: zones[0].axfr-only: only for a secondary zone`,
			`c.yaml:6: zones[0].timers: only for a secondary zone`}},
		{"no primaries", "zones:\n  - name: a.\n    primaries: []\n", []string{
			`c.yaml:3: zones[0].primaries: needs at least one primary`}},
		{"bad primaries", `zones:
  - name: a.
    primaries:
      - address: localhost:53
      - {key: k.}
      - 127.0.0.1
      - {address: "127.0.0.1:53", port: 53}
      - 127.0.0.1:53
      - [a]
`, []string{
			`c.yaml:4: zones[0].primaries[0].address: bad address "localhost:53": "localhost" is not an IP address`,
			`c.yaml:5: zones[0].primaries[1]: address is required`,
			`c.yaml:5: zones[0].primaries[1].key: key k. is not defined in keys`,
			`c.yaml:6: zones[0].primaries[2].address: bad address "127.0.0.1": want IP:port`,
			`c.yaml:7: unknown key "port" in zones[0].primaries[3]; valid keys: address, key, tls`,
			`c.yaml:8: zones[0].primaries[4]: duplicate primary 127.0.0.1:53 (first at line 7)`,
			`c.yaml:9: zones[0].primaries[5]: must be a mapping of keys, got a list`}},
		{"undefined keys", `zones:
  - name: a.
    primaries: [{address: "127.0.0.1:53", key: nokey}]
    allow-transfer: {keys: [k., other.]}
    notify: ["127.0.0.1:53"]
    notify-key: third
` + strings.ReplaceAll(key, "keys:", "keys: # after the zones"), []string{
			`c.yaml:3: zones[0].primaries[0].key: key nokey. is not defined in keys`,
			`c.yaml:4: zones[0].allow-transfer.keys[1]: key other. is not defined in keys`,
			`c.yaml:6: zones[0].notify-key: key third. is not defined in keys`}},
		{"bad prefixes", "zones:\n  - name: a.\n    primaries: [\"127.0.0.1:53\"]\n    allow-notify: [192.0.2.1/24, nope, \"fe80::1%eth0\", [x]]\n", []string{
			`c.yaml:4: zones[0].allow-notify[0]: bad prefix "192.0.2.1/24": bits set after the prefix length (did you mean 192.0.2.0/24?)`,
			`c.yaml:4: zones[0].allow-notify[1]: bad prefix "nope": want an address or ADDRESS/BITS`,
			`c.yaml:4: zones[0].allow-notify[2]: bad prefix "fe80::1%eth0": no zone index allowed`,
			`c.yaml:4: zones[0].allow-notify[3]: must be an address prefix, got a list`}},
		{"notify", "zones:\n  - name: a.\n    file: a\n    notify: [\"127.0.0.1\", \"127.0.0.1:53\", \"127.0.0.1:53\"]\n  - {name: b., file: b, notify-key: k.}\n" + strings.Replace(key, "keys:", "keys:", 1), []string{
			`c.yaml:4: zones[0].notify[0]: bad address "127.0.0.1": want IP:port`,
			`c.yaml:4: zones[0].notify[2]: duplicate address 127.0.0.1:53`,
			`c.yaml:5: zones[1].notify-key: no notify targets to sign for`}},
		{"allow-transfer", "zones:\n  - name: a.\n    file: a\n    allow-transfer: [127.0.0.1]\n  - name: b.\n    file: b\n    allow-transfer: {form: [127.0.0.1]}\n", []string{
			`c.yaml:4: zones[0].allow-transfer: must be a mapping of keys, got a list`,
			`c.yaml:7: unknown key "form" in zones[1].allow-transfer (did you mean "from"?); valid keys: from, keys`}},
		{"keys", `keys:
  - name: k.
    algorithm: hmac-sha3
    secret: "!!"
  - {algorithm: hmac-sha1, secret: c2VjcmV0}
  - {name: k., secret: c2VjcmV0, secret-file: x}
  - name: "a..b"
    algorithm: hmac-sha1
  - key.example.
  - {name: j., algorithm: hmac-sha1, secret: c2VjcmV0, bits: 256}
`, []string{
			`c.yaml:3: keys[0].algorithm: must be one of hmac-sha256|hmac-sha384|hmac-sha512|hmac-sha224|hmac-sha1|hmac-md5, got "hmac-sha3"`,
			`c.yaml:4: keys[0].secret: not base64`,
			`c.yaml:5: keys[1]: name is required`,
			`c.yaml:6: keys[2].secret-file: open x: no such file or directory`,
			`c.yaml:6: keys[2]: algorithm is required`,
			`c.yaml:6: keys[2]: has both secret and secret-file; give one`,
			`c.yaml:6: keys[2].name: duplicate key k. (first at line 2)`,
			`c.yaml:7: keys[3].name: "a..b" is not a valid key name`,
			`c.yaml:7: keys[3]: secret or secret-file is required`,
			`c.yaml:9: keys[4]: must be a mapping of keys, got "key.example."`,
			`c.yaml:10: unknown key "bits" in keys[5]; valid keys: name, algorithm, secret, secret-file`,
		}},
		{"xfr values", `xfr:
  max-transfers: 0
  max-soa-queries: many
  state-dir: [a]
  timeouts: {query: 2m, read: 1ms, transfer: 1}
  limits: {max-records: 0, max-rr-size: 100, journal-records: -1}
  retries: 3
`, []string{
			`c.yaml:2: xfr.max-transfers: must be between 1 and 10000, got 0`,
			`c.yaml:3: xfr.max-soa-queries: must be an integer, got "many"`,
			`c.yaml:4: xfr.state-dir: must be a string, got a list`,
			`c.yaml:5: xfr.timeouts.query: must be between 10ms and 1m0s, got 2m0s`,
			`c.yaml:5: xfr.timeouts.read: must be between 10ms and 1h0m0s, got 1ms`,
			`c.yaml:5: xfr.timeouts.transfer: duration "1" needs a unit`,
			`c.yaml:6: xfr.limits.max-records: must be between 1 and`,
			`c.yaml:6: xfr.limits.max-rr-size: must be between 512 and 131072, got 100`,
			`c.yaml:6: xfr.limits.journal-records: must be between 0 and`,
			`c.yaml:7: unknown key "retries" in xfr; valid keys: state-dir, max-transfers, max-soa-queries, timers, timeouts, limits, runtime-zones`,
		}},
		{"timers", `xfr:
  timers:
    refresh-min: 2h
    refresh-max: 1h
    retry-min: 48h
    jitter: 0.5
    expire: 1d
zones:
  - name: a.
    primaries: ["127.0.0.1:53"]
    timers:
      expire-max: 30s
      jitter: lots
  - name: b.
    primaries: ["127.0.0.1:53"]
    timers: {retry-max: 2s, retry-min: 1s}
`, []string{
			`c.yaml:4: xfr.timers: refresh-min 2h0m0s is above refresh-max 1h0m0s`,
			`c.yaml:5: xfr.timers: retry-min 48h0m0s is above retry-max 24h0m0s`,
			`c.yaml:6: xfr.timers.jitter: must be at least 0 and below 0.5, got 0.5`,
			`c.yaml:7: unknown key "expire" in xfr.timers; valid keys: refresh-min, refresh-max, retry-min, retry-max, expire-min, expire-max, jitter`,
			`c.yaml:12: zones[0].timers: expire-min 1m0s is above expire-max 30s (with xfr.timers)`,
			`c.yaml:13: zones[0].timers.jitter: must be a number, got "lots"`,
		}},
		{"control", "control:\n  socket: /" + strings.Repeat("s", 110) + "\n  group: [a]\n  mode: 0660\n", []string{
			`c.yaml:2: control.socket: "/` + strings.Repeat("s", 110) + `" is 111 bytes, a unix socket path holds at most 107`,
			`c.yaml:3: control.group: must be a string, got a list`,
			`c.yaml:4: unknown key "mode" in control; valid keys: socket, group`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "c.yaml")
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d:\n got  %s\n want %s", i, lines[i], w)
				}
			}
		})
	}
}

func TestParseControlOff(t *testing.T) {
	cfg, err := Parse([]byte("control: {socket: \"\"}\nxfr: {state-dir: \"\"}\n"), "/etc/xdpns/x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Control.Socket != "" || cfg.Xfr.StateDir != "" {
		t.Errorf("control %+v, state-dir %q: want both off", cfg.Control, cfg.Xfr.StateDir)
	}
}
