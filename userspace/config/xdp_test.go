package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseXDP(t *testing.T) {
	cfg, err := Parse([]byte(`
server:
  listen: ["198.18.0.1:53", "[2001:2::1]:53", "127.0.0.1:5353"]
xdp:
  interfaces: [eth0, veth-s1]
  mode: native
  pin: /sys/fs/bpf/xdpns/
  index-entries: 100000
  store-blocks: 64
`), "/etc/xdpns/xdpns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := XDP{Interfaces: []string{"eth0", "veth-s1"}, Mode: "native", Pin: "/sys/fs/bpf/xdpns",
		IndexEntries: 100000, StoreBlocks: 64, Line: 5}
	if !reflect.DeepEqual(cfg.XDP, want) {
		t.Errorf("xdp %+v, want %+v", cfg.XDP, want)
	}
	if !cfg.XDP.Enabled() {
		t.Error("not enabled")
	}
	port, addrs := cfg.XDPService()
	if port != 53 || !reflect.DeepEqual(addrs, []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:2::1")}) {
		t.Errorf("service %d %v", port, addrs)
	}

	// Defaults: off, auto, no pin; a lone interface may be a scalar.
	cfg, err = Parse([]byte("xdp:\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XDP.Enabled() || cfg.XDP.Mode != "auto" || cfg.XDP.Pin != "" {
		t.Errorf("default xdp %+v", cfg.XDP)
	}
	cfg, err = Parse([]byte("xdp: {interfaces: eth1, pin: \"\"}\nserver: {listen: [\"0.0.0.0:53\", \"[::]:53\", \"192.0.2.1:53\"]}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.XDP.Interfaces, []string{"eth1"}) {
		t.Errorf("interfaces %q", cfg.XDP.Interfaces)
	}
	if port, addrs := cfg.XDPService(); port != 53 || addrs != nil {
		t.Errorf("wildcards on both families: service %d %v, want any address", port, addrs)
	}
	// An empty list is XDP off.
	cfg, err = Parse([]byte("xdp: {interfaces: []}\nserver: {listen: [\"0.0.0.0:53\"]}\n"), "x.yaml")
	if err != nil || cfg.XDP.Enabled() {
		t.Errorf("empty interfaces: %v, %+v", err, cfg)
	}
	// A wildcard of one family stands for that family's addresses; the
	// other family's are listed.
	for _, tc := range []struct {
		listen string
		want   []netip.Addr
	}{
		{`["0.0.0.0:53", "[2001:2::1]:53", "198.18.0.1:53", "[2001:2::2]:5300"]`,
			[]netip.Addr{netip.MustParseAddr("2001:2::1"), netip.IPv4Unspecified()}},
		{`["[::]:53", "198.18.0.1:53"]`, []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.IPv6Unspecified()}},
		{`["0.0.0.0:53"]`, []netip.Addr{netip.IPv4Unspecified()}},
	} {
		cfg, err = Parse([]byte("xdp: {interfaces: [eth0]}\nserver: {listen: "+tc.listen+"}\n"), "x.yaml")
		if err != nil {
			t.Errorf("%s: %v", tc.listen, err)
			continue
		}
		if port, addrs := cfg.XDPService(); port != 53 || !reflect.DeepEqual(addrs, tc.want) {
			t.Errorf("%s: service %d %v, want 53 %v", tc.listen, port, addrs, tc.want)
		}
	}
}

func TestParseXDPErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "xdp:\n  interface: eth0\n", []string{
			`c.yaml:2: unknown key "interface" in xdp (did you mean "interfaces"?); valid keys: interfaces, mode, pin, index-entries, store-blocks`}},
		{"mode", "xdp:\n  mode: offload\n", []string{`c.yaml:2: xdp.mode: must be one of auto|native|generic, got "offload"`}},
		{"bad names", "xdp:\n  interfaces:\n    - eth0\n    - eth0\n    - a/b\n    - " + strings.Repeat("e", 16) + "\n    - \"\"\n    - [x]\n", []string{
			`c.yaml:4: xdp.interfaces[1]: duplicate interface eth0 (first at line 3)`,
			`c.yaml:5: xdp.interfaces[2]: "a/b" is not an interface name: contains '/'`,
			`c.yaml:6: xdp.interfaces[3]: "eeeeeeeeeeeeeeee" is not an interface name: longer than 15 bytes`,
			`c.yaml:7: xdp.interfaces[4]: "" is not an interface name: empty`,
			`c.yaml:8: xdp.interfaces[5]: must be an interface name, got a list`,
		}},
		{"pin relative", "xdp:\n  pin: bpf/xdpns\n", []string{`c.yaml:2: xdp.pin: "bpf/xdpns" is not an absolute path`}},
		{"sizes alone", "xdp:\n  interfaces: [eth0]\n  index-entries: 1000\n", []string{
			`c.yaml:3: xdp: index-entries and store-blocks are set together (both 0: sized from the zones), got 1000 and 0`}},
		{"sizes range", "xdp:\n  index-entries: -1\n  store-blocks: 100000\n", []string{
			`c.yaml:2: xdp.index-entries: must be between 0 and 67108864, got -1`,
			`c.yaml:3: xdp.store-blocks: must be between 0 and 63295, got 100000`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "c.yaml")
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not Errors", err)
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

func TestXDPServiceManyAddresses(t *testing.T) {
	var b strings.Builder
	b.WriteString("xdp: {interfaces: [eth0]}\nserver:\n  listen:\n")
	for i := range 65 {
		b.WriteString("    - \"198.18.1." + itoa(i+1) + ":53\"\n")
	}
	_, err := Parse([]byte(b.String()), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), "c.yaml:1: xdp: server.listen has 65 addresses on port 53; XDP answers at most 64") {
		t.Errorf("65 addresses: %v", err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
