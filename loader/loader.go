// Package loader loads the XDP program of ../bpf, fills its maps with
// compiled answers (userspace/compile) and attaches it to interfaces. It
// knows the ABI of bpf/abi.h, not DNS: records are bytes the compiler made.
package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Defaults for Config fields left zero.
const (
	DefaultPort       = 53
	DefaultUDPPayload = 1232 // as responder.DefaultUDPPayload
	// DefaultMaxDNS fits a 1500-byte MTU under IPv6 and UDP headers.
	DefaultMaxDNS = 1500 - 40 - 8
	// DefaultHeadroom is the share of index capacity above the entries
	// loaded, in percent, for updates that add names.
	DefaultHeadroom = 25
)

// Spare capacity of a generation sized by the loader, at least: room for
// updates to write new records while the ones they replace wait out a
// grace period (about 90 KiB of index and 270 KiB of store). Variables so
// that tests can make maps run out of room.
var (
	minSpareEntries = 1024
	minSpareBlocks  = 4
)

// MaxIndexEntries bounds the index map (about 25 bytes of kernel memory per
// entry, allocated at load).
const MaxIndexEntries = 1 << 26

// Config sizes and configures the XDP program.
type Config struct {
	Port       uint16 // UDP port answered; 0: 53
	UDPPayload uint16 // our EDNS payload size; 0: 1232 (must equal the responder's)
	MaxDNS     uint16 // largest DNS message XDP sends; 0: DefaultMaxDNS
	NSID       bool   // NSID configured: NSID queries are passed to Go
	// ServiceAddrs are the destination addresses answered; empty: any.
	// 0.0.0.0 stands for every IPv4 address, :: for every IPv6 one.
	ServiceAddrs []netip.Addr

	// IndexEntries and StoreBlocks (64 KiB + slack each) are the capacity
	// of a generation of answer maps; Load fails with ErrTooLarge beyond
	// them. Zero: each generation is sized from its image, with
	// DefaultHeadroom percent to spare.
	IndexEntries int
	StoreBlocks  int

	// MaxZones is the number of per-zone answer counters (ZoneAnswers);
	// zones beyond share one. 0: 65536. A per-CPU array: 8 bytes per zone
	// and CPU.
	MaxZones int

	// NoTailGrow makes the program grow frames at the head only (tests).
	NoTailGrow bool

	// PinPath, when set, is a bpffs directory (DefaultPinPath) where the
	// maps and links are pinned, so XDP keeps answering while the daemon
	// restarts; New adopts what it finds there.
	PinPath string
}

// SizeFor returns cfg with capacities that hold im, plus headroom percent.
func (cfg Config) SizeFor(im *Image, headroom int) Config {
	cfg.IndexEntries = max(1, im.Entries+im.Entries*headroom/100)
	cfg.StoreBlocks = max(1, im.Blocks()+im.Blocks()*headroom/100)
	return cfg
}

// Errors callers test.
var (
	// ErrTooLarge: the entries do not fit the configured map sizes.
	ErrTooLarge = errors.New("answers exceed map capacity")
	// ErrABI: the compiled object does not match this package.
	ErrABI = errors.New("bpf object does not match the loader's ABI")
)

// generations is GENERATIONS of bpf/abi.h.
const generations = 2

// generation is one pair of answer maps and what this process knows of
// their content. An adopted generation (pinned by a previous process) has
// no arena and no zones: it is served as it is until the next Load.
type generation struct {
	ix    *bucketIndex // the index map, its buckets mmapped
	store *ebpf.Map
	// NSEC3 (nsec3.go): entries and zone parameters, and NSEC zones'
	// enclosers (nsec.go); nil when adopted
	n3hashes, n3zones, nsecCes *ebpf.Map
	mem                        []byte // the store, mmapped
	*answers                          // nil when adopted
	keys                       int    // index entries
	maxKeys                    int    // index capacity
}

func (g *generation) close() {
	if g.mem != nil {
		unix.Munmap(g.mem)
		g.mem = nil
	}
	g.ix.close()
	g.store.Close()
	if g.n3hashes != nil {
		g.n3hashes.Close()
		g.n3zones.Close()
		g.nsecCes.Close()
	}
}

