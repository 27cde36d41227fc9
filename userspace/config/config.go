// Package config reads the xdpns YAML configuration.
//
// Decoding is strict and goes through yaml.Node, so every problem names
// FILE:LINE: unknown keys (with the list of valid ones), values of the wrong
// kind, out-of-range numbers, bad durations and addresses, duplicate or
// malformed zone names, keys named but not defined. Parse collects every
// problem instead of stopping at the first; the error it returns is an
// Errors, one "file:line: message" per line.
//
// Each section is described by a table of fields (see schema.go); a new
// option is one more row and one more struct field.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Config is a validated configuration. Zero values never reach callers:
// Parse fills defaults for everything the file leaves out.
type Config struct {
	// File is the path the configuration was read from, as given.
	File    string
	Server  Server
	Log     Log
	Xfr     Xfr
	Control Control
	XDP     XDP
	Metrics Metrics
	// Keys are the TSIG keys zones refer to by name, in file order.
	Keys []Key
	// TLSBlocks are the tls blocks primaries and server.tls refer to by
	// name (XoT, docs/xot.md), in file order.
	TLSBlocks []TLS
	Zones     []Zone
	// Templates are the settings of consumed catalogs' member zones
	// (catalog.go).
	Templates []Template
}

// Server holds the listener and responder settings.
type Server struct {
	// Listen is every address served on UDP and TCP.
	Listen []netip.AddrPort
	// UDPPayload is the EDNS(0) payload size we advertise (RFC 6891).
	UDPPayload uint16
	// UDPSockets is the number of SO_REUSEPORT sockets per address; 0 means
	// one per CPU.
	UDPSockets int
	// TCPIdleTimeout closes a TCP connection idle for this long (RFC 7766).
	TCPIdleTimeout time.Duration
	// TCPMaxConnections bounds concurrent TCP connections.
	TCPMaxConnections int
	// NSID is returned in the EDNS NSID option (RFC 5001); empty is off.
	NSID string
	// Identity answers CHAOS TXT id.server and hostname.bind; empty refuses.
	Identity string
	// Version answers CHAOS TXT version.bind; empty refuses.
	Version string
	// AllowInclude permits $INCLUDE in zone files.
	AllowInclude bool
	// RRL is response rate limiting (server.rrl); Cookies are DNS
	// cookies (server.cookies).
	RRL     RRL
	Cookies Cookies
	// ListenTLS is every address served over TLS (TCP; DoT and XoT,
	// RFC 9103), with the tls block named by TLS.
	ListenTLS     []netip.AddrPort
	TLS           string
	ListenTLSLine int
	TLSLine       int
}

// Log holds the logger settings.
type Log struct {
	Level  slog.Level
	Format string // "text" or "json"
}

// Xfr holds the settings of transfers from primaries (package xfr).
type Xfr struct {
	// StateDir keeps each secondary zone and its timers across restarts,
	// resolved against the configuration file's directory when relative.
	// Empty: nothing persists.
	StateDir string
	// RuntimeZones is the file where `xdpns zone add` keeps the zones
	// added at run time (runtime.go), resolved like StateDir. Default:
	// runtime-zones.yaml in StateDir; empty: no run-time zones.
	RuntimeZones string
	// MaxTransfers caps concurrent transfers.
	MaxTransfers int
	// MaxSOAQueries caps concurrent SOA queries.
	MaxSOAQueries int
	// Timers clamp the SOA timers of every secondary zone; all set.
	Timers   Timers
	Timeouts Timeouts
	Limits   Limits
}

// Timers clamp a zone's SOA refresh, retry and expire. At the xfr level
// every field is set; in a zone, zero fields (nil Jitter) inherit it.
type Timers struct {
	RefreshMin, RefreshMax time.Duration
	RetryMin, RetryMax     time.Duration
	ExpireMin, ExpireMax   time.Duration
	// Jitter is the largest fraction taken off each wait at random; 0 is
	// none.
	Jitter *float64
}

// Timeouts bound the network exchanges with primaries.
type Timeouts struct {
	Query    time.Duration // one SOA query, a TCP connect
	Read     time.Duration // each message of a transfer
	Transfer time.Duration // a whole transfer
}

// Limits bound what a primary can make us hold.
type Limits struct {
	MaxRecords int // records in one zone
	MaxRRSize  int // wire bytes of one record
	// JournalRecords bounds the IXFR history kept per zone; 0: the zone's
	// number of names, at least 1024.
	JournalRecords int
}

// Control is the local control socket of serve, used by the zone
// subcommands.
type Control struct {
	// Socket is the unix socket path, resolved against the configuration
	// file's directory when relative. Empty: no control socket.
	Socket string
	// Group may use the socket besides root; empty: root only.
	Group string
	// GroupLine is where group is set (or 0), for messages about it.
	GroupLine int
}

