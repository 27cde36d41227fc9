// Package config reads the xdpns YAML configuration.
//
// Decoding is strict and goes through yaml.Node, so every problem names
// FILE:LINE: unknown keys (with the list of valid ones), values of the wrong
// kind, out-of-range numbers, bad durations and addresses, duplicate or
// malformed zone names. Parse collects every problem instead of stopping at
// the first; the error it returns is an Errors, one "file:line: message" per
// line.
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
	"time"
)

// Config is a validated configuration. Zero values never reach callers:
// Parse fills defaults for everything the file leaves out.
type Config struct {
	// File is the path the configuration was read from, as given.
	File   string
	Server Server
	Log    Log
	Zones  []Zone
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
}

// Log holds the logger settings.
type Log struct {
	Level  slog.Level
	Format string // "text" or "json"
}

// Zone is one zone served from a file.
type Zone struct {
	// Name is canonical: lowercase, fully qualified.
	Name string
	// File is the zone file path, resolved against the configuration file's
	// directory when relative.
	File string
	// Line is where the zone's entry starts in the configuration file, for
	// messages about it.
	Line int
}

// Defaults for options the file leaves out.
const (
	DefaultListen            = "127.0.0.1:53"
	DefaultUDPPayload        = 1232
	DefaultTCPIdleTimeout    = 10 * time.Second
	DefaultTCPMaxConnections = 1000
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
	}
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
	d := &decoder{file: file}
	cfg := Default()
	cfg.File = file
	d.decode(data, cfg)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	base := filepath.Dir(file)
	for i := range cfg.Zones {
		if !filepath.IsAbs(cfg.Zones[i].File) {
			cfg.Zones[i].File = filepath.Join(base, cfg.Zones[i].File)
		}
	}
	return cfg, nil
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
