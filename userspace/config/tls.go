package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/xdpns/xdpns/userspace/xot"
)

// TLS is one named tls block (docs/xot.md), referenced by a primary (as
// a client: how the primary is verified, which certificate we present)
// or by server.tls (as a server: our certificate, and which client
// certificates we require). Files are read and checked when the
// configuration is parsed.
type TLS struct {
	Name string
	// CertFile and KeyFile: our certificate chain and key (PEM). Required
	// for server.tls; for a primary, a client certificate.
	CertFile, KeyFile string
	// CAFile: PEM CA certificates. For a primary: the CAs its certificate
	// must chain to (empty: the system roots, unless pins are given). For
	// server.tls: clients must present a certificate signed by one.
	CAFile string
	// Hostname is the name the primary's certificate must carry (empty:
	// the primary's IP address). Client side only.
	Hostname string
	// Pins are SHA-256 digests of SubjectPublicKeyInfo: the peer's
	// certificate must carry one of these keys.
	Pins []xot.Pin
	// Options are the files loaded, ready for xot.Client and xot.Server.
	Options xot.Options
	// Digest identifies the block and the content of its files: it changes
	// when a certificate file is replaced, so a reload picks it up.
	Digest string
	Line   int
}

// TLS returns the tls block with the name, or nil.
func (c *Config) TLS(name string) *TLS {
	for i := range c.TLSBlocks {
		if c.TLSBlocks[i].Name == name {
			return &c.TLSBlocks[i]
		}
	}
	return nil
}

// tlsName is what a tls block may be called (BIND's names are strings;
// these fit in both files without quoting).
var tlsName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// tlsRef is one place a tls block is named.
type tlsRef struct {
	name, path string
	line       int
	server     bool // server.tls: needs cert-file
}

func (d *decoder) tlsBlocks(n *yaml.Node) []TLS {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	var out []TLS
	first := map[string]int{}
	d.list(n, "tls", false, func(i int, v *yaml.Node) {
		path := fmt.Sprintf("tls[%d]", i)
		v = resolve(v)
		b := TLS{Line: v.Line}
		lines := map[string]int{}
		file := func(key string, dst *string) field {
			return field{key, func(v *yaml.Node) {
				lines[key] = resolve(v).Line
				d.str(v, path+"."+key, 0, dst)
				if *dst == "" {
					d.errorf(resolve(v).Line, "%s.%s: must not be empty", path, key)
					return
				}
				*dst = d.path(*dst)
			}}
		}
		d.mapping(v, path, []field{
			{"name", func(v *yaml.Node) {
				v, ok := d.scalar(v, path+".name", "a name")
				if !ok {
					return
				}
				lines["name"] = v.Line
				if !tlsName.MatchString(v.Value) || isNull(v) {
					d.errorf(v.Line, "%s.name: %q is not a valid name (letters, digits, '.', '_', '-'; at most 63)", path, v.Value)
					return
				}
				b.Name = v.Value
			}},
			file("cert-file", &b.CertFile),
			file("key-file", &b.KeyFile),
			file("ca-file", &b.CAFile),
			{"hostname", func(v *yaml.Node) {
				v, ok := d.scalar(v, path+".hostname", "a host name")
				if !ok {
					return
				}
				if _, err := netip.ParseAddr(v.Value); err != nil {
					if err := checkDomainName(v.Value); err != nil || v.Value == "" || isNull(v) {
						d.errorf(v.Line, "%s.hostname: %q is not a host name or IP address", path, v.Value)
						return
					}
				}
				b.Hostname = v.Value
			}},
			{"pin-sha256", func(v *yaml.Node) {
				lines["pin-sha256"] = resolve(v).Line
				d.list(v, path+".pin-sha256", true, func(j int, v *yaml.Node) {
					p := fmt.Sprintf("%s.pin-sha256[%d]", path, j)
					v, ok := d.scalar(v, p, "a base64 SHA-256")
					if !ok {
						return
					}
					pin, err := xot.ParsePin(v.Value)
					if err != nil {
						d.errorf(v.Line, "%s: %v", p, err)
						return
					}
					b.Pins = append(b.Pins, pin)
				})
			}},
		})
		if v.Kind != yaml.MappingNode && !isNull(v) {
			return
		}
		if b.Name == "" {
			if _, ok := lines["name"]; !ok {
				d.errorf(v.Line, "%s: name is required", path)
			}
			return
		}
		if d.tlsNames == nil {
			d.tlsNames = map[string]bool{}
		}
		d.tlsNames[b.Name] = true
		if line, dup := first[b.Name]; dup {
			d.errorf(lines["name"], "%s.name: duplicate tls block %s (first at line %d)", path, b.Name, line)
			return
		}
		first[b.Name] = lines["name"]
		if d.load(&b, path, lines) {
			out = append(out, b)
		}
	})
	return out
}

