package config

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseRRL(t *testing.T) {
	cfg, err := Parse([]byte(`server:
  rrl:
    responses-per-second: 20
    errors-per-second: 0
    window: 5s
    slip: 1
    ipv6-prefix-length: 48
    exempt: [198.18.0.0/24, "2001:2::/48"]
  cookies:
    enabled: true
    secret: 000102030405060708090a0b0c0d0e0f
    require: true
`), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Server.RRL
	if !r.Enabled() || r.ResponsesPerSecond != 20 || r.NXDomainsPerSecond != 20 || r.ErrorsPerSecond != 0 ||
		r.Window != 5*time.Second || r.Slip != 1 || r.IPv4PrefixLen != 24 || r.IPv6PrefixLen != 48 ||
		len(r.Exempt) != 2 || r.Exempt[1] != netip.MustParsePrefix("2001:2::/48") {
		t.Errorf("rrl %+v", r)
	}
	c := cfg.Server.Cookies
	if !c.Enabled || !bytes.Equal(c.Secret, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) || c.Previous != nil || !c.Require {
		t.Errorf("cookies %+v", c)
	}
	if d := Default(); d.Server.RRL.Enabled() || d.Server.Cookies.Enabled {
		t.Error("rrl or cookies on by default")
	}
	for _, tc := range []struct{ yaml, want string }{
		{"server:\n  rrl:\n    slip: 11\n", "x.yaml:3: server.rrl.slip: must be between 0 and 10"},
		{"server:\n  rrl:\n    window: 0s\n", "x.yaml:3: server.rrl.window"},
		{"server:\n  rrl:\n    rate: 5\n", "x.yaml:3: unknown key \"rate\""},
		{"server:\n  rrl:\n    exempt: [198.18.0.1/24]\n", "x.yaml:3: server.rrl.exempt[0]: bad prefix"},
		{"server:\n  cookies:\n    secret: abcd\n", "x.yaml:3: server.cookies.secret: want 16 bytes in hex"},
	} {
		_, err := Parse([]byte(tc.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