// XDP is a loaded program with its maps. Its methods are safe for
// concurrent use: loads and updates run one at a time.
type XDP struct {
	mu        sync.Mutex
	cfg       Config
	objs      xdpnsObjects
	indexSpec *ebpf.MapSpec // inner map templates
	storeSpec *ebpf.MapSpec

	nsec3HashSpec, nsec3ZoneSpec, nsecCeSpec *ebpf.MapSpec // NSEC3 and NSEC inner map templates (nsec3.go, nsec.go)

	gens    [generations]*generation
	active  int  // served generation; -1 before the first Load
	adopted bool // the served generation came from pinned maps

	slots zoneSlots // zone_stats slots (zonestats.go), under mu

	cookieMu sync.Mutex
	cookies  *Cookies // SetCookies; nil: off
}

// New checks cfg against the object, then loads program and maps. Nothing
// is answered until Load.
func New(cfg Config) (*XDP, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.UDPPayload == 0 {
		cfg.UDPPayload = DefaultUDPPayload
	}
	if cfg.MaxDNS == 0 {
		cfg.MaxDNS = DefaultMaxDNS
	}
	spec, err := loadXdpns()
	if err != nil {
		return nil, err
	}
	if err := checkSpec(spec, &cfg); err != nil {
		return nil, err
	}
	if cfg.MaxZones > 0 {
		spec.Maps[xdpnsMapZoneStats].MaxEntries = uint32(cfg.MaxZones) + 1 // slot 0: the rest
	}
	x := &XDP{
		cfg:       cfg,
		indexSpec: spec.Maps[xdpnsMapAnswerBuckets].InnerMap.Copy(),
		storeSpec: spec.Maps[xdpnsMapAnswerStore].InnerMap.Copy(),

		nsec3HashSpec: spec.Maps[xdpnsMapNsec3Hashes].InnerMap.Copy(),
		nsec3ZoneSpec: spec.Maps[xdpnsMapNsec3Zones].InnerMap.Copy(),
		nsecCeSpec:    spec.Maps[xdpnsMapNsecCes].InnerMap.Copy(),
		active:        -1,
	}
	opts, err := pinSpec(spec, &cfg)
	if err != nil {
		return nil, err
	}
	if err := spec.LoadAndAssign(&x.objs, opts); err != nil {
		return nil, fmt.Errorf("load xdp objects: %w", permission(err))
	}
	if cfg.PinPath != "" {
		if err := x.adopt(); err != nil {
			x.Close()
			return nil, err
		}
		x.adopted = x.active >= 0
	}
	if err := x.writeConfig(); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// checkSpec verifies the ABI sizes and the requested capacities.
func checkSpec(spec *ebpf.CollectionSpec, cfg *Config) error {
	maps := map[string]*ebpf.MapSpec{}
	for n, m := range spec.Maps {
		maps[n] = m
	}
	for _, n := range []string{xdpnsMapAnswerBuckets, xdpnsMapAnswerStore} {
		outer := spec.Maps[n]
		if outer == nil || outer.InnerMap == nil || outer.MaxEntries != generations {
			return fmt.Errorf("map %s: %w", n, ErrABI)
		}
		maps[n+".inner"] = outer.InnerMap
	}
	want := map[string][2]uint32{ // key, value sizes
		xdpnsMapAnswerBuckets + ".inner": {4, bucketLen},
		xdpnsMapZoneStats:                {4, 8},
		xdpnsMapAnswerStore + ".inner":   {4, storeValueLen},
		xdpnsMapActiveGen:                {4, 4},
		xdpnsMapConfigMap:                {4, uint32(binary.Size(xdpnsConfig{}))},
		xdpnsMapServiceAddrs:             {16, 1},
		xdpnsMapStats:                    {4, 8},
	}
	for name, kv := range want {
		m := maps[name]
		if m == nil || m.KeySize != kv[0] || m.ValueSize != kv[1] {
			return fmt.Errorf("map %s: %w", name, ErrABI)
		}
	}
	if err := checkRRLSpec(spec); err != nil {
		return err
	}
	if binary.Size(xdpnsAnswer{}) != answerHdrLen {
		return fmt.Errorf("struct answer: %w", ErrABI)
	}
	if n := spec.Maps[xdpnsMapStats].MaxEntries; n != uint32(xdpnsStatSTAT_MAX) || int(n) != len(statNames) {
		return fmt.Errorf("stats: %d counters, %d names: %w", n, len(statNames), ErrABI)
	}
	if err := checkCapacity(cfg.IndexEntries, cfg.StoreBlocks); err != nil {
		return err
	}
	if n := len(cfg.ServiceAddrs); n > int(spec.Maps[xdpnsMapServiceAddrs].MaxEntries) {
		return fmt.Errorf("%d service addresses: %w", n, ErrTooLarge)
	}
	if cfg.UDPPayload < 512 {
		return fmt.Errorf("udp payload %d below 512", cfg.UDPPayload)
	}
	return nil
}

func checkCapacity(entries, blocks int) error {
	if entries > MaxIndexEntries {
		return fmt.Errorf("index of %d entries (max %d): %w", entries, MaxIndexEntries, ErrTooLarge)
	}
	if uint64(blocks)*storeValueLen > 1<<32-1 { // mmap size is 32-bit
		return fmt.Errorf("store of %d blocks: %w", blocks, ErrTooLarge)
	}
	return nil
}

func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}

