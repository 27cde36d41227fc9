package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const full = `# a full configuration
server:
  listen: ["127.0.0.1:5353", "[::1]:5353"]
  udp-payload: 1400
  udp-sockets: 2
  tcp-idle-timeout: 30s
  tcp-max-connections: 50
  nsid: ns1
  identity: ns1.example
  version: "1.0"
  allow-include: true
log:
  level: debug
  format: json
zones:
  - name: Example.COM
    file: zones/example.com.zone
  - name: example.net.
    file: /abs/example.net.zone
`

func TestParseFull(t *testing.T) {
	cfg, err := Parse([]byte(full), "conf/xdpns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	*want = Config{
		File:    "conf/xdpns.yaml",
		Xfr:     want.Xfr,
		Control: want.Control,
		XDP:     want.XDP,
		Server: Server{
			Listen: []netip.AddrPort{
				netip.MustParseAddrPort("127.0.0.1:5353"),
				netip.MustParseAddrPort("[::1]:5353"),
			},
			UDPPayload:        1400,
			UDPSockets:        2,
			TCPIdleTimeout:    30 * time.Second,
			TCPMaxConnections: 50,
			NSID:              "ns1",
			Identity:          "ns1.example",
			Version:           "1.0",
			AllowInclude:      true,
		},
		Log: Log{Level: slog.LevelDebug, Format: "json"},
		Zones: []Zone{
			{Name: "example.com.", File: "conf/zones/example.com.zone", Line: 16},
			{Name: "example.net.", File: "/abs/example.net.zone", Line: 18},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
	if z := cfg.Zone("example.net."); z == nil || z.Line != 18 {
		t.Errorf("Zone(example.net.) = %+v", z)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "---\n", "server:\nlog:\nzones:\n", "{}"} {
		cfg, err := Parse([]byte(text), "x.yaml")
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		want := Default()
		want.File = "x.yaml"
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("%q: got %+v, want defaults %+v", text, cfg, want)
		}
	}
}

func TestParseForms(t *testing.T) {
	// A single listen address may be a scalar; anchors and aliases work;
	// empty strings turn features off.
	cfg, err := Parse([]byte(`
server:
  listen: 10.0.0.1:53
  nsid:
  identity: &id ns1
  version: *id
zones:
  - {name: ".", file: root.zone}
  - name: 0/25.2.0.192.in-addr.arpa
    file: rev.zone
`), "/etc/xdpns/xdpns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Server.Listen; len(got) != 1 || got[0] != netip.MustParseAddrPort("10.0.0.1:53") {
		t.Errorf("listen = %v", got)
	}
	if cfg.Server.NSID != "" || cfg.Server.Version != "ns1" {
		t.Errorf("nsid %q version %q", cfg.Server.NSID, cfg.Server.Version)
	}
	if cfg.Zones[0].Name != "." || cfg.Zones[0].File != "/etc/xdpns/root.zone" {
		t.Errorf("zone 0 = %+v", cfg.Zones[0])
	}
	if cfg.Zones[1].Name != "0/25.2.0.192.in-addr.arpa." {
		t.Errorf("zone 1 = %+v", cfg.Zones[1])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // one per error, in order; each must be contained in its line
	}{
		{"syntax", "server:\n  listen: [\n", []string{`c.yaml:2: did not find expected node content`}},
		{"tab indent", "server:\n\tlisten: x\n", []string{`c.yaml:2: found character that cannot start any token`}},
		{"two documents", "log: {}\n---\nlog: {}\n", []string{`c.yaml:2: only one YAML document is allowed`}},
		{"root not mapping", "- a\n- b\n", []string{`c.yaml:1: the top level: must be a mapping of keys, got a list`}},
		{"unknown top key", "server: {}\nzone:\n  - name: a.\n", []string{
			`c.yaml:2: unknown key "zone" at the top level (did you mean "zones"?); valid keys: server, log, xfr, keys, tls, zones, control, xdp, metrics, templates`}},
		{"unknown server key", "server:\n  listne: [\"127.0.0.1:53\"]\n", []string{
			`c.yaml:2: unknown key "listne" in server (did you mean "listen"?); valid keys: listen, udp-payload, udp-sockets, tcp-idle-timeout, tcp-max-connections, nsid, identity, version, allow-include`}},
		{"unknown key no suggestion", "log:\n  colour: red\n", []string{
			`c.yaml:2: unknown key "colour" in log; valid keys: level, format`}},
		{"unknown zone key", "zones:\n  - name: a.\n    file: a\n    primary: 1.2.3.4\n", []string{
			`c.yaml:4: unknown key "primary" in zones[0] (did you mean "primaries"?); valid keys: name, file, primaries, allow-notify, axfr-only, timers, allow-transfer, notify, notify-key`}},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", []string{`c.yaml:3: log: duplicate key "level" (first at line 2)`}},
		{"duplicate top key", "log: {}\nlog: {}\n", []string{`c.yaml:2: the top level: duplicate key "log" (first at line 1)`}},
		{"complex key", "? [a]\n: b\n", []string{`c.yaml:1: the top level: keys must be plain words, got a list`}},
		{"section not mapping", "server: yes\n", []string{`c.yaml:1: server: must be a mapping of keys, got "yes"`}},
		{"bad listen", "server:\n  listen: [\"localhost:53\", \"127.0.0.1\", \"127.0.0.1:0\", \"127.0.0.1:70000\", \"[::1]:53\", \"::1:53\"]\n", []string{
			`c.yaml:2: server.listen[0]: bad address "localhost:53": "localhost" is not an IP address`,
			`c.yaml:2: server.listen[1]: bad address "127.0.0.1": want IP:port`,
			`c.yaml:2: server.listen[2]: bad address "127.0.0.1:0": port must be 1..65535, got "0"`,
			`c.yaml:2: server.listen[3]: bad address "127.0.0.1:70000": port must be 1..65535, got "70000"`,
			`c.yaml:2: server.listen[5]: bad address "::1:53": want IP:port`,
		}},
		{"duplicate listen", "server:\n  listen:\n    - 127.0.0.1:53\n    - 127.0.0.1:53\n", []string{
			`c.yaml:4: server.listen[1]: duplicate address 127.0.0.1:53 (first at line 3)`}},
		{"empty listen", "server:\n  listen: []\n", []string{`c.yaml:2: server.listen: needs at least one address`}},
		{"listen mapping", "server:\n  listen: {a: b}\n", []string{`c.yaml:2: server.listen: must be a list, got a mapping`}},
		{"listen item list", "server:\n  listen: [[a]]\n", []string{`c.yaml:2: server.listen[0]: must be an address, got a list`}},
		{"payload range", "server:\n  udp-payload: 100\n", []string{`c.yaml:2: server.udp-payload: must be between 512 and 4096, got 100`}},
		{"payload high", "server:\n  udp-payload: 65535\n", []string{`c.yaml:2: server.udp-payload: must be between 512 and 4096, got 65535`}},
		{"payload text", "server:\n  udp-payload: big\n", []string{`c.yaml:2: server.udp-payload: must be an integer, got "big"`}},
		{"payload float", "server:\n  udp-payload: 1232.5\n", []string{`c.yaml:2: server.udp-payload: must be an integer, got "1232.5"`}},
		{"payload quoted", "server:\n  udp-payload: \"1232\"\n", []string{`c.yaml:2: server.udp-payload: must be an integer, got "1232"`}},
		{"sockets negative", "server:\n  udp-sockets: -1\n", []string{`c.yaml:2: server.udp-sockets: must be between 0 and 1024, got -1`}},
		{"max conns zero", "server:\n  tcp-max-connections: 0\n", []string{`c.yaml:2: server.tcp-max-connections: must be between 1 and 1048576, got 0`}},
		{"duration no unit", "server:\n  tcp-idle-timeout: 10\n", []string{`c.yaml:2: server.tcp-idle-timeout: duration "10" needs a unit, e.g. 10s`}},
		{"duration bad", "server:\n  tcp-idle-timeout: ten seconds\n", []string{`c.yaml:2: server.tcp-idle-timeout: bad duration "ten seconds"`}},
		{"duration range", "server:\n  tcp-idle-timeout: 2h\n", []string{`c.yaml:2: server.tcp-idle-timeout: must be between 100ms and 1h0m0s, got 2h0m0s`}},
		{"duration negative", "server:\n  tcp-idle-timeout: -1s\n", []string{`c.yaml:2: server.tcp-idle-timeout: must be between`}},
		{"bool", "server:\n  allow-include: yes\n", []string{`c.yaml:2: server.allow-include: must be true or false, got "yes"`}},
		{"string list", "server:\n  nsid: [a]\n", []string{`c.yaml:2: server.nsid: must be a string, got a list`}},
		{"string too long", "server:\n  version: " + strings.Repeat("v", 256) + "\n", []string{`c.yaml:2: server.version: at most 255 bytes, got 256`}},
		{"log level", "log:\n  level: verbose\n", []string{`c.yaml:2: log.level: must be one of debug|info|warn|error, got "verbose"`}},
		{"log format", "log:\n  format: xml\n", []string{`c.yaml:2: log.format: must be one of text|json, got "xml"`}},
		{"zones mapping", "zones:\n  a.: a.zone\n", []string{`c.yaml:2: zones: must be a list, got a mapping`}},
		{"zone scalar", "zones:\n  - example.com.\n", []string{`c.yaml:2: zones[0]: must be a mapping of keys, got "example.com."`}},
		{"zone missing fields", "zones:\n  - name: a.\n  - file: b.zone\n  -\n", []string{
			`c.yaml:2: zones[0]: needs file (a zone served from a file) or primaries (a secondary zone)`,
			`c.yaml:3: zones[1]: name is required`,
			`c.yaml:4: zones[2]: name is required`,
			`c.yaml:4: zones[2]: needs file (a zone served from a file) or primaries (a secondary zone)`,
		}},
		{"zone empty name", "zones:\n  - name: \"\"\n    file: a\n", []string{`c.yaml:2: zones[0].name: must not be empty`}},
		{"zone bad names", `zones:
  - {name: "a..b.", file: a}
  - {name: "exa mple.com.", file: a}
  - {name: "ex\u00e4mple.com.", file: a}
  - {name: "*.example.com.", file: a}
  - {name: "` + strings.Repeat("a", 64) + `.com.", file: a}
  - {name: [a], file: a}
`, []string{
			`c.yaml:2: zones[0].name: "a..b." is not a valid domain name: an empty label`,
			`c.yaml:3: zones[1].name: "exa mple.com." is not a valid domain name: blank or control character ' '`,
			`c.yaml:4: zones[2].name: "exämple.com." is not a valid domain name: non-ASCII character 'ä' (write IDNs in their xn-- form)`,
			`c.yaml:5: zones[3].name: "*.example.com." is not a valid domain name: a zone name cannot hold a wildcard label`,
			`c.yaml:6: zones[4].name: "` + strings.Repeat("a", 64) + `.com." is not a valid domain name: an empty label, a label longer than 63 bytes`,
			`c.yaml:7: zones[5].name: must be a domain name, got a list`,
		}},
		{"duplicate zone", "zones:\n  - name: example.com.\n    file: a\n  - name: EXAMPLE.com\n    file: b\n", []string{
			`c.yaml:4: zones[1].name: duplicate zone example.com. (first at line 2)`}},
		{"many at once", `server:
  listen: ["127.0.0.1:99999"]
  udp-payload: 1
  bogus: 1
log:
  level: loud
zones:
  - name: a.
    file: a
  - name: a.
    file: b
`, []string{
			`c.yaml:2: server.listen[0]`,
			`c.yaml:3: server.udp-payload`,
			`c.yaml:4: unknown key "bogus" in server`,
			`c.yaml:6: log.level`,
			`c.yaml:10: zones[1].name: duplicate zone a.`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "c.yaml")
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("config returned with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(errs) || len(lines) != len(tc.want) {
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

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "xdpns.yaml")
	if err := os.WriteFile(path, []byte("zones:\n  - name: example.com.\n    file: z/example.com.zone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Zones[0].File, filepath.Join(dir, "z/example.com.zone"); got != want {
		t.Errorf("zone file %q, want %q", got, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("log:\n  level: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Load error %v does not name %s:2", err, path)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"listen", "listne", 2}, {"zone", "zones", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
