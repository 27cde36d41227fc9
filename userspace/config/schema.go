package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"

	"github.com/xdpns/xdpns/userspace/xot"
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

	maxTransfers  = 10000
	maxSOAQueries = 100000
	minTimer      = time.Millisecond
	maxTimer      = 10 * 365 * 24 * time.Hour
	maxJitter     = 0.5 // below it: a wait is never cut by half or more
	maxRecords    = 1 << 31
	minRRSize     = 512
	maxRRSize     = 1 << 17 // an RR's RDATA is at most 65535 bytes
	maxSocketPath = 107     // sockaddr_un sun_path, with its NUL
	maxKeySecret  = 4096    // bytes of base64

	maxIfName = 15 // IFNAMSIZ without its NUL
	// maxIndexEntries is loader.MaxIndexEntries (about 80 bytes of kernel
	// memory each); maxStoreBlocks keeps the mmapped store below 4 GiB
	// (blocks of 65536 + 2320 bytes), as the loader requires.
	maxIndexEntries = 1 << 26
	maxStoreBlocks  = (1<<32 - 1) / (65536 + 2320)
	// maxServiceAddrs is the size of the XDP program's address map.
	maxServiceAddrs = 64
)

func (d *decoder) root(n *yaml.Node, cfg *Config) {
	d.mapping(n, "", []field{
		{"server", func(v *yaml.Node) { d.server(v, &cfg.Server) }},
		{"log", func(v *yaml.Node) { d.log(v, &cfg.Log) }},
		{"xfr", func(v *yaml.Node) { d.xfr(v, &cfg.Xfr) }},
		{"keys", func(v *yaml.Node) { cfg.Keys = d.keys(v) }},
		{"tls", func(v *yaml.Node) { cfg.TLSBlocks = d.tlsBlocks(v) }},
		{"zones", func(v *yaml.Node) { cfg.Zones = d.zones(v) }},
		{"control", func(v *yaml.Node) { d.control(v, &cfg.Control) }},
		{"xdp", func(v *yaml.Node) { d.xdp(v, &cfg.XDP) }},
		{"metrics", func(v *yaml.Node) { d.metrics(v, &cfg.Metrics) }},
		{"templates", func(v *yaml.Node) { cfg.Templates = d.templates(v) }},
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
		{"rrl", func(v *yaml.Node) { d.rrl(v, &s.RRL) }},
		{"cookies", func(v *yaml.Node) { d.cookies(v, &s.Cookies) }},
		{"listen-tls", func(v *yaml.Node) {
			s.ListenTLSLine = resolve(v).Line
			s.ListenTLS, _ = d.addrPorts(v, "server.listen-tls")
		}},
		{"tls", func(v *yaml.Node) { s.TLSLine = d.tlsRef(v, "server.tls", true, &s.TLS) }},
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
	out, ok := d.addrPorts(n, path)
	if ok && len(out) == 0 {
		d.errorf(resolve(n).Line, "%s: needs at least one address", path)
	}
	return out
}

// addrPorts decodes a list of distinct IP:port; ok is false when anything
// was wrong (and reported).
func (d *decoder) addrPorts(n *yaml.Node, path string) (out []netip.AddrPort, ok bool) {
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
	if !isList || bad {
		return nil, false
	}
	return out, true
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
		if z, nameLine, ok := d.zone(v, fmt.Sprintf("zones[%d]", i)); ok {
			if line, dup := first[z.Name]; dup {
				d.errorf(nameLine, "zones[%d].name: duplicate zone %s (first at line %d)", i, z.Name, line)
				return
			}
			first[z.Name] = nameLine
			out = append(out, z)
		}
	})
	return out
}

// secondaryOnly are the zone keys that only make sense with primaries.
var secondaryOnly = []string{"allow-notify", "axfr-only", "timers"}

