// Package rrl is response rate limiting (RRL) for UDP answers, with the
// semantics of BIND's and Knot's: responses per second to one client
// network (an IPv4 /24, an IPv6 /56 by default), separate budgets for
// answers, NXDOMAIN and errors, a burst of `window` seconds of credit, and
// of the responses over the limit every slip-th one sent truncated (TC=1,
// so a real client retries over TCP) and the others dropped.
//
// The decision is one pure function, Step, that bpf/rrl.h implements with
// the same integer arithmetic: when XDP answers at the NIC, the XDP program
// and the Go server share one BPF map of buckets (loader.XDP.RRLTable), so a
// client network has one budget whichever of the two answers it. Without
// XDP the buckets live in an in-process table (NewTable). docs/rrl.md has
// the design.
package rrl

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Kind is the budget a response is charged to (the key's kind field).
type Kind uint8

// Kinds, as enum rrl_kind in bpf/rrl.h.
const (
	KindAnswer   Kind = 0 // NOERROR: answers, NODATA, referrals
	KindNXDomain Kind = 1 // NXDOMAIN
	KindError    Kind = 2 // every other RCODE (SERVFAIL, REFUSED, FORMERR, ...)
	Kinds             = 3
)

func (k Kind) String() string {
	switch k {
	case KindAnswer:
		return "answer"
	case KindNXDomain:
		return "nxdomain"
	case KindError:
		return "error"
	}
	return fmt.Sprintf("kind%d", uint8(k))
}

// KindOf returns the budget of a response with this (12-bit) RCODE.
func KindOf(rcode int) Kind {
	switch rcode {
	case 0:
		return KindAnswer
	case 3:
		return KindNXDomain
	}
	return KindError
}

// Decision is what to do with a response.
type Decision uint8

// Decisions, as enum rrl_decision in bpf/rrl.h.
const (
	Send Decision = iota // within the budget (or not limited)
	Slip                 // over it: send the truncated response (TC=1)
	Drop                 // over it: send nothing
)

func (d Decision) String() string {
	return [...]string{"send", "slip", "drop"}[d]
}

// Config is the limiter's configuration (server.rrl).
type Config struct {
	// ResponsesPerSecond, NXDomainsPerSecond and ErrorsPerSecond are the
	// budgets of the three kinds per client network; 0 leaves that kind
	// unlimited.
	ResponsesPerSecond uint32
	NXDomainsPerSecond uint32
	ErrorsPerSecond    uint32
	// Window is the credit a quiet network accumulates, in seconds of its
	// rate: a burst of rate × Window responses is sent before limiting
	// starts. At least one second.
	Window time.Duration
	// Slip: of the responses over the limit, every Slip-th is sent
	// truncated, the others dropped; 0 drops all, 1 truncates all.
	Slip uint32
	// IPv4PrefixLen and IPv6PrefixLen make the client network (24, 56).
	IPv4PrefixLen, IPv6PrefixLen int
	// Exempt networks are never limited.
	Exempt []netip.Prefix
	// TableSize bounds the in-process table (buckets); 0: DefaultTableSize.
	TableSize int
}

// Defaults (BIND: window 15, slip 2, /24, /56; Knot: slip 1).
const (
	DefaultWindow        = time.Second
	DefaultSlip          = 2
	DefaultIPv4PrefixLen = 24
	DefaultIPv6PrefixLen = 56
	DefaultTableSize     = 1 << 16
)

// Enabled reports whether any kind is limited.
func (c *Config) Enabled() bool {
	return c.ResponsesPerSecond > 0 || c.NXDomainsPerSecond > 0 || c.ErrorsPerSecond > 0
}

// Params are the numbers Step works with, as struct rrl_config in
// bpf/rrl.h: what the loader writes to the BPF map.
type Params struct {
	Interval [Kinds]uint64 // ns of budget one response costs; 0: unlimited
	WindowNS uint64        // burst tolerance in ns
	Slip     uint32
	V4Prefix uint8 // prefix lengths of the client network
	V6Prefix uint8
}

// Params turns the configuration into Step's numbers (defaults filled).
func (c *Config) Params() Params {
	p := Params{WindowNS: uint64(c.Window), Slip: c.Slip,
		V4Prefix: uint8(c.IPv4PrefixLen), V6Prefix: uint8(c.IPv6PrefixLen)}
	if c.Window < time.Second {
		p.WindowNS = uint64(time.Second)
	}
	if c.IPv4PrefixLen <= 0 || c.IPv4PrefixLen > 32 {
		p.V4Prefix = DefaultIPv4PrefixLen
	}
	if c.IPv6PrefixLen <= 0 || c.IPv6PrefixLen > 128 {
		p.V6Prefix = DefaultIPv6PrefixLen
	}
	for k, r := range [Kinds]uint32{c.ResponsesPerSecond, c.NXDomainsPerSecond, c.ErrorsPerSecond} {
		if r > 0 {
			p.Interval[k] = uint64(time.Second) / uint64(r)
		}
	}
	return p
}

// Key names a bucket: the client network (IPv4 mapped as ::ffff:a.b.c.d,
// host bits zero) and the kind. Layout of struct rrl_key.
type Key struct {
	Net  [16]byte
	Kind uint32
}

// Entry is a bucket (struct rrl_entry): TAT is the theoretical arrival
// time of the generic cell rate algorithm, in CLOCK_MONOTONIC ns (the clock
// of bpf_ktime_get_ns); Limited counts the responses over the limit, for
// slip.
type Entry struct {
	TAT     uint64
	Limited uint32
	Pad     uint32
}

// KeyOf returns the bucket key of a client address.
func (p *Params) KeyOf(addr netip.Addr, kind Kind) Key {
	k := Key{Kind: uint32(kind)}
	addr = addr.Unmap()
	bits := int(p.V6Prefix)
	if addr.Is4() {
		bits = 96 + int(p.V4Prefix)
	}
	k.Net = addr.As16() // As16 maps IPv4
	for i := range k.Net {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			k.Net[i] &= byte(0xff << (8 - bits))
			bits = 0
		default:
			k.Net[i] = 0
		}
	}
	return k
}

