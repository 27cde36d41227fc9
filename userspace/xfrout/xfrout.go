// Package xfrout serves zones to downstream secondaries: outgoing AXFR (RFC
// 5936) and IXFR (RFC 1995) over TCP, TSIG-signed (RFC 8945) when the request
// is, with EDNS EXPIRE (RFC 7314), and NOTIFY (RFC 1996) to configured
// targets when a zone changes. It holds no zone data: Config.Source hands it
// the current snapshot of a zone (and, for secondary zones, the IXFR journal
// that package xfr records) at the moment a transfer starts.
//
// The server hands it AXFR/IXFR queries through server.Config.Transfer
// (= Server.HandleTransfer); the daemon calls Changed after it publishes a new
// version of a zone.
package xfrout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
	"github.com/xdpns/xdpns/xfr"
)

// Key is a TSIG key: Name, Algorithm (hmac-sha256, -sha384, -sha512, -sha224,
// -sha1, hmac-md5) and Secret (base64), the same type package xfr uses.
type Key = xfr.Key

// ACL says who may transfer a zone. A transfer is allowed when the source
// address is inside one of Prefixes AND, when Keys is not empty, the request
// is TSIG-signed with one of them. An empty ACL allows nobody; "any address
// with key k" is Prefixes 0.0.0.0/0 and ::/0 with Keys [k].
type ACL struct {
	Prefixes []netip.Prefix
	Keys     []string // names of keys in Config.Keys
}

// Zone is one zone served to downstream secondaries.
type Zone struct {
	Name          string
	AllowTransfer ACL
	// Notify lists the secondaries told of every change (Server.Changed).
	// Port 0 means 53. Addresses found in zone data are never notified.
	Notify []netip.AddrPort
	// NotifyKey, when set, names the key in Config.Keys that signs NOTIFYs;
	// the answers must then be signed with it too.
	NotifyKey string
}

// Snapshot is what Config.Source returns for a zone: the version to serve.
type Snapshot struct {
	// Zone is the current version; nil when it was never loaded (SERVFAIL).
	Zone *zone.Zone
	// Journal is the IXFR history that ends at Zone's serial, oldest first
	// (xfr.Manager.Snapshot). Empty: IXFR answers with the whole zone.
	Journal []xfr.Diff
	// Expired zones are not transferred (SERVFAIL).
	Expired bool
	// Expire is the time left before the zone expires, answered in EDNS
	// EXPIRE. 0 means unknown: the SOA expire is answered (right for zones
	// loaded from files, RFC 7314 §4).
	Expire time.Duration
}

// Config is what the server needs from the configuration.
type Config struct {
	Zones []Zone
	Keys  []Key
	// Source returns the current snapshot of a zone by canonical origin;
	// false when it has none. It is called once per transfer and per
	// Changed, and may be called from many goroutines.
	Source func(origin string) (Snapshot, bool)
	Logger *slog.Logger

	// NotifyRetries is how often an unanswered NOTIFY is sent again
	// (0: 5; negative: never); NotifyTimeout is how long each attempt
	// waits for the answer (0: 2s).
	NotifyRetries int
	NotifyTimeout time.Duration

	// MaxTransfers caps concurrent outgoing transfers; more are answered
	// SERVFAIL, which secondaries retry later (0: 10).
	MaxTransfers int
	// WriteTimeout bounds each message write of a transfer when the
	// connection supports deadlines (0: 30s).
	WriteTimeout time.Duration
}

// Defaults for the zero values of Config.
const (
	DefaultNotifyRetries = 5
	DefaultNotifyTimeout = 2 * time.Second
	DefaultMaxTransfers  = 10
	DefaultWriteTimeout  = 30 * time.Second
)

// ErrConfig wraps every configuration error New reports.
var ErrConfig = errors.New("xfrout config")

// Stats are cumulative counters, read with Load.
type Stats struct {
	AXFR            atomic.Uint64 // AXFR answered with the zone
	IXFRIncremental atomic.Uint64 // IXFR answered with differences
	IXFRFull        atomic.Uint64 // IXFR answered with the whole zone
	IXFRCurrent     atomic.Uint64 // IXFR answered with our SOA alone (client up to date)
	Refused         atomic.Uint64 // REFUSED/NOTAUTH: unknown zone, ACL, TSIG
	Failed          atomic.Uint64 // SERVFAIL (no data, expired, busy), FORMERR, write errors
	NotifySent      atomic.Uint64 // NOTIFY datagrams sent, retries included
	NotifyAnswered  atomic.Uint64 // NOTIFYs answered (any rcode)
	NotifyGaveUp    atomic.Uint64 // NOTIFYs never answered after every retry
}