// XDP holds the settings of the XDP fast path (package loader): the
// program answering UDP queries at the NIC from the compiled answers.
type XDP struct {
	// Interfaces get the XDP program; empty: XDP off, every query is
	// answered from userspace.
	Interfaces []string
	// Mode is how the program is attached: "auto" (native, else
	// generic), "native" (in the driver) or "generic" (any interface,
	// slower).
	Mode string
	// Pin is a directory on a bpffs mount (e.g. /sys/fs/bpf/xdpns) where
	// the maps and links are pinned, so XDP keeps answering while serve
	// restarts and the next serve adopts them. Empty: nothing pinned; XDP
	// is detached when serve stops.
	Pin string
	// IndexEntries and StoreBlocks fix the capacity of a generation of
	// answer maps (index entries; store blocks of 64 KiB + 2320 bytes).
	// Both zero: each generation is sized from its zones, with headroom.
	IndexEntries int
	StoreBlocks  int
	// Line is where interfaces is set (or 0), for messages about XDP.
	Line int
}

// Enabled reports whether XDP is configured (some interface named).
func (x *XDP) Enabled() bool { return len(x.Interfaces) > 0 }

// Metrics is the Prometheus endpoint of serve (GET /metrics over HTTP).
type Metrics struct {
	// Listen is the TCP address of the endpoint; invalid (the default):
	// no endpoint.
	Listen netip.AddrPort
	// Line is where listen is set (or 0), for messages about it.
	Line int
}

// Enabled reports whether the endpoint is configured.
func (m *Metrics) Enabled() bool { return m.Listen.IsValid() }

// Key is a TSIG key (RFC 8945).
type Key struct {
	// Name is canonical: lowercase, fully qualified.
	Name string
	// Algorithm is lowercase without a final dot, e.g. "hmac-sha256".
	Algorithm string
	// Secret is base64, read from secret-file when the file gave one.
	Secret string
	Line   int
}

// Zone is one served zone: from a file (File set), or a secondary
// transferred from its primaries (Primaries set); never both.
type Zone struct {
	// Name is canonical: lowercase, fully qualified.
	Name string
	// File is the zone file path, resolved against the configuration file's
	// directory when relative.
	File string

	// Primaries of a secondary zone, tried in order.
	Primaries []Primary
	// AllowNotify lists NOTIFY sources besides the primaries' addresses.
	AllowNotify []netip.Prefix
	// AXFROnly never asks for IXFR.
	AXFROnly bool
	// Timers override the xfr clamps for this zone.
	Timers Timers

	// AllowTransfer says who may transfer the zone from us.
	AllowTransfer AllowTransfer
	// Notify lists where NOTIFY goes when the zone changes.
	Notify []netip.AddrPort
	// NotifyKey names the key that signs those NOTIFYs; empty: unsigned.
	NotifyKey string

	// Catalog is the zone's catalog role (catalog.go): "" (none),
	// "consume" or "produce". CatalogMembers are the zones a produced
	// catalog lists (nil: all); MaxMembers bounds a consumed one. Group
	// is written as this zone's group property in produced catalogs.
	Catalog        string
	CatalogMembers []string
	MaxMembers     int
	Group          string
	// MemberOf is the consumed catalog a member zone came from, and
	// Template the template it was given (MemberZone); empty in the file.
	MemberOf, Template string

	// Line is where the zone's entry starts in the configuration file, for
	// messages about it.
	Line int
}

// Secondary reports whether the zone is transferred from primaries.
func (z *Zone) Secondary() bool { return len(z.Primaries) > 0 }

// Primary is one server a secondary zone is transferred from.
type Primary struct {
	Addr netip.AddrPort
	// Key names the TSIG key (in Config.Keys) signing the exchanges; empty:
	// unsigned.
	Key string
	// TLS names the tls block (in Config.TLSBlocks) every exchange with
	// this primary goes through; empty: UDP and TCP.
	TLS string
}

// AllowTransfer says who may transfer a zone from us (AXFR/IXFR out): a
// client whose address is inside one of From (any address when From is
// empty and Keys is not) and, when Keys is set, whose request is signed
// with one of them. Both empty: nobody.
type AllowTransfer struct {
	From []netip.Prefix
	Keys []string // names in Config.Keys
}

// Defaults for options the file leaves out.
const (
	DefaultListen            = "127.0.0.1:53"
	DefaultUDPPayload        = 1232
	DefaultTCPIdleTimeout    = 10 * time.Second
	DefaultTCPMaxConnections = 1000

	DefaultStateDir      = "/var/lib/xdpns/zones"
	DefaultMaxTransfers  = 10
	DefaultMaxSOAQueries = 64
	DefaultControlSocket = "/run/xdpns/control.sock"
	DefaultXDPMode       = "auto"
)

