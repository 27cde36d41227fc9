package xfr

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

// Key is a TSIG key (RFC 8945).
type Key struct {
	// Name is the key's name as both ends know it, e.g. "xfr.example.".
	Name string
	// Algorithm is one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1,
	// hmac-md5 (the long name hmac-md5.sig-alg.reg.int. is accepted too).
	Algorithm string
	// Secret is the shared secret, base64 as in BIND's key statement.
	Secret string
}

// Primary is one server a zone is transferred from.
type Primary struct {
	Addr netip.AddrPort
	// Key signs every query to this primary and must sign every answer and
	// every NOTIFY from it. Nil: unsigned.
	Key *Key
	// TLS, when set, carries every exchange with this primary over TLS
	// (XoT, RFC 9103): SOA queries and transfers alike. Build it with
	// xot.Client. Nil: UDP and TCP.
	TLS *tls.Config
	// TLSID identifies the TLS settings (e.g. a digest of the tls block
	// and its files): Reconfigure restarts a zone when it changes, and
	// compares it instead of TLS. Empty: TLS is compared as a pointer.
	TLSID string
}

func (p Primary) String() string {
	if p.TLS != nil {
		return p.Addr.String() + " (tls)"
	}
	return p.Addr.String()
}

// Timers clamp the SOA timers (RFC 1035 §3.3.13). A zero field takes the
// Manager's default (Config.Timers, then DefaultTimers).
type Timers struct {
	RefreshMin, RefreshMax time.Duration
	RetryMin, RetryMax     time.Duration
	ExpireMin, ExpireMax   time.Duration
	// Jitter is the largest fraction of an interval taken off at random,
	// so zones loaded together do not poll in step. 0 takes the default;
	// negative disables jitter.
	Jitter float64
}

// DefaultTimers are used for every field left zero.
var DefaultTimers = Timers{
	RefreshMin: 2 * time.Second,
	RefreshMax: 24 * time.Hour,
	RetryMin:   time.Second,
	RetryMax:   24 * time.Hour,
	ExpireMin:  time.Minute,
	ExpireMax:  90 * 24 * time.Hour,
	Jitter:     0.1,
}

func (t Timers) or(d Timers) Timers {
	pick := func(a, b time.Duration) time.Duration {
		if a == 0 {
			return b
		}
		return a
	}
	t.RefreshMin = pick(t.RefreshMin, d.RefreshMin)
	t.RefreshMax = pick(t.RefreshMax, d.RefreshMax)
	t.RetryMin = pick(t.RetryMin, d.RetryMin)
	t.RetryMax = pick(t.RetryMax, d.RetryMax)
	t.ExpireMin = pick(t.ExpireMin, d.ExpireMin)
	t.ExpireMax = pick(t.ExpireMax, d.ExpireMax)
	if t.Jitter == 0 {
		t.Jitter = d.Jitter
	}
	return t
}

func (t Timers) check() error {
	pairs := []struct {
		name     string
		min, max time.Duration
	}{
		{"refresh", t.RefreshMin, t.RefreshMax},
		{"retry", t.RetryMin, t.RetryMax},
		{"expire", t.ExpireMin, t.ExpireMax},
	}
	for _, p := range pairs {
		if p.min <= 0 || p.max < p.min {
			return fmt.Errorf("%s clamps: want 0 < min <= max, got %v..%v", p.name, p.min, p.max)
		}
	}
	if t.Jitter >= 0.5 {
		return fmt.Errorf("jitter %v: want below 0.5", t.Jitter)
	}
	return nil
}

// Zone configures one secondary zone.
type Zone struct {
	// Name is the zone's origin.
	Name string
	// Primaries are tried in order; the next one is tried when one fails
	// or times out.
	Primaries []Primary
	// AllowNotify lists further NOTIFY sources besides the primaries'
	// addresses (a primary that notifies from another address).
	AllowNotify []netip.Prefix
	// Timers override the Manager's clamps for this zone.
	Timers Timers
	// AXFROnly never asks for IXFR (primaries with broken journals).
	AXFROnly bool
}

// Limits bound what a primary can make us hold.
type Limits struct {
	// MaxRecords is the largest zone accepted (records in one transfer).
	MaxRecords int
	// MaxRRSize is the largest record accepted, in wire bytes
	// (owner, header and data, uncompressed).
	MaxRRSize int
	// JournalRecords bounds the IXFR differences kept per zone (deleted
	// plus added records), oldest dropped first. 0: the zone's number of
	// names, at least 1024.
	JournalRecords int
}

// DefaultLimits are used for every field left zero.
var DefaultLimits = Limits{
	MaxRecords: 20_000_000,
	MaxRRSize:  16 << 10,
}

// Timeouts bound the network exchanges.
type Timeouts struct {
	// Query bounds one SOA query, including TCP connect when retried
	// over TCP, and the TCP connect of a transfer.
	Query time.Duration
	// Read bounds the wait for each message of a transfer.
	Read time.Duration
	// Transfer bounds a whole transfer.
	Transfer time.Duration
}