// load reads the files of b and checks they go together; false when
// anything was wrong (and reported).
func (d *decoder) load(b *TLS, path string, lines map[string]int) bool {
	ok := true
	switch {
	case b.CertFile != "" && b.KeyFile != "":
		c, err := xot.LoadCert(b.CertFile, b.KeyFile)
		if err != nil {
			d.errorf(lines["cert-file"], "%s.cert-file: %v", path, err)
			ok = false
		}
		b.Options.Cert = c
	case lines["cert-file"] != 0 || lines["key-file"] != 0:
		d.errorf(max(lines["cert-file"], lines["key-file"]), "%s: cert-file and key-file go together", path)
		ok = false
	}
	if b.CAFile != "" {
		pool, err := xot.LoadCA(b.CAFile)
		if err != nil {
			d.errorf(lines["ca-file"], "%s.ca-file: %v", path, err)
			ok = false
		}
		b.Options.Roots = pool
	}
	b.Options.Hostname = b.Hostname
	b.Options.Pins = b.Pins
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%v\x00", b.Name, b.Hostname, b.Pins)
	for _, f := range []string{b.CertFile, b.KeyFile, b.CAFile} {
		data, _ := os.ReadFile(f) // read above; a failure was reported
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	b.Digest = hex.EncodeToString(h.Sum(nil))
	return ok
}

// tlsRefCheck reports tls blocks named but not defined, and server.tls
// without a certificate.
func (d *decoder) tlsRefCheck(cfg *Config) {
	for _, r := range d.tlsRefs {
		b := cfg.TLS(r.name)
		switch {
		case b == nil && !d.tlsNames[r.name]:
			d.errorf(r.line, "%s: tls block %s is not defined in tls", r.path, r.name)
		case b != nil && r.server && b.Options.Cert == nil:
			d.errorf(r.line, "%s: tls block %s (line %d) has no cert-file and key-file, which serving TLS needs", r.path, r.name, b.Line)
		case b != nil && r.server && b.Hostname != "":
			d.errorf(r.line, "%s: tls block %s (line %d) has a hostname, which only checks a primary's certificate; serving, give ca-file or pin-sha256 to check clients", r.path, r.name, b.Line)
		}
	}
	s := &cfg.Server
	switch {
	case len(s.ListenTLS) > 0 && s.TLS == "":
		d.errorf(s.ListenTLSLine, "server.listen-tls: needs server.tls, the tls block with the server's certificate")
	case len(s.ListenTLS) == 0 && s.TLS != "":
		d.errorf(s.TLSLine, "server.tls: no server.listen-tls to serve it on")
	}
	for _, ap := range s.ListenTLS {
		for _, l := range s.Listen {
			if sameTCPPort(ap, l) {
				d.errorf(s.ListenTLSLine, "server.listen-tls: %s takes TCP port %d of server.listen %s; use another port (853 is XoT's)", ap, ap.Port(), l)
			}
		}
	}
}

// sameTCPPort reports whether two listeners would bind the same TCP port.
func sameTCPPort(a, b netip.AddrPort) bool {
	x, y := a.Addr().Unmap(), b.Addr().Unmap()
	if a.Port() != b.Port() || x.Is4() != y.Is4() {
		return false
	}
	return x == y || x.IsUnspecified() || y.IsUnspecified()
}

// tlsRef decodes the name of a tls block; finish reports unknown ones.
func (d *decoder) tlsRef(n *yaml.Node, path string, server bool, dst *string) int {
	n, ok := d.scalar(n, path, "a tls block name")
	if !ok {
		return 0
	}
	if isNull(n) || n.Value == "" {
		d.errorf(n.Line, "%s: must not be empty", path)
		return n.Line
	}
	d.tlsRefs = append(d.tlsRefs, tlsRef{name: n.Value, path: path, line: n.Line, server: server})
	*dst = n.Value
	return n.Line
}