// zone decodes one entry of zones; ok is false when it is not usable.
func (d *decoder) zone(v *yaml.Node, path string) (z Zone, nameLine int, ok bool) {
	v = resolve(v)
	z = Zone{Line: v.Line}
	given := map[string]int{} // key -> line of its value
	var timerLines map[string]int
	set := func(key string, v *yaml.Node) { given[key] = resolve(v).Line }
	d.mapping(v, path, append([]field{
		{"name", func(v *yaml.Node) {
			nameLine = resolve(v).Line
			d.zoneName(v, path+".name", &z.Name)
		}},
		{"file", func(v *yaml.Node) {
			set("file", v)
			d.str(v, path+".file", 0, &z.File)
			if z.File == "" && resolve(v).Kind == yaml.ScalarNode {
				d.errorf(resolve(v).Line, "%s.file: must not be empty", path)
			}
		}},
		{"primaries", func(v *yaml.Node) {
			set("primaries", v)
			z.Primaries = d.primaries(v, path+".primaries")
		}},
		{"allow-notify", func(v *yaml.Node) {
			set("allow-notify", v)
			z.AllowNotify = d.prefixes(v, path+".allow-notify")
		}},
		{"axfr-only", func(v *yaml.Node) {
			set("axfr-only", v)
			d.boolean(v, path+".axfr-only", &z.AXFROnly)
		}},
		{"timers", func(v *yaml.Node) {
			set("timers", v)
			timerLines = d.timers(v, path+".timers", &z.Timers)
		}},
		{"allow-transfer", func(v *yaml.Node) { d.allowTransfer(v, path+".allow-transfer", &z.AllowTransfer) }},
		{"notify", func(v *yaml.Node) {
			set("notify", v)
			z.Notify, _ = d.addrPorts(v, path+".notify")
		}},
		{"notify-key", func(v *yaml.Node) {
			set("notify-key", v)
			d.keyRef(v, path+".notify-key", &z.NotifyKey)
		}},
	}, d.catalogFields(path, &z, given)...))
	if v.Kind != yaml.MappingNode && !isNull(v) {
		return z, 0, false // reported by mapping
	}
	if nameLine == 0 {
		d.errorf(v.Line, "%s: name is required", path)
	}
	_, hasFile := given["file"]
	_, hasPrimaries := given["primaries"]
	d.checkCatalog(path, &z, given, hasFile, hasPrimaries)
	produced := z.Catalog == CatalogProduce
	switch {
	case produced:
	case hasFile && hasPrimaries:
		d.errorf(given["primaries"], "%s: has both file and primaries: a zone is served from a file or transferred from primaries, not both", path)
	case !hasFile && !hasPrimaries:
		d.errorf(v.Line, "%s: needs file (a zone served from a file) or primaries (a secondary zone)", path)
	case hasFile:
		for _, k := range secondaryOnly {
			if line, ok := given[k]; ok {
				d.errorf(line, "%s.%s: only for a secondary zone (one with primaries), not a zone served from a file", path, k)
			}
		}
	}
	if line, ok := given["notify-key"]; ok {
		if _, ok := given["notify"]; !ok {
			d.errorf(line, "%s.notify-key: no notify targets to sign for", path)
		}
	}
	if timerLines != nil {
		zt := z.Timers
		d.later = append(d.later, func(cfg *Config) {
			d.checkTimers(path+".timers", zt.or(cfg.Xfr.Timers), timerLines, given["timers"], "xfr.timers")
		})
	}
	return z, nameLine, z.Name != "" && (z.File != "" || len(z.Primaries) > 0 || produced)
}

