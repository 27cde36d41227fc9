package main

import (
	"crypto/tls"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/xot"
	"github.com/xdpns/xdpns/xfr"
)

// XoT (docs/xot.md): the parsed tls blocks become crypto/tls
// configurations, for primaries (xfr) and for server.listen-tls.

// primaryTLS sets the TLS of a primary from its tls block, if it names
// one. The configuration was checked: the block exists.
func primaryTLS(cfg *config.Config, p config.Primary, xp *xfr.Primary) {
	b := cfg.TLS(p.TLS)
	if b == nil {
		return
	}
	xp.TLS = xot.Client(b.Options, p.Addr.Addr())
	// A changed block or file restarts the zone on reload; an unchanged
	// one keeps it running.
	xp.TLSID = b.Name + "/" + b.Digest
}

// listenTLS returns the TLS listeners of server.listen-tls and their
// configuration (nil, nil when there are none).
func listenTLS(cfg *config.Config) ([]string, *tls.Config) {
	b := cfg.TLS(cfg.Server.TLS)
	if b == nil || len(cfg.Server.ListenTLS) == 0 {
		return nil, nil
	}
	addrs := make([]string, len(cfg.Server.ListenTLS))
	for i, ap := range cfg.Server.ListenTLS {
		addrs[i] = ap.String()
	}
	return addrs, xot.Server(b.Options)
}