// keyState is a configured key ready to sign.
type keyState struct {
	Key // canonical
	p   dns.TsigProvider
}

// zoneConf is a configured zone, canonical.
type zoneConf struct {
	Zone
	prefixes  []netip.Prefix
	keys      map[string]bool // allowed key names
	notifyKey *keyState
}

// Server answers outgoing transfers and sends NOTIFYs. Its methods are safe
// for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	keys  map[string]*keyState
	zones map[string]*zoneConf
	sem   chan struct{}
	Stats Stats

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	// notifying maps a zone to the cancel func of its NOTIFY round in
	// flight: a newer change replaces the older round.
	notifying map[string]context.CancelFunc
	wg        sync.WaitGroup
}

// New checks cfg and returns a Server. Errors wrap ErrConfig.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, fmt.Errorf("%w: no Source", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NotifyRetries == 0 {
		cfg.NotifyRetries = DefaultNotifyRetries
	} else if cfg.NotifyRetries < 0 {
		cfg.NotifyRetries = 0
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = DefaultNotifyTimeout
	}
	if cfg.MaxTransfers <= 0 {
		cfg.MaxTransfers = DefaultMaxTransfers
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		keys:      map[string]*keyState{},
		zones:     map[string]*zoneConf{},
		sem:       make(chan struct{}, cfg.MaxTransfers),
		notifying: map[string]context.CancelFunc{},
	}
	for _, k := range cfg.Keys {
		c, err := k.Canonical()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if s.keys[c.Name] != nil {
			return nil, fmt.Errorf("%w: TSIG key %s listed twice", ErrConfig, c.Name)
		}
		p, err := c.Provider()
		if err != nil {
			return nil, fmt.Errorf("%w: TSIG key %s: %v", ErrConfig, c.Name, err)
		}
		s.keys[c.Name] = &keyState{Key: c, p: p}
	}
	for _, z := range cfg.Zones {
		if _, ok := dns.IsDomainName(z.Name); !ok || z.Name == "" {
			return nil, fmt.Errorf("%w: zone %q: not a domain name", ErrConfig, z.Name)
		}
		zc := &zoneConf{Zone: z, keys: map[string]bool{}}
		zc.Name = dns.CanonicalName(z.Name)
		if s.zones[zc.Name] != nil {
			return nil, fmt.Errorf("%w: zone %s listed twice", ErrConfig, zc.Name)
		}
		for _, p := range z.AllowTransfer.Prefixes {
			if !p.IsValid() {
				return nil, fmt.Errorf("%w: zone %s: allow-transfer: invalid prefix %v", ErrConfig, zc.Name, p)
			}
			zc.prefixes = append(zc.prefixes, p.Masked())
		}
		for _, name := range z.AllowTransfer.Keys {
			k := s.keys[dns.CanonicalName(name)]
			if k == nil {
				return nil, fmt.Errorf("%w: zone %s: allow-transfer: no TSIG key %q", ErrConfig, zc.Name, name)
			}
			zc.keys[k.Name] = true
		}
		zc.Notify = nil
		for _, a := range z.Notify {
			if !a.Addr().IsValid() {
				return nil, fmt.Errorf("%w: zone %s: notify: invalid address %v", ErrConfig, zc.Name, a)
			}
			if a.Port() == 0 {
				a = netip.AddrPortFrom(a.Addr(), 53)
			}
			zc.Notify = append(zc.Notify, netip.AddrPortFrom(a.Addr().Unmap(), a.Port()))
		}
		if z.NotifyKey != "" {
			zc.notifyKey = s.keys[dns.CanonicalName(z.NotifyKey)]
			if zc.notifyKey == nil {
				return nil, fmt.Errorf("%w: zone %s: notify key: no TSIG key %q", ErrConfig, zc.Name, z.NotifyKey)
			}
		}
		s.zones[zc.Name] = zc
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops every NOTIFY in flight and waits for their goroutines.
// Transfers in progress are not interrupted (the server owns their
// connections); Changed does nothing after Close.
func (s *Server) Close() {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// allowed reports whether the ACL lets from transfer with key (canonical
// name, "" when unsigned).
func (zc *zoneConf) allowed(from netip.Addr, key string) bool {
	in := false
	for _, p := range zc.prefixes {
		if p.Contains(from) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	return len(zc.keys) == 0 || zc.keys[key]
}