// primaries decodes a list of primaries: mappings {address, key}, or a
// bare address.
func (d *decoder) primaries(n *yaml.Node, path string) []Primary {
	var out []Primary
	first := map[netip.AddrPort]int{}
	isList := d.list(n, path, false, func(i int, v *yaml.Node) {
		p := fmt.Sprintf("%s[%d]", path, i)
		v = resolve(v)
		var pr Primary
		addrLine := 0
		var addr string
		setAddr := func(v *yaml.Node) {
			v, ok := d.scalar(v, p+".address", "an address")
			if !ok {
				return
			}
			addrLine, addr = v.Line, v.Value
		}
		if v.Kind == yaml.ScalarNode && !isNull(v) {
			setAddr(v)
		} else {
			d.mapping(v, p, []field{
				{"address", setAddr},
				{"key", func(v *yaml.Node) { d.keyRef(v, p+".key", &pr.Key) }},
				{"tls", func(v *yaml.Node) { d.tlsRef(v, p+".tls", false, &pr.TLS) }},
			})
			if v.Kind != yaml.MappingNode && !isNull(v) {
				return
			}
			if addrLine == 0 {
				d.errorf(v.Line, "%s: address is required", p)
			}
		}
		if addrLine != 0 {
			ap, err := parseAddrPort(addr)
			if ip, perr := netip.ParseAddr(addr); perr == nil && pr.TLS != "" {
				// Over TLS the port may be left out: XoT's is 853.
				ap, err = netip.AddrPortFrom(ip, xot.DefaultPort), nil
			}
			if err != nil {
				d.errorf(addrLine, "%s.address: %v", p, err)
			} else {
				pr.Addr = ap
			}
		}
		if !pr.Addr.IsValid() {
			return
		}
		if line, dup := first[pr.Addr]; dup {
			d.errorf(addrLine, "%s: duplicate primary %s (first at line %d)", p, pr.Addr, line)
			return
		}
		first[pr.Addr] = addrLine
		out = append(out, pr)
	})
	if isList && len(resolve(n).Content) == 0 {
		d.errorf(resolve(n).Line, "%s: needs at least one primary", path)
	}
	return out
}

// prefixes decodes a list of address prefixes; a bare address is a /32 or
// /128.
func (d *decoder) prefixes(n *yaml.Node, path string) []netip.Prefix {
	var out []netip.Prefix
	d.list(n, path, true, func(i int, v *yaml.Node) {
		p := fmt.Sprintf("%s[%d]", path, i)
		v, ok := d.scalar(v, p, "an address prefix")
		if !ok {
			return
		}
		pf, err := parsePrefix(v.Value)
		if err != nil {
			d.errorf(v.Line, "%s: %v", p, err)
			return
		}
		out = append(out, pf)
	})
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: no zone index allowed", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: want an address or ADDRESS/BITS, e.g. 192.0.2.0/24 or 2001:db8::/32", s)
	}
	if pf.Masked() != pf {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: bits set after the prefix length (did you mean %s?)", s, pf.Masked())
	}
	return pf, nil
}

func (d *decoder) allowTransfer(n *yaml.Node, path string, a *AllowTransfer) {
	d.mapping(n, path, []field{
		{"from", func(v *yaml.Node) { a.From = d.prefixes(v, path+".from") }},
		{"keys", func(v *yaml.Node) {
			d.list(v, path+".keys", true, func(i int, v *yaml.Node) {
				var k string
				d.keyRef(v, fmt.Sprintf("%s.keys[%d]", path, i), &k)
				if k != "" {
					a.Keys = append(a.Keys, k)
				}
			})
		}},
	})
}

// keyRef decodes the name of a key defined in the keys section; finish
// reports names that are not.
func (d *decoder) keyRef(n *yaml.Node, path string, dst *string) {
	n, ok := d.scalar(n, path, "a key name")
	if !ok {
		return
	}
	if isNull(n) || n.Value == "" {
		d.errorf(n.Line, "%s: must not be empty", path)
		return
	}
	if err := checkDomainName(n.Value); err != nil {
		d.errorf(n.Line, "%s: %q is not a valid key name: %v", path, n.Value, err)
		return
	}
	name := dns.CanonicalName(n.Value)
	d.keyRefs = append(d.keyRefs, keyRef{name: name, path: path, line: n.Line})
	*dst = name
}