func (x *XDP) writeConfig() error {
	// Pinned maps may hold a previous configuration's addresses.
	var k xdpnsServiceAddr
	var stale []xdpnsServiceAddr
	for it := x.objs.ServiceAddrs.Iterate(); it.Next(&k, new(uint8)); {
		stale = append(stale, k)
	}
	for _, k := range stale {
		if err := x.objs.ServiceAddrs.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear service address: %w", err)
		}
	}
	var flags uint16
	for _, a := range x.cfg.ServiceAddrs {
		switch a = a.Unmap(); a {
		case netip.IPv4Unspecified():
			flags |= configAnyV4
			continue
		case netip.IPv6Unspecified():
			flags |= configAnyV6
			continue
		}
		k := xdpnsServiceAddr{Addr: a.As16()} // As16 maps IPv4 to ::ffff:a.b.c.d
		if err := x.objs.ServiceAddrs.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("write service address %s: %w", a, err)
		}
	}
	c := xdpnsConfig{
		Port:       htons(x.cfg.Port),
		UdpPayload: x.cfg.UDPPayload,
		MaxDns:     x.cfg.MaxDNS,
	}
	if x.cfg.NSID {
		c.Flags |= configNSID
	}
	if len(x.cfg.ServiceAddrs) > 0 {
		c.Flags |= configAddrFilter | flags
	}
	if x.cfg.NoTailGrow {
		c.Flags |= configNoTailGrow
	}
	if err := x.objs.ConfigMap.Put(uint32(0), &c); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// config.flags (bpf/abi.h).
const (
	configNSID       = 0x0001
	configAddrFilter = 0x0002
	configAnyV4      = 0x0008
	configAnyV6      = 0x0010
	configNoTailGrow = 0x0004
)

// Config returns the configuration in force (defaults filled).
func (x *XDP) Config() Config { return x.cfg }

// Program is the XDP program, for attaching and BPF_PROG_RUN.
func (x *XDP) Program() *ebpf.Program { return x.objs.XdpnsAnswer }

// Load makes im the answers served: it fills a new generation of maps,
// flips to it, waits until no program can still be reading the old one and
// frees it. A query sees the old answers or the new, never a mix, and is
// never passed for want of a generation. Both generations exist while it
// runs.
func (x *XDP) Load(im *Image) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	g, err := x.build(im, 0, 0)
	if err != nil {
		return err
	}
	return x.publish(g)
}

// shortEstimate, set by tests, makes one of loadInPlace's estimates far too
// short, to take its fallback: "store" gives the image no room at all,
// "keys" an index of one entry.
var shortEstimate = ""