// DefaultTimeouts are used for every field left zero.
var DefaultTimeouts = Timeouts{
	Query:    2 * time.Second,
	Read:     10 * time.Second,
	Transfer: 15 * time.Minute,
}

// Config configures a Manager.
type Config struct {
	// StateDir holds one file per zone (and its timers). Empty: nothing
	// persists (tests, containers without a volume).
	StateDir string
	Zones    []Zone
	// Timers are the default clamps for every zone.
	Timers   Timers
	Limits   Limits
	Timeouts Timeouts
	// MaxTransfers caps concurrent transfers; 0 means 10.
	MaxTransfers int
	// MaxQueries caps concurrent SOA queries; 0 means 64.
	MaxQueries int

	// OnZone receives each new version of a zone to serve, from the zone's
	// own goroutine (so in order per zone) or from Start. The zone is
	// validated and never modified afterwards.
	OnZone func(z *zone.Zone)
	// OnExpire reports that a zone passed its expire deadline without a
	// successful refresh (expired=true: answer SERVFAIL) or recovered
	// (false). It follows the OnZone of the zone it concerns.
	OnExpire func(origin string, expired bool)

	Logger *slog.Logger
}

// algorithms maps the accepted spellings to the wire names.
var algorithms = map[string]string{
	"hmac-md5":                 hmacMD5,
	"hmac-md5.sig-alg.reg.int": hmacMD5,
	"hmac-sha1":                dns.HmacSHA1,
	"hmac-sha224":              dns.HmacSHA224,
	"hmac-sha256":              dns.HmacSHA256,
	"hmac-sha384":              dns.HmacSHA384,
	"hmac-sha512":              dns.HmacSHA512,
}

// hmacMD5 is the wire name of HMAC-MD5 (RFC 8945 §6).
const hmacMD5 = "hmac-md5.sig-alg.reg.int."

// ErrConfig wraps every configuration error New reports.
var ErrConfig = errors.New("xfr config")

func (c *Config) normalise() error {
	c.Timers = c.Timers.or(DefaultTimers)
	if err := c.Timers.check(); err != nil {
		return fmt.Errorf("%w: timers: %v", ErrConfig, err)
	}
	if c.Limits.MaxRecords <= 0 {
		c.Limits.MaxRecords = DefaultLimits.MaxRecords
	}
	if c.Limits.MaxRRSize <= 0 {
		c.Limits.MaxRRSize = DefaultLimits.MaxRRSize
	}
	if c.Timeouts.Query <= 0 {
		c.Timeouts.Query = DefaultTimeouts.Query
	}
	if c.Timeouts.Read <= 0 {
		c.Timeouts.Read = DefaultTimeouts.Read
	}
	if c.Timeouts.Transfer <= 0 {
		c.Timeouts.Transfer = DefaultTimeouts.Transfer
	}
	if c.MaxTransfers <= 0 {
		c.MaxTransfers = 10
	}
	if c.MaxQueries <= 0 {
		c.MaxQueries = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for i := range c.Zones {
		z := &c.Zones[i]
		if _, ok := dns.IsDomainName(z.Name); !ok || z.Name == "" {
			return fmt.Errorf("%w: zone %q: not a domain name", ErrConfig, z.Name)
		}
		z.Name = dns.CanonicalName(z.Name)
		if seen[z.Name] {
			return fmt.Errorf("%w: zone %s listed twice", ErrConfig, z.Name)
		}
		seen[z.Name] = true
		if len(z.Primaries) == 0 {
			return fmt.Errorf("%w: zone %s: no primaries", ErrConfig, z.Name)
		}
		for j := range z.Primaries {
			p := &z.Primaries[j]
			if !p.Addr.IsValid() || p.Addr.Port() == 0 {
				return fmt.Errorf("%w: zone %s: primary %d: want IP:port, got %v", ErrConfig, z.Name, j, p.Addr)
			}
			if p.Key != nil {
				k, err := p.Key.normalise()
				if err != nil {
					return fmt.Errorf("%w: zone %s: primary %s: %v", ErrConfig, z.Name, p.Addr, err)
				}
				p.Key = k
			}
		}
		z.Timers = z.Timers.or(c.Timers)
		if err := z.Timers.check(); err != nil {
			return fmt.Errorf("%w: zone %s: timers: %v", ErrConfig, z.Name, err)
		}
	}
	return nil
}

// normalise returns a copy with canonical key and algorithm names and a
// secret checked to be base64.
func (k *Key) normalise() (*Key, error) {
	if _, ok := dns.IsDomainName(k.Name); !ok || k.Name == "" {
		return nil, fmt.Errorf("TSIG key name %q: not a domain name", k.Name)
	}
	alg, ok := algorithms[strings.TrimSuffix(strings.ToLower(k.Algorithm), ".")]
	if !ok {
		return nil, fmt.Errorf("TSIG key %s: unknown algorithm %q (want hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1 or hmac-md5)", k.Name, k.Algorithm)
	}
	raw, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("TSIG key %s: secret is not base64", k.Name)
	}
	return &Key{Name: dns.CanonicalName(k.Name), Algorithm: alg, Secret: k.Secret}, nil
}