func (d *decoder) xfr(n *yaml.Node, x *Xfr) {
	d.mapping(n, "xfr", []field{
		{"state-dir", func(v *yaml.Node) { d.str(v, "xfr.state-dir", 0, &x.StateDir) }},
		{"max-transfers", func(v *yaml.Node) { intIn(d, v, "xfr.max-transfers", 1, maxTransfers, &x.MaxTransfers) }},
		{"max-soa-queries", func(v *yaml.Node) { intIn(d, v, "xfr.max-soa-queries", 1, maxSOAQueries, &x.MaxSOAQueries) }},
		{"timers", func(v *yaml.Node) {
			lines := d.timers(v, "xfr.timers", &x.Timers)
			d.checkTimers("xfr.timers", x.Timers, lines, resolve(v).Line, "")
		}},
		{"timeouts", func(v *yaml.Node) {
			d.mapping(v, "xfr.timeouts", []field{
				{"query", func(v *yaml.Node) {
					d.duration(v, "xfr.timeouts.query", 10*time.Millisecond, time.Minute, &x.Timeouts.Query)
				}},
				{"read", func(v *yaml.Node) {
					d.duration(v, "xfr.timeouts.read", 10*time.Millisecond, time.Hour, &x.Timeouts.Read)
				}},
				{"transfer", func(v *yaml.Node) {
					d.duration(v, "xfr.timeouts.transfer", time.Second, 24*time.Hour, &x.Timeouts.Transfer)
				}},
			})
		}},
		{"limits", func(v *yaml.Node) {
			d.mapping(v, "xfr.limits", []field{
				{"max-records", func(v *yaml.Node) { intIn(d, v, "xfr.limits.max-records", 1, maxRecords, &x.Limits.MaxRecords) }},
				{"max-rr-size", func(v *yaml.Node) { intIn(d, v, "xfr.limits.max-rr-size", minRRSize, maxRRSize, &x.Limits.MaxRRSize) }},
				{"journal-records", func(v *yaml.Node) {
					intIn(d, v, "xfr.limits.journal-records", 0, maxRecords, &x.Limits.JournalRecords)
				}},
			})
		}},
		{"runtime-zones", func(v *yaml.Node) { d.runtimeZonesSet = true; d.str(v, "xfr.runtime-zones", 0, &x.RuntimeZones) }},
	})
}

// timers decodes a timers mapping into t and returns the line of each key
// given.
func (d *decoder) timers(n *yaml.Node, path string, t *Timers) map[string]int {
	lines := map[string]int{}
	dur := func(key string, dst *time.Duration) field {
		return field{key, func(v *yaml.Node) {
			lines[key] = resolve(v).Line
			d.duration(v, path+"."+key, minTimer, maxTimer, dst)
		}}
	}
	d.mapping(n, path, []field{
		dur("refresh-min", &t.RefreshMin),
		dur("refresh-max", &t.RefreshMax),
		dur("retry-min", &t.RetryMin),
		dur("retry-max", &t.RetryMax),
		dur("expire-min", &t.ExpireMin),
		dur("expire-max", &t.ExpireMax),
		{"jitter", func(v *yaml.Node) {
			lines["jitter"] = resolve(v).Line
			j := -1.0
			d.float(v, path+".jitter", 0, maxJitter, &j)
			if j >= 0 {
				t.Jitter = &j
			}
		}},
	})
	return lines
}

