package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Per-zone answer counters. Every index entry names its zone's slot in the
// per-CPU array zone_stats (index_val.zone); XDP adds one there for each
// answer it sends. Slots are handed out by the XDP object as generations
// take zones in, and come free (zeroed) when a zone leaves the maps; slot 0
// counts zones beyond zone_stats' size.

// zoneSlots hands out zone_stats slots by canonical origin.
type zoneSlots struct {
	by   map[string]uint32
	free []uint32
	next uint32
	max  uint32
}

// slot returns origin's slot, taking a new one if it has none (0 when
// every slot is taken).
func (x *XDP) zoneSlot(origin string) uint32 {
	zs := &x.slots
	if zs.by == nil {
		zs.by, zs.next = map[string]uint32{}, 1
		zs.max = x.objs.ZoneStats.MaxEntries()
	}
	if id, ok := zs.by[origin]; ok {
		return id
	}
	var id uint32
	switch {
	case len(zs.free) > 0:
		id = zs.free[len(zs.free)-1]
		zs.free = zs.free[:len(zs.free)-1]
	case zs.next < zs.max:
		id = zs.next
		zs.next++
	default:
		return 0
	}
	zs.by[origin] = id
	return id
}

// assignSlots gives every zone of im its slot, before im's entries are
// written (fill, which renumbers the index's zones to the slots).
func (x *XDP) assignSlots(im *Image) {
	for _, z := range im.zones {
		if z.id == 0 {
			z.id = x.zoneSlot(z.origin)
		}
	}
}

// releaseSlots frees the slots of zones g no longer holds, zeroing their
// counters for the next zone (called once the old generation is retired).
func (x *XDP) releaseSlots(g *generation) error {
	if g.answers == nil {
		return nil
	}
	held := map[string]bool{}
	for _, z := range g.zones {
		held[z.origin] = true
	}
	zero := make([]uint64, ebpf.MustPossibleCPU())
	for origin, id := range x.slots.by {
		if held[origin] {
			continue
		}
		delete(x.slots.by, origin)
		if err := x.objs.ZoneStats.Put(id, zero); err != nil {
			return fmt.Errorf("zero zone counter %s: %w", origin, err)
		}
		x.slots.free = append(x.slots.free, id)
	}
	return nil
}

// ZoneAnswers returns the answers XDP sent per zone (canonical origin)
// since the zone entered the maps, summed over CPUs; "" holds those of
// zones beyond zone_stats' size (Config.MaxZones).
func (x *XDP) ZoneAnswers() (map[string]uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]uint64, len(x.slots.by)+1)
	var per []uint64
	sum := func(id uint32) (uint64, error) {
		if err := x.objs.ZoneStats.Lookup(id, &per); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return 0, err
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		return n, nil
	}
	for origin, id := range x.slots.by {
		n, err := sum(id)
		if err != nil {
			return nil, fmt.Errorf("read zone counter %s: %w", origin, err)
		}
		out[origin] = n
	}
	n, err := sum(0)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		out[""] = n
	}
	return out, nil
}
