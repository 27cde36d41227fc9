package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string // "" when off
	}{
		{"", ""},
		{"metrics:\n", ""},
		{"metrics: {}\n", ""},
		{"metrics:\n  listen: \"\"\n", ""},
		{"metrics:\n  listen:\n", ""},
		{"metrics:\n  listen: 127.0.0.1:9153\n", "127.0.0.1:9153"},
		{"metrics: {listen: \"[::1]:9153\"}\n", "[::1]:9153"},
		{"metrics: {listen: \"0.0.0.0:9153\"}\n", "0.0.0.0:9153"},
		// The DNS port on another address, or the other family's wildcard.
		{"server: {listen: [\"127.0.0.1:53\"]}\nmetrics: {listen: \"127.0.0.2:53\"}\n", "127.0.0.2:53"},
		{"server: {listen: [\"[::]:53\"]}\nmetrics: {listen: \"127.0.0.1:53\"}\n", "127.0.0.1:53"},
	} {
		cfg, err := Parse([]byte(tc.yaml), "x.yaml")
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		var want netip.AddrPort
		if tc.want != "" {
			want = netip.MustParseAddrPort(tc.want)
		}
		if cfg.Metrics.Listen != want || cfg.Metrics.Enabled() != (tc.want != "") {
			t.Errorf("%q: metrics %+v, want %v", tc.yaml, cfg.Metrics, want)
		}
	}
	cfg, err := Parse([]byte("log: {}\nmetrics:\n  listen: 127.0.0.1:9153\n"), "x.yaml")
	if err != nil || cfg.Metrics.Line != 3 {
		t.Errorf("line: %+v %v", cfg, err)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "metrics:\n  listne: 127.0.0.1:9153\n", []string{
			`c.yaml:2: unknown key "listne" in metrics (did you mean "listen"?); valid keys: listen`}},
		{"not a mapping", "metrics: 127.0.0.1:9153\n", []string{
			`c.yaml:1: metrics: must be a mapping of keys, got "127.0.0.1:9153"`}},
		{"host name", "metrics:\n  listen: localhost:9153\n", []string{
			`c.yaml:2: metrics.listen: bad address "localhost:9153": "localhost" is not an IP address`}},
		{"no port", "metrics:\n  listen: 127.0.0.1\n", []string{
			`c.yaml:2: metrics.listen: bad address "127.0.0.1": want IP:port, e.g. 127.0.0.1:53 or [::1]:53`}},
		{"port 0", "metrics:\n  listen: 127.0.0.1:0\n", []string{
			`c.yaml:2: metrics.listen: bad address "127.0.0.1:0": port must be 1..65535, got "0"`}},
		{"port range", "metrics:\n  listen: \"[::1]:65536\"\n", []string{
			`c.yaml:2: metrics.listen: bad address "[::1]:65536": port must be 1..65535, got "65536"`}},
		{"list", "metrics:\n  listen: [\"127.0.0.1:9153\"]\n", []string{
			`c.yaml:2: metrics.listen: must be an address, got a list`}},
		{"url", "metrics:\n  listen: http://127.0.0.1:9153/metrics\n", []string{
			`c.yaml:2: metrics.listen: bad address "http://127.0.0.1:9153/metrics"`}},
		{"DNS port", "metrics:\n  listen: 127.0.0.1:5353\nserver:\n  listen: [\"127.0.0.1:5353\"]\n", []string{
			`c.yaml:2: metrics.listen: 127.0.0.1:5353 takes TCP port 5353 of server.listen 127.0.0.1:5353; use another port`}},
		{"DNS wildcard", "server:\n  listen: [\"[::1]:53\", \"0.0.0.0:53\"]\nmetrics:\n  listen: 192.0.2.1:53\n", []string{
			`c.yaml:4: metrics.listen: 192.0.2.1:53 takes TCP port 53 of server.listen 0.0.0.0:53; use another port`}},
		{"metrics wildcard", "server:\n  listen: [\"[2001:db8::53]:53\"]\nmetrics:\n  listen: \"[::]:53\"\n", []string{
			`c.yaml:4: metrics.listen: [::]:53 takes TCP port 53 of server.listen [2001:db8::53]:53; use another port`}},
		{"default listen", "metrics:\n  listen: 127.0.0.1:53\n", []string{
			`c.yaml:2: metrics.listen: 127.0.0.1:53 takes TCP port 53 of server.listen 127.0.0.1:53`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "c.yaml")
			var errs Errors
			if !errors.As(err, &errs) || cfg != nil {
				t.Fatalf("error %v is not Errors (config %+v)", err, cfg)
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