// checkTimers reports a min above its max. lines locate the keys of this
// section; a pair with neither key in it is not this section's problem.
// inherited names the section the other values come from.
func (d *decoder) checkTimers(path string, t Timers, lines map[string]int, line int, inherited string) {
	for _, p := range []struct {
		name     string
		min, max time.Duration
	}{
		{"refresh", t.RefreshMin, t.RefreshMax},
		{"retry", t.RetryMin, t.RetryMax},
		{"expire", t.ExpireMin, t.ExpireMax},
	} {
		lmin, okMin := lines[p.name+"-min"]
		lmax, okMax := lines[p.name+"-max"]
		if (!okMin && !okMax) || p.min <= p.max {
			continue
		}
		at := max(lmin, lmax)
		if at == 0 {
			at = line
		}
		from := ""
		if inherited != "" && (!okMin || !okMax) {
			from = " (with " + inherited + ")"
		}
		d.errorf(at, "%s: %s-min %s is above %s-max %s%s", path, p.name, p.min, p.name, p.max, from)
	}
}

// or fills the zero fields of t from def.
func (t Timers) or(def Timers) Timers {
	pick := func(a *time.Duration, b time.Duration) {
		if *a == 0 {
			*a = b
		}
	}
	pick(&t.RefreshMin, def.RefreshMin)
	pick(&t.RefreshMax, def.RefreshMax)
	pick(&t.RetryMin, def.RetryMin)
	pick(&t.RetryMax, def.RetryMax)
	pick(&t.ExpireMin, def.ExpireMin)
	pick(&t.ExpireMax, def.ExpireMax)
	if t.Jitter == nil {
		t.Jitter = def.Jitter
	}
	return t
}

// Algorithms are the TSIG algorithms accepted (RFC 8945 §6), as written in
// the configuration.
var Algorithms = []string{"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"}

func (d *decoder) keys(n *yaml.Node) []Key {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if d.keyNames == nil {
		d.keyNames = map[string]bool{}
	}
	var out []Key
	first := map[string]int{}
	d.list(n, "keys", false, func(i int, v *yaml.Node) {
		path := fmt.Sprintf("keys[%d]", i)
		v = resolve(v)
		k := Key{Line: v.Line}
		nameLine, algLine, secretLine, fileLine := 0, 0, 0, 0
		bad := false
		d.mapping(v, path, []field{
			{"name", func(v *yaml.Node) {
				v, ok := d.scalar(v, path+".name", "a key name")
				if !ok {
					bad = true
					return
				}
				nameLine = v.Line
				if err := checkDomainName(v.Value); err != nil || v.Value == "" || isNull(v) {
					if err == nil {
						err = fmt.Errorf("empty")
					}
					d.errorf(v.Line, "%s.name: %q is not a valid key name: %v", path, v.Value, err)
					bad = true
					return
				}
				k.Name = dns.CanonicalName(v.Value)
			}},
			{"algorithm", func(v *yaml.Node) {
				v, ok := d.scalar(v, path+".algorithm", "an algorithm")
				if !ok {
					bad = true
					return
				}
				algLine = v.Line
				alg := strings.TrimSuffix(strings.ToLower(v.Value), ".")
				if alg == "hmac-md5.sig-alg.reg.int" {
					alg = "hmac-md5"
				}
				if !slices.Contains(Algorithms, alg) {
					d.errorf(v.Line, "%s.algorithm: must be one of %s, got %q", path, strings.Join(Algorithms, "|"), v.Value)
					bad = true
					return
				}
				k.Algorithm = alg
			}},
			{"secret", func(v *yaml.Node) {
				v, ok := d.scalar(v, path+".secret", "a base64 secret")
				if !ok {
					bad = true
					return
				}
				secretLine = v.Line
				if err := checkSecret(v.Value); err != nil {
					d.errorf(v.Line, "%s.secret: %v", path, err)
					bad = true
					return
				}
				k.Secret = v.Value
			}},
			{"secret-file", func(v *yaml.Node) {
				var f string
				d.str(v, path+".secret-file", 0, &f)
				fileLine = resolve(v).Line
				secret, err := readSecret(d.path(f))
				if err != nil {
					d.errorf(fileLine, "%s.secret-file: %v", path, err)
					bad = true
					return
				}
				k.Secret = secret
			}},
		})
		if v.Kind != yaml.MappingNode && !isNull(v) {
			return
		}
		if nameLine == 0 {
			d.errorf(v.Line, "%s: name is required", path)
		}
		if algLine == 0 {
			d.errorf(v.Line, "%s: algorithm is required (%s)", path, strings.Join(Algorithms, "|"))
		}
		switch {
		case secretLine != 0 && fileLine != 0:
			d.errorf(max(secretLine, fileLine), "%s: has both secret and secret-file; give one", path)
		case secretLine == 0 && fileLine == 0:
			d.errorf(v.Line, "%s: secret or secret-file is required", path)
		}
		if k.Name == "" {
			return
		}
		d.keyNames[k.Name] = true
		if line, dup := first[k.Name]; dup {
			d.errorf(nameLine, "%s.name: duplicate key %s (first at line %d)", path, k.Name, line)
			return
		}
		first[k.Name] = nameLine
		if !bad && k.Algorithm != "" && k.Secret != "" {
			out = append(out, k)
		}
	})
	return out
}

