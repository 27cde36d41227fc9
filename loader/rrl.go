package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf"

	"github.com/xdpns/xdpns/userspace/rrl"
)

// rrlStatNames are the counters of enum rrl_stat (bpf/rrl.h), in order.
var rrlStatNames = []string{"rrl__sent", "rrl__slipped", "rrl__dropped", "rrl__exempt"}

// RRLStatNames lists the XDP limiter's counters in the order RRLStats
// returns them.
func RRLStatNames() []string { return rrlStatNames }

// rrlOn is RRL_ON of rrl_params.flags.
const rrlOn = 0x0001

// SetRRL configures response rate limiting in XDP (cfg disabled: off) and
// the exempt networks. The buckets are kept: limits change, budgets carry
// over. The Go server must limit with the same cfg over RRLTable.
func (x *XDP) SetRRL(cfg rrl.Config) error {
	p := cfg.Params()
	v := xdpnsRrlParams{Interval: p.Interval, WindowNs: p.WindowNS, Slip: p.Slip,
		V4Prefix: p.V4Prefix, V6Prefix: p.V6Prefix}
	if cfg.Enabled() {
		v.Flags |= rrlOn
	}
	var k xdpnsRrlExemptKey
	var stale []xdpnsRrlExemptKey
	for it := x.objs.RrlExempt.Iterate(); it.Next(&k, new(uint8)); {
		stale = append(stale, k)
	}
	for _, k := range stale {
		if err := x.objs.RrlExempt.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear rrl exempt: %w", err)
		}
	}
	for _, pf := range cfg.Exempt {
		a, bits := pf.Addr(), pf.Bits()
		if a.Is4() {
			bits += 96
		}
		k := xdpnsRrlExemptKey{Prefixlen: uint32(bits), Net: pf.Masked().Addr().As16()}
		if err := x.objs.RrlExempt.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("write rrl exempt %s: %w", pf, err)
		}
	}
	if err := x.objs.RrlConfig.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write rrl config: %w", err)
	}
	return nil
}

// RRLTable is the bucket map XDP limits with, for the Go server's
// limiter (rrl.New(cfg, x.RRLTable(nil))): one budget per client network
// whichever answers. Once the map is unusable (the XDP object closed:
// XDP off, serve goes on in userspace), the buckets are fallback's (nil:
// a new in-process table).
func (x *XDP) RRLTable(fallback rrl.Table) rrl.Table {
	if fallback == nil {
		fallback = rrl.NewTable(0)
	}
	return &bpfTable{m: x.objs.RrlBuckets, fallback: fallback}
}

type bpfTable struct {
	m        *ebpf.Map
	fallback rrl.Table
	broken   atomic.Bool
}

func (t *bpfTable) Lookup(k *rrl.Key, e *rrl.Entry) bool {
	if t.broken.Load() {
		return t.fallback.Lookup(k, e)
	}
	var v xdpnsRrlEntry
	err := t.m.Lookup(&xdpnsRrlKey{Net: k.Net, Kind: k.Kind}, &v)
	switch {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return false
	case err != nil:
		t.broken.Store(true)
		return t.fallback.Lookup(k, e)
	}
	*e = rrl.Entry{TAT: v.Tat, Limited: v.Limited}
	return true
}

func (t *bpfTable) Store(k *rrl.Key, e *rrl.Entry) {
	if t.broken.Load() {
		t.fallback.Store(k, e)
		return
	}
	// A failed write loses one update, as a race with XDP does.
	_ = t.m.Put(&xdpnsRrlKey{Net: k.Net, Kind: k.Kind}, &xdpnsRrlEntry{Tat: e.TAT, Limited: e.Limited})
}

// RRLStats reads the XDP limiter's counters, summed over CPUs, by name.
func (x *XDP) RRLStats() (map[string]uint64, error) {
	out := map[string]uint64{}
	var per []uint64
	for i, n := range rrlStatNames {
		if err := x.objs.RrlStats.Lookup(uint32(i), &per); err != nil {
			return nil, fmt.Errorf("read stat %s: %w", n, err)
		}
		var s uint64
		for _, v := range per {
			s += v
		}
		out[n] = s
	}
	return out, nil
}

// checkRRLSpec verifies the limiter's maps against the ABI.
func checkRRLSpec(spec *ebpf.CollectionSpec) error {
	for name, kv := range map[string][2]uint32{
		xdpnsMapRrlConfig:  {4, uint32(binary.Size(xdpnsRrlParams{}))},
		xdpnsMapRrlBuckets: {uint32(binary.Size(xdpnsRrlKey{})), uint32(binary.Size(xdpnsRrlEntry{}))},
		xdpnsMapRrlExempt:  {uint32(binary.Size(xdpnsRrlExemptKey{})), 1},
		xdpnsMapRrlStats:   {4, 8},
	} {
		m := spec.Maps[name]
		if m == nil || m.KeySize != kv[0] || m.ValueSize != kv[1] {
			return fmt.Errorf("map %s: %w", name, ErrABI)
		}
	}
	if n := spec.Maps[xdpnsMapRrlStats].MaxEntries; int(n) != len(rrlStatNames) {
		return fmt.Errorf("rrl stats: %d counters, %d names: %w", n, len(rrlStatNames), ErrABI)
	}
	return nil
}