// Step decides one response charged to bucket e (found: e holds a stored
// bucket, else it is new) at time now, and updates e. It returns whether e
// must be stored. bpf/rrl.h rrl_step is the same arithmetic, line by line:
// a response costs Interval ns of budget; it is sent while the bucket's TAT
// is at most WindowNS - Interval ahead of now (a burst of WindowNS/Interval
// responses, then one per Interval). Limited responses do not spend budget
// (so a network over the limit still gets its rate: Knot's behaviour; BIND
// also charges them, down to a debt of a window).
func (p *Params) Step(e *Entry, found bool, kind Kind, now uint64) (Decision, bool) {
	t := p.Interval[kind]
	if t == 0 {
		return Send, false
	}
	if !found {
		*e = Entry{}
	}
	tat := e.TAT
	if tat < now {
		tat = now
	}
	if tat-now+t > p.WindowNS {
		e.Limited++
		if p.Slip > 0 && e.Limited%p.Slip == 0 {
			return Slip, true
		}
		return Drop, true
	}
	e.TAT = tat + t
	return Send, true
}

// Table holds the buckets: the in-process Table of NewTable, or the BPF
// map shared with XDP (loader). Lookup and Store of one key by two
// goroutines (or a CPU running XDP) may interleave: one update can be
// lost, which lets a response or two more through; never fewer.
type Table interface {
	Lookup(k *Key, e *Entry) bool
	Store(k *Key, e *Entry)
}

// Stats are the limiter's counters (the Go server's share when XDP
// answers too).
type Stats struct {
	Sent, Slipped, Dropped, Exempt atomic.Uint64
}

// Limiter decides for the Go server.
type Limiter struct {
	cfg    Config
	p      Params
	table  Table
	exempt []netip.Prefix
	// Now returns CLOCK_MONOTONIC in ns; tests set a fake clock.
	Now   func() uint64
	Stats Stats
}

// New returns a limiter over table; nil: an in-process table.
func New(cfg Config, table Table) *Limiter {
	if table == nil {
		table = NewTable(cfg.TableSize)
	}
	return &Limiter{cfg: cfg, p: cfg.Params(), table: table, exempt: cfg.Exempt, Now: Monotonic}
}

// Params returns the limiter's numbers.
func (l *Limiter) Params() Params { return l.p }

// Monotonic is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
func Monotonic() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

// Exempt reports whether addr is in an exempt network.
func (l *Limiter) Exempt(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range l.exempt {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Check decides a response of this kind to addr.
func (l *Limiter) Check(addr netip.Addr, kind Kind) Decision {
	if l.p.Interval[kind] == 0 {
		return Send // not limited, not counted (as in XDP)
	}
	if l.Exempt(addr) {
		l.Stats.Exempt.Add(1)
		return Send
	}
	k := l.p.KeyOf(addr, kind)
	var e Entry
	found := l.table.Lookup(&k, &e)
	d, store := l.p.Step(&e, found, kind, l.Now())
	if store {
		l.table.Store(&k, &e)
	}
	switch d {
	case Send:
		l.Stats.Sent.Add(1)
	case Slip:
		l.Stats.Slipped.Add(1)
	case Drop:
		l.Stats.Dropped.Add(1)
	}
	return d
}