// checkSecret accepts standard base64 (as BIND writes it) of a non-empty
// secret.
func checkSecret(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) > maxKeySecret {
		return fmt.Errorf("at most %d bytes of base64, got %d", maxKeySecret, len(s))
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) == 0 {
		return fmt.Errorf("not base64 (as tsig-keygen prints it)")
	}
	return nil
}

// bindSecret finds the secret in a BIND key statement (tsig-keygen output).
var bindSecret = regexp.MustCompile(`secret\s+"([^"]*)"`)

// readSecret reads a key's secret from a file holding either the base64
// secret alone or a BIND key statement, as tsig-keygen writes it.
func readSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if m := bindSecret.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if err := checkSecret(s); err != nil {
		return "", fmt.Errorf("%s: secret %v", path, err)
	}
	return s, nil
}

func (d *decoder) control(n *yaml.Node, c *Control) {
	d.mapping(n, "control", []field{
		{"socket", func(v *yaml.Node) {
			var s string
			d.str(v, "control.socket", 0, &s)
			if s != "" && len(d.path(s)) > maxSocketPath {
				d.errorf(resolve(v).Line, "control.socket: %q is %d bytes, a unix socket path holds at most %d", d.path(s), len(d.path(s)), maxSocketPath)
				return
			}
			c.Socket = s
		}},
		{"group", func(v *yaml.Node) {
			c.GroupLine = resolve(v).Line
			d.str(v, "control.group", 0, &c.Group)
		}},
	})
}

// XDPModes are the values of xdp.mode.
var XDPModes = []string{"auto", "native", "generic"}

func (d *decoder) xdp(n *yaml.Node, x *XDP) {
	var entriesLine, blocksLine int
	d.mapping(n, "xdp", []field{
		{"interfaces", func(v *yaml.Node) {
			x.Line = resolve(v).Line
			x.Interfaces = d.interfaces(v, "xdp.interfaces")
		}},
		{"mode", func(v *yaml.Node) { d.oneOf(v, "xdp.mode", XDPModes, &x.Mode) }},
		{"pin", func(v *yaml.Node) {
			var s string
			d.str(v, "xdp.pin", 0, &s)
			if s != "" && !filepath.IsAbs(s) {
				d.errorf(resolve(v).Line, "xdp.pin: %q is not an absolute path (a directory on a bpffs mount, e.g. /sys/fs/bpf/xdpns)", s)
				return
			}
			if s != "" {
				s = filepath.Clean(s)
			}
			x.Pin = s
		}},
		{"index-entries", func(v *yaml.Node) {
			entriesLine = resolve(v).Line
			intIn(d, v, "xdp.index-entries", 0, maxIndexEntries, &x.IndexEntries)
		}},
		{"store-blocks", func(v *yaml.Node) {
			blocksLine = resolve(v).Line
			intIn(d, v, "xdp.store-blocks", 0, maxStoreBlocks, &x.StoreBlocks)
		}},
	})
	if (x.IndexEntries == 0) != (x.StoreBlocks == 0) {
		d.errorf(max(entriesLine, blocksLine), "xdp: index-entries and store-blocks are set together (both 0: sized from the zones), got %d and %d", x.IndexEntries, x.StoreBlocks)
	}
	d.later = append(d.later, d.checkXDPService)
}

