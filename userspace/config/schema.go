package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"
)

// The schema: one function per section, each a table of keys. To add an
// option, add a field to the struct in config.go and a row here.

// Limits on option values.
const (
	minUDPPayload = 512  // RFC 6891 §6.2.5: below 512 is treated as 512
	maxUDPPayload = 4096 // larger invites fragmentation (DNS flag day 2020)
	maxUDPSockets = 1024
	maxTCPConns   = 1 << 20
	maxTXT        = 255 // one TXT character-string (RFC 1035 §3.3)
	maxNSID       = 255
	minTCPIdle    = 100 * time.Millisecond
	maxTCPIdle    = time.Hour
)

func (d *decoder) root(n *yaml.Node, cfg *Config) {
	d.mapping(n, "", []field{
		{"server", func(v *yaml.Node) { d.server(v, &cfg.Server) }},
		{"log", func(v *yaml.Node) { d.log(v, &cfg.Log) }},
		{"zones", func(v *yaml.Node) { cfg.Zones = d.zones(v) }},
	})
}

func (d *decoder) server(n *yaml.Node, s *Server) {
	d.mapping(n, "server", []field{
		{"listen", func(v *yaml.Node) {
			if l := d.listen(v, "server.listen"); l != nil {
				s.Listen = l
			}
		}},
		{"udp-payload", func(v *yaml.Node) {
			intIn(d, v, "server.udp-payload", minUDPPayload, maxUDPPayload, &s.UDPPayload)
		}},
		{"udp-sockets", func(v *yaml.Node) {
			intIn(d, v, "server.udp-sockets", 0, maxUDPSockets, &s.UDPSockets)
		}},
		{"tcp-idle-timeout", func(v *yaml.Node) {
			d.duration(v, "server.tcp-idle-timeout", minTCPIdle, maxTCPIdle, &s.TCPIdleTimeout)
		}},
		{"tcp-max-connections", func(v *yaml.Node) {
			intIn(d, v, "server.tcp-max-connections", 1, maxTCPConns, &s.TCPMaxConnections)
		}},
		{"nsid", func(v *yaml.Node) { d.str(v, "server.nsid", maxNSID, &s.NSID) }},
		{"identity", func(v *yaml.Node) { d.str(v, "server.identity", maxTXT, &s.Identity) }},
		{"version", func(v *yaml.Node) { d.str(v, "server.version", maxTXT, &s.Version) }},
		{"allow-include", func(v *yaml.Node) { d.boolean(v, "server.allow-include", &s.AllowInclude) }},
	})
}

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

func (d *decoder) log(n *yaml.Node, l *Log) {
	d.mapping(n, "log", []field{
		{"level", func(v *yaml.Node) {
			var s string
			d.oneOf(v, "log.level", logLevels, &s)
			if s != "" {
				_ = l.Level.UnmarshalText([]byte(s)) // every choice parses
			}
		}},
		{"format", func(v *yaml.Node) { d.oneOf(v, "log.format", logFormats, &l.Format) }},
	})
}

// listen decodes a list of IP:port. It returns nil when nothing valid was
// given (the error is reported), so the caller keeps the default.
func (d *decoder) listen(n *yaml.Node, path string) []netip.AddrPort {
	var out []netip.AddrPort
	first := map[netip.AddrPort]int{}
	bad := false
	isList := d.list(n, path, true, func(i int, v *yaml.Node) {
		p := fmt.Sprintf("%s[%d]", path, i)
		v, ok := d.scalar(v, p, "an address")
		if !ok {
			bad = true
			return
		}
		ap, err := parseAddrPort(v.Value)
		if err != nil {
			d.errorf(v.Line, "%s: %v", p, err)
			bad = true
			return
		}
		if line, dup := first[ap]; dup {
			d.errorf(v.Line, "%s: duplicate address %s (first at line %d)", p, ap, line)
			bad = true
			return
		}
		first[ap] = v.Line
		out = append(out, ap)
	})
	if isList && !bad && len(out) == 0 {
		d.errorf(resolve(n).Line, "%s: needs at least one address", path)
	}
	return out
}

// parseAddrPort accepts "IP:port" and "[IPv6]:port" with an IP literal (no
// host names: the server binds before any resolver is trusted).
func parseAddrPort(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q: want IP:port, e.g. 127.0.0.1:53 or [::1]:53", s)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q: %q is not an IP address", s, host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, fmt.Errorf("bad address %q: port must be 1..65535, got %q", s, port)
	}
	return netip.AddrPortFrom(ip, uint16(n)), nil
}

func (d *decoder) zones(n *yaml.Node) []Zone {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	var out []Zone
	first := map[string]int{}
	d.list(n, "zones", false, func(i int, v *yaml.Node) {
		path := fmt.Sprintf("zones[%d]", i)
		v = resolve(v)
		z := Zone{Line: v.Line}
		nameLine := 0
		d.mapping(v, path, []field{
			{"name", func(v *yaml.Node) {
				nameLine = resolve(v).Line
				d.zoneName(v, path+".name", &z.Name)
			}},
			{"file", func(v *yaml.Node) { d.str(v, path+".file", 0, &z.File) }},
		})
		if v.Kind != yaml.MappingNode && !isNull(v) {
			return // reported by mapping
		}
		if nameLine == 0 {
			d.errorf(v.Line, "%s: name is required", path)
		}
		if z.File == "" {
			d.errorf(v.Line, "%s: file is required", path)
		}
		if z.Name == "" || z.File == "" {
			return
		}
		if line, dup := first[z.Name]; dup {
			d.errorf(nameLine, "%s.name: duplicate zone %s (first at line %d)", path, z.Name, line)
			return
		}
		first[z.Name] = nameLine
		out = append(out, z)
	})
	return out
}

// zoneName decodes a zone name and stores it canonical (lowercase, fully
// qualified). miekg/dns accepts nearly any text as a name, so refuse what
// can only be a mistake: blanks, non-ASCII (use the xn-- form), empty labels,
// wildcard labels.
func (d *decoder) zoneName(n *yaml.Node, path string, dst *string) {
	n, ok := d.scalar(n, path, "a domain name")
	if !ok {
		return
	}
	name := n.Value
	if isNull(n) || name == "" {
		d.errorf(n.Line, "%s: must not be empty (use \".\" for the root zone)", path)
		return
	}
	if err := checkDomainName(name); err != nil {
		d.errorf(n.Line, "%s: %q is not a valid domain name: %v", path, name, err)
		return
	}
	*dst = dns.CanonicalName(name)
}

func checkDomainName(name string) error {
	for _, r := range name {
		switch {
		case r > 0x7e:
			return fmt.Errorf("non-ASCII character %q (write IDNs in their xn-- form)", r)
		case r <= ' ':
			return fmt.Errorf("blank or control character %q", r)
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("an empty label, a label longer than 63 bytes or a name longer than 255")
	}
	for _, l := range dns.SplitDomainName(name) {
		if l == "*" {
			return fmt.Errorf("a zone name cannot hold a wildcard label")
		}
	}
	return nil
}