// DefaultTimers, DefaultTimeouts and DefaultLimits are those of package
// xfr (a test in cmd/xdpns keeps them equal).
var (
	DefaultTimers = Timers{
		RefreshMin: 2 * time.Second,
		RefreshMax: 24 * time.Hour,
		RetryMin:   time.Second,
		RetryMax:   24 * time.Hour,
		ExpireMin:  time.Minute,
		ExpireMax:  90 * 24 * time.Hour,
	}
	DefaultJitter   = 0.1
	DefaultTimeouts = Timeouts{Query: 2 * time.Second, Read: 10 * time.Second, Transfer: 15 * time.Minute}
	DefaultLimits   = Limits{MaxRecords: 20_000_000, MaxRRSize: 16 << 10}
)

// Default returns the configuration of an empty file.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:            []netip.AddrPort{netip.MustParseAddrPort(DefaultListen)},
			UDPPayload:        DefaultUDPPayload,
			TCPIdleTimeout:    DefaultTCPIdleTimeout,
			TCPMaxConnections: DefaultTCPMaxConnections,
		},
		Log: Log{Level: slog.LevelInfo, Format: "text"},
		Xfr: Xfr{
			StateDir:      DefaultStateDir,
			RuntimeZones:  filepath.Join(DefaultStateDir, RuntimeZonesFile),
			MaxTransfers:  DefaultMaxTransfers,
			MaxSOAQueries: DefaultMaxSOAQueries,
			Timers:        defaultTimers(),
			Timeouts:      DefaultTimeouts,
			Limits:        DefaultLimits,
		},
		Control: Control{Socket: DefaultControlSocket},
		XDP:     XDP{Mode: DefaultXDPMode},
	}
}

func defaultTimers() Timers {
	t := DefaultTimers
	j := DefaultJitter
	t.Jitter = &j
	return t
}

// Load reads and parses the configuration file at path. Relative zone file
// paths are resolved against the directory of path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes configuration text. file names the source in errors, and its
// directory is the base for relative zone file paths. On any problem the
// error is an Errors listing all of them and the *Config is nil.
func Parse(data []byte, file string) (*Config, error) {
	d := &decoder{file: file, base: filepath.Dir(file)}
	cfg := Default()
	cfg.File = file
	d.decode(data, cfg)
	d.finish(cfg)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	for i := range cfg.Zones {
		if cfg.Zones[i].File != "" {
			cfg.Zones[i].File = d.path(cfg.Zones[i].File)
		}
	}
	if cfg.Xfr.StateDir != "" {
		cfg.Xfr.StateDir = d.path(cfg.Xfr.StateDir)
	}
	d.runtimeZonesPath(cfg)
	if cfg.Control.Socket != "" {
		cfg.Control.Socket = d.path(cfg.Control.Socket)
	}
	return cfg, nil
}

// Key returns the key with the canonical name, or nil.
func (c *Config) Key(name string) *Key {
	for i := range c.Keys {
		if c.Keys[i].Name == name {
			return &c.Keys[i]
		}
	}
	return nil
}

// Secondaries reports how many zones are transferred from primaries.
func (c *Config) Secondaries() int {
	n := 0
	for i := range c.Zones {
		if c.Zones[i].Secondary() {
			n++
		}
	}
	return n
}

// XDPService is what the XDP program answers, taken from server.listen:
// UDP to the port of the first listen address, at every listen address
// on that port (addrs nil: at any address, when both 0.0.0.0 and [::]
// listen on it; 0.0.0.0 or :: among addrs: any address of that family,
// when only its wildcard listens). Addresses on other ports are answered
// from userspace only.
func (c *Config) XDPService() (port uint16, addrs []netip.Addr) {
	if len(c.Server.Listen) == 0 {
		return 0, nil
	}
	port = c.Server.Listen[0].Port()
	var any4, any6 bool
	seen := map[netip.Addr]bool{}
	for _, ap := range c.Server.Listen {
		if ap.Port() != port {
			continue
		}
		a := ap.Addr().Unmap()
		switch {
		case a == netip.IPv4Unspecified():
			any4 = true
		case a == netip.IPv6Unspecified():
			any6 = true
		case !seen[a]:
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	if any4 && any6 {
		return port, nil
	}
	// A wildcard stands for its family; that family's addresses are
	// then redundant.
	switch {
	case any4:
		addrs = append(slices.DeleteFunc(addrs, netip.Addr.Is4), netip.IPv4Unspecified())
	case any6:
		addrs = append(slices.DeleteFunc(addrs, netip.Addr.Is6), netip.IPv6Unspecified())
	}
	return port, addrs
}

// Zone returns the zone entry with the canonical name, or nil.
func (c *Config) Zone(name string) *Zone {
	for i := range c.Zones {
		if c.Zones[i].Name == name {
			return &c.Zones[i]
		}
	}
	return nil
}