// interfaces decodes a list of distinct network interface names.
func (d *decoder) interfaces(n *yaml.Node, path string) []string {
	var out []string
	first := map[string]int{}
	d.list(n, path, true, func(i int, v *yaml.Node) {
		p := fmt.Sprintf("%s[%d]", path, i)
		v, ok := d.scalar(v, p, "an interface name")
		if !ok {
			return
		}
		if err := checkIfName(v.Value); err != nil || isNull(v) {
			if err == nil {
				err = fmt.Errorf("empty")
			}
			d.errorf(v.Line, "%s: %q is not an interface name: %v", p, v.Value, err)
			return
		}
		if line, dup := first[v.Value]; dup {
			d.errorf(v.Line, "%s: duplicate interface %s (first at line %d)", p, v.Value, line)
			return
		}
		first[v.Value] = v.Line
		out = append(out, v.Value)
	})
	return out
}

// checkIfName applies the kernel's rules (dev_valid_name).
func checkIfName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > maxIfName:
		return fmt.Errorf("longer than %d bytes", maxIfName)
	case s == "." || s == "..":
		return fmt.Errorf("reserved")
	case strings.ContainsAny(s, "/:") || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > 0x7e }) >= 0:
		return fmt.Errorf("contains '/', ':', a blank or a non-ASCII character")
	}
	return nil
}

// checkXDPService refuses listen addresses XDP cannot mirror exactly: its
// address filter holds at most maxServiceAddrs addresses (a wildcard of one
// family counting as one).
func (d *decoder) checkXDPService(cfg *Config) {
	x := &cfg.XDP
	if !x.Enabled() || len(cfg.Server.Listen) == 0 {
		return
	}
	port, addrs := cfg.XDPService()
	switch {
	case len(addrs) > maxServiceAddrs:
		d.errorf(x.Line, "xdp: server.listen has %d addresses on port %d; XDP answers at most %d (or any address: listen on 0.0.0.0:%d and [::]:%d)", len(addrs), port, maxServiceAddrs, port, port)
	}
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

func (d *decoder) metrics(n *yaml.Node, m *Metrics) {
	d.mapping(n, "metrics", []field{
		{"listen", func(v *yaml.Node) {
			v, ok := d.scalar(v, "metrics.listen", "an address")
			if !ok {
				return
			}
			m.Line = v.Line
			if isNull(v) || v.Value == "" {
				m.Listen = netip.AddrPort{}
				return
			}
			ap, err := parseAddrPort(v.Value)
			if err != nil {
				d.errorf(v.Line, "metrics.listen: %v", err)
				return
			}
			m.Listen = ap
		}},
	})
	d.later = append(d.later, d.checkMetrics)
}

// checkMetrics refuses a metrics address whose port a DNS listener binds
// for TCP too (the same address, or either a wildcard of its family).
func (d *decoder) checkMetrics(cfg *Config) {
	m := cfg.Metrics.Listen
	if !m.IsValid() {
		return
	}
	for _, ap := range cfg.Server.Listen {
		a, b := ap.Addr().Unmap(), m.Addr().Unmap()
		if ap.Port() != m.Port() || a.Is4() != b.Is4() {
			continue
		}
		if a == b || a.IsUnspecified() || b.IsUnspecified() {
			d.errorf(cfg.Metrics.Line, "metrics.listen: %s takes TCP port %d of server.listen %s; use another port", m, m.Port(), ap)
			return
		}
	}
}