// loadInPlace lays the image of zs out in the store of a new generation,
// sized from an estimate, and makes it the one served: a big zone's image
// built in Go memory first cost a first touch of every page of it (1.5 s of
// a 1M-name zone's XDP load on this VM) and a copy, for memory the map
// holds already. errNoRoom: the estimate was short, nothing changed.
//
// The Image returned gives the counts; its store and index are the
// generation's and are not kept in it.
func (x *XDP) loadInPlace(zs []ZoneEntries) (*Image, error) {
	keys, bytes, err := sizeOf(zs)
	if err != nil {
		return nil, err
	}
	entries, blocks := x.cfg.IndexEntries, x.cfg.StoreBlocks
	configured := entries != 0 && blocks != 0
	if !configured {
		b := bytes/storeBlockLen + 1
		blocks = withHeadroom(b, minSpareBlocks)
		entries = withHeadroom(keys, minSpareEntries)
		if shortEstimate == "keys" {
			entries = 1
		}
	}
	if err := checkCapacity(entries, blocks); err != nil {
		return nil, err
	}
	store, mem, err := x.newStore(blocks)
	if err != nil {
		return nil, err
	}
	a := &arena{mem: mem, blocks: blocks}
	if shortEstimate == "store" {
		a.blocks = 0
	}
	// The index is laid out in memory of its own, in huge pages (its
	// lookups go anywhere in tens of megabytes: the map's 4 KiB pages
	// missed the TLB at each, and laying it out in the map was no faster
	// than a separate index, 3.3 s either way), then copied whole into the
	// map the kernel makes meanwhile, on the other CPU.
	type made struct {
		ix  *bucketIndex
		err error
	}
	index := make(chan made, 1)
	go func() {
		ix, err := x.newIndex(entries)
		index <- made{ix, err}
	}()
	im := &Image{answers: newAnswers(a), newIndex: memIndex}
	if configured {
		im.newIndex = func(n int) (*bucketIndex, error) {
			if n > entries {
				return nil, fmt.Errorf("index of %d entries full: %w", entries, ErrTooLarge)
			}
			return newMemIndex(n), nil
		}
	}
	err = im.addZones(entries, zs)
	if err == nil && im.Entries > entries {
		// More keys than estimated: the map is made again, with headroom.
		if configured {
			err = fmt.Errorf("%d entries, room for %d: %w", im.Entries, entries, ErrTooLarge)
		} else {
			entries = withHeadroom(im.Entries, minSpareEntries)
			err = checkCapacity(entries, blocks)
		}
	}
	if err == nil && im.ix.n > uint64(bucketsFor(entries)) {
		entries = im.ix.capacity() // it grew as keys came: a map as large
	}
	ix := <-index
	if err == nil && ix.err == nil && entries > ix.ix.capacity() {
		ix.ix.close()
		ix.ix, ix.err = x.newIndex(entries)
	}
	if err == nil {
		err = ix.err
	} else if ix.err == nil {
		ix.ix.close()
	}
	defer im.ix.close() // once copied (fill): the GC need not wait
	if err != nil {
		unix.Munmap(mem)
		store.Close()
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	g := &generation{ix: ix.ix, store: store, mem: mem}
	if err := x.fill(g, im, entries, true); err != nil {
		g.close()
		return nil, err
	}
	if err := x.publish(g); err != nil {
		return nil, err
	}
	out := *im
	counts := *im.a
	counts.mem, counts.free, counts.pending = nil, [len(counts.free)][]uint32{}, nil
	out.answers = &answers{a: &counts}
	out.ix, out.zoneList = nil, nil
	return &out, nil
}

// fill writes im into g's empty maps, g's index made for entries: the
// records into the mmapped store, unless laid out there already (inPlace:
// g then takes the image's allocator and zones as they are), then the
// index, its zones renumbered to their slots.
func (x *XDP) fill(g *generation, im *Image, entries int, inPlace bool) error {
	x.assignSlots(im)
	if !inPlace {
		copy(g.mem, im.a.mem[:im.a.usedBytes()])
	}
	if err := g.ix.copyFrom(im.ix, im.zoneSlots()); err != nil {
		return err
	}
	g.answers = im.answers
	if !inPlace {
		g.answers = im.answers.clone(im.a.clone(g.mem, len(g.mem)/storeValueLen))
	}
	g.keys, g.maxKeys = im.Entries, entries
	var err error
	g.n3hashes, g.n3zones, g.nsecCes, err = x.nsec3Maps(g.zones)
	return err
}

// withHeadroom is n with DefaultHeadroom percent to spare, and at least
// minSpare.
func withHeadroom(n, minSpare int) int {
	return max(n+n*DefaultHeadroom/100, n+minSpare)
}

// capacity returns the index entries and store blocks of a new generation
// for im with room for extra more entries and bytes: the configured ones,
// else the image's with DefaultHeadroom percent to spare.
func (x *XDP) capacity(im *Image, extraKeys, extraBytes int) (int, int, error) {
	keys := im.Entries + extraKeys
	blocks := im.Blocks() + (extraBytes+storeBlockLen-1)/storeBlockLen
	entries, nblocks := x.cfg.IndexEntries, x.cfg.StoreBlocks
	if entries == 0 || nblocks == 0 {
		entries = withHeadroom(keys, minSpareEntries)
		nblocks = withHeadroom(blocks, minSpareBlocks)
	}
	if keys > entries || im.Blocks() > nblocks {
		return 0, 0, fmt.Errorf("%d entries in %d blocks, room for %d in %d: %w",
			keys, blocks, entries, nblocks, ErrTooLarge)
	}
	if err := checkCapacity(entries, nblocks); err != nil {
		return 0, 0, err
	}
	return entries, nblocks, nil
}

// build creates a generation holding im, with room for extra entries and
// bytes, not yet published.
func (x *XDP) build(im *Image, extraKeys, extraBytes int) (*generation, error) {
	entries, blocks, err := x.capacity(im, extraKeys, extraBytes)
	if err != nil {
		return nil, err
	}
	g, err := x.newGeneration(entries, blocks)
	if err != nil {
		return nil, err
	}
	if err := x.fill(g, im, entries, false); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// publish makes g the served generation and retires the old one.
func (x *XDP) publish(g *generation) error {
	next := 0
	if x.active >= 0 {
		next = 1 - x.active
	}
	if err := x.objs.AnswerBuckets.Put(uint32(next), g.ix.m); err != nil {
		g.close()
		return fmt.Errorf("publish answer index: %w", err)
	}
	if err := x.objs.AnswerStore.Put(uint32(next), g.store); err != nil {
		g.close()
		return fmt.Errorf("publish answer store: %w", err)
	}
	if err := x.objs.Nsec3Hashes.Put(uint32(next), g.n3hashes); err != nil {
		g.close()
		return fmt.Errorf("publish NSEC3 array: %w", err)
	}
	if err := x.objs.Nsec3Zones.Put(uint32(next), g.n3zones); err != nil {
		g.close()
		return fmt.Errorf("publish NSEC3 zones: %w", err)
	}
	if err := x.objs.NsecCes.Put(uint32(next), g.nsecCes); err != nil {
		g.close()
		return fmt.Errorf("publish NSEC enclosers: %w", err)
	}
	if err := x.objs.ActiveGen.Put(uint32(0), uint32(next)); err != nil {
		g.close()
		return fmt.Errorf("flip generation: %w", err)
	}
	x.gens[next] = g
	old := x.active
	x.active = next
	x.adopted = false
	if g.answers != nil {
		g.a.reclaim = x.grace
	}
	if old < 0 {
		return nil
	}
	if err := x.grace(); err != nil {
		return err
	}
	for _, m := range []*ebpf.Map{x.objs.AnswerBuckets, x.objs.AnswerStore, x.objs.Nsec3Hashes, x.objs.Nsec3Zones, x.objs.NsecCes} {
		if err := m.Delete(uint32(old)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("retire generation %d: %w", old, err)
		}
	}
	x.gens[old].close()
	x.gens[old] = nil
	return x.releaseSlots(g)
}

// grace waits until no program that started before the call is running:
// writing a map-in-map from user space waits for an RCU grace period, and
// XDP programs run inside RCU read-side sections.
func (x *XDP) grace() error {
	g := x.gens[x.active]
	if err := x.objs.AnswerStore.Put(uint32(x.active), g.store); err != nil {
		return fmt.Errorf("wait for readers: %w", err)
	}
	return nil
}

func (x *XDP) newGeneration(entries, blocks int) (*generation, error) {
	ix, err := x.newIndex(entries)
	if err != nil {
		return nil, err
	}
	store, mem, err := x.newStore(blocks)
	if err != nil {
		ix.close()
		return nil, err
	}
	return &generation{ix: ix, store: store, mem: mem}, nil
}

// newStore creates a store of blocks and maps it read-write: records are
// written in place, and slot words flipped with atomic stores.
func (x *XDP) newStore(blocks int) (*ebpf.Map, []byte, error) {
	ss := x.storeSpec.Copy()
	ss.MaxEntries = uint32(blocks)
	store, err := ebpf.NewMap(ss)
	if err != nil {
		return nil, nil, fmt.Errorf("create answer store of %d blocks: %w", blocks, permission(err))
	}
	mem, err := unix.Mmap(store.FD(), 0, blocks*storeValueLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("map answer store: %w", err)
	}
	return store, mem, nil
}

// Close releases program and maps. An attached link keeps the program and
// the maps it uses.
func (x *XDP) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, g := range x.gens {
		if g != nil {
			g.close()
			x.gens[i] = nil
		}
	}
	return x.objs.Close()
}

// MapMemory returns the kernel memory of the served generation's index and
// store maps, as the kernel accounts it (fdinfo memlock).
func (x *XDP) MapMemory() (index, store uint64, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.active < 0 {
		return 0, 0, nil
	}
	g := x.gens[x.active]
	for _, m := range []struct {
		m *ebpf.Map
		n *uint64
	}{{g.ix.m, &index}, {g.store, &store}} {
		info, err := m.m.Info()
		if err != nil {
			return 0, 0, fmt.Errorf("map info: %w", err)
		}
		v, ok := info.Memlock()
		if !ok {
			return 0, 0, fmt.Errorf("map memlock: %w", ebpf.ErrNotSupported)
		}
		*m.n = v
	}
	return index, store, nil
}
