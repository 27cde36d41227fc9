package config

import (
	"encoding/hex"
	"net/netip"
	"time"

	"go.yaml.in/yaml/v3"
)

// RRL is response rate limiting of UDP answers (server.rrl, docs/rrl.md),
// in XDP and in the Go server alike. All rates 0 (the default): off.
type RRL struct {
	// ResponsesPerSecond, NXDomainsPerSecond and ErrorsPerSecond are the
	// budgets of one client network for answers (NOERROR), NXDOMAIN and
	// every other RCODE. NXDomains and Errors default to Responses; 0 leaves
	// that kind unlimited.
	ResponsesPerSecond, NXDomainsPerSecond, ErrorsPerSecond uint32
	// Window is the burst a quiet network may send, in seconds of its rate.
	Window time.Duration
	// Slip: every Slip-th response over the limit is sent truncated (TC=1),
	// the others dropped; 0 drops them all.
	Slip uint32
	// IPv4PrefixLen, IPv6PrefixLen make a client network (24, 56).
	IPv4PrefixLen, IPv6PrefixLen int
	// Exempt networks are never limited.
	Exempt []netip.Prefix
}

// Enabled reports whether any budget is set.
func (r *RRL) Enabled() bool {
	return r.ResponsesPerSecond > 0 || r.NXDomainsPerSecond > 0 || r.ErrorsPerSecond > 0
}

// Cookies are DNS cookies (RFC 7873, server cookies of RFC 9018) in
// answers (server.cookies, docs/rrl.md).
type Cookies struct {
	Enabled bool
	// Secret is the SipHash-2-4 key of the server cookies (16 bytes);
	// empty with Enabled: a random one at start.
	Secret []byte
	// Previous is the secret before the last rotation: cookies made with
	// it are still accepted (RFC 9018 §4.4 rollover).
	Previous []byte
	// Require answers BADCOOKIE to UDP queries with a client cookie and no
	// valid server cookie (RFC 7873 §5.2.3).
	Require bool
	// Line is where server.cookies is set (or 0), for messages about it.
	Line int
}

// RRL and cookie limits.
const (
	maxRRLRate       = 1_000_000
	maxRRLSlip       = 10
	maxRRLWindow     = time.Hour
	cookieSecret     = 16               // bytes of a SipHash-2-4 key
	defaultRRLWindow = 15 * time.Second // BIND's
	defaultRRLSlip   = 2
)

func (d *decoder) rrl(n *yaml.Node, r *RRL) {
	nx, errs := int64(-1), int64(-1)
	r.Window, r.Slip, r.IPv4PrefixLen, r.IPv6PrefixLen = defaultRRLWindow, defaultRRLSlip, 24, 56
	d.mapping(n, "server.rrl", []field{
		{"responses-per-second", func(v *yaml.Node) {
			intIn(d, v, "server.rrl.responses-per-second", 0, maxRRLRate, &r.ResponsesPerSecond)
		}},
		{"nxdomains-per-second", func(v *yaml.Node) {
			intIn(d, v, "server.rrl.nxdomains-per-second", 0, maxRRLRate, &nx)
		}},
		{"errors-per-second", func(v *yaml.Node) {
			intIn(d, v, "server.rrl.errors-per-second", 0, maxRRLRate, &errs)
		}},
		{"window", func(v *yaml.Node) { d.duration(v, "server.rrl.window", time.Second, maxRRLWindow, &r.Window) }},
		{"slip", func(v *yaml.Node) { intIn(d, v, "server.rrl.slip", 0, maxRRLSlip, &r.Slip) }},
		{"ipv4-prefix-length", func(v *yaml.Node) { intIn(d, v, "server.rrl.ipv4-prefix-length", 8, 32, &r.IPv4PrefixLen) }},
		{"ipv6-prefix-length", func(v *yaml.Node) { intIn(d, v, "server.rrl.ipv6-prefix-length", 16, 128, &r.IPv6PrefixLen) }},
		{"exempt", func(v *yaml.Node) { r.Exempt = d.prefixes(v, "server.rrl.exempt") }},
	})
	r.NXDomainsPerSecond, r.ErrorsPerSecond = r.ResponsesPerSecond, r.ResponsesPerSecond
	if nx >= 0 {
		r.NXDomainsPerSecond = uint32(nx)
	}
	if errs >= 0 {
		r.ErrorsPerSecond = uint32(errs)
	}
}

func (d *decoder) cookies(n *yaml.Node, c *Cookies) {
	secret := func(path string, dst *[]byte) func(v *yaml.Node) {
		return func(v *yaml.Node) {
			var s string
			d.str(v, path, 2*cookieSecret, &s)
			if s == "" {
				return
			}
			b, err := hex.DecodeString(s)
			if err != nil || len(b) != cookieSecret {
				d.errorf(resolve(v).Line, "%s: want %d bytes in hex (%d digits), e.g. from `openssl rand -hex 16`", path, cookieSecret, 2*cookieSecret)
				return
			}
			*dst = b
		}
	}
	c.Line = resolve(n).Line
	d.mapping(n, "server.cookies", []field{
		{"enabled", func(v *yaml.Node) { d.boolean(v, "server.cookies.enabled", &c.Enabled) }},
		{"secret", secret("server.cookies.secret", &c.Secret)},
		{"previous-secret", secret("server.cookies.previous-secret", &c.Previous)},
		{"require", func(v *yaml.Node) { d.boolean(v, "server.cookies.require", &c.Require) }},
	})
}
