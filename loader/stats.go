package loader

import "fmt"

// statNames are the counters of enum stat (bpf/abi.h), in order.
var statNames = []string{
	"tx__answer",
	"tx__truncated",
	"tx__nxdomain",
	"pass__not_ip",
	"pass__ip_options",
	"pass__fragment",
	"pass__not_udp",
	"pass__not_ours",
	"pass__malformed",
	"pass__qr",
	"pass__opcode",
	"pass__counts",
	"pass__name",
	"pass__class",
	"pass__qtype",
	"pass__additional",
	"pass__edns_version",
	"pass__nsid",
	"pass__expire",
	"pass__trailing",
	"pass__no_entry",
	"pass__collision",
	"pass__oversize",
	"pass__no_room",
	"aborted__bounds",
	"tx__wildcard",
	"tx__referral",
	"pass__cookie",
}

// StatNames lists the counter names in the order Stats returns them.
func StatNames() []string { return statNames }

// Stats is one reading of the verdict counters, summed over CPUs.
type Stats []uint64

// Get returns the counter with this name (0 if unknown).
func (s Stats) Get(name string) uint64 {
	for i, n := range statNames {
		if n == name && i < len(s) {
			return s[i]
		}
	}
	return 0
}

// Sub returns s - old, counter by counter.
func (s Stats) Sub(old Stats) Stats {
	d := make(Stats, len(s))
	for i := range s {
		d[i] = s[i]
		if i < len(old) {
			d[i] -= old[i]
		}
	}
	return d
}

// NonZero returns the counters that are not zero, by name.
func (s Stats) NonZero() map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range s {
		if v != 0 {
			m[statNames[i]] = v
		}
	}
	return m
}

// Stats reads the counters.
func (x *XDP) Stats() (Stats, error) {
	out := make(Stats, len(statNames))
	var per []uint64
	for i := range statNames {
		if err := x.objs.Stats.Lookup(uint32(i), &per); err != nil {
			return nil, fmt.Errorf("read stat %s: %w", statNames[i], err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}
