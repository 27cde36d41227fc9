// Package loader loads the XDP program of ../bpf, fills its maps with
// compiled answers (userspace/compile) and attaches it to interfaces. It
// knows the ABI of bpf/abi.h, not DNS: records are bytes the compiler made.
package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
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

// MaxIndexEntries bounds the index map (about 80 bytes of kernel memory per
// entry, allocated at load).
const MaxIndexEntries = 1 << 26

// Config sizes and configures the XDP program.
type Config struct {
	Port         uint16       // UDP port answered; 0: 53
	UDPPayload   uint16       // our EDNS payload size; 0: 1232 (must equal the responder's)
	MaxDNS       uint16       // largest DNS message XDP sends; 0: DefaultMaxDNS
	NSID         bool         // NSID configured: NSID queries are passed to Go
	ServiceAddrs []netip.Addr // destination addresses answered; empty: any

	// IndexEntries is the capacity of the index map; StoreBlocks that of
	// the store (64 KiB + slack each). SizeFor computes them for an image.
	IndexEntries int
	StoreBlocks  int

	// NoTailGrow makes the program grow frames at the head only (tests).
	NoTailGrow bool
}

// SizeFor returns cfg with capacities that hold im, plus headroom percent.
func (cfg Config) SizeFor(im *Image, headroom int) Config {
	cfg.IndexEntries = max(1, im.Entries+im.Entries*headroom/100)
	cfg.StoreBlocks = max(1, im.blocks+im.blocks*headroom/100)
	return cfg
}

// Errors callers test.
var (
	// ErrTooLarge: the entries do not fit the configured map sizes.
	ErrTooLarge = errors.New("answers exceed map capacity")
	// ErrABI: the compiled object does not match this package.
	ErrABI = errors.New("bpf object does not match the loader's ABI")
)

// XDP is a loaded program with its maps.
type XDP struct {
	cfg  Config
	objs xdpnsObjects
}

// New checks cfg against the object, then loads program and maps.
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
	cfg.IndexEntries = max(cfg.IndexEntries, 1)
	cfg.StoreBlocks = max(cfg.StoreBlocks, 1)
	spec, err := loadXdpns()
	if err != nil {
		return nil, err
	}
	if err := checkSpec(spec, &cfg); err != nil {
		return nil, err
	}
	spec.Maps[xdpnsMapAnswerIndex].MaxEntries = uint32(cfg.IndexEntries)
	spec.Maps[xdpnsMapAnswerStore].MaxEntries = uint32(cfg.StoreBlocks)
	x := &XDP{cfg: cfg}
	if err := spec.LoadAndAssign(&x.objs, nil); err != nil {
		return nil, fmt.Errorf("load xdp objects: %w", permission(err))
	}
	if err := x.writeConfig(); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// checkSpec verifies the ABI sizes and the requested capacities.
func checkSpec(spec *ebpf.CollectionSpec, cfg *Config) error {
	want := map[string][2]uint32{ // key, value sizes
		xdpnsMapAnswerIndex:  {8, 8},
		xdpnsMapAnswerStore:  {4, storeValueLen},
		xdpnsMapConfigMap:    {4, uint32(binary.Size(xdpnsConfig{}))},
		xdpnsMapServiceAddrs: {16, 1},
		xdpnsMapStats:        {4, 8},
	}
	for name, kv := range want {
		m := spec.Maps[name]
		if m == nil || m.KeySize != kv[0] || m.ValueSize != kv[1] {
			return fmt.Errorf("map %s: %w", name, ErrABI)
		}
	}
	if binary.Size(xdpnsAnswer{}) != answerHdrLen {
		return fmt.Errorf("struct answer: %w", ErrABI)
	}
	if n := spec.Maps[xdpnsMapStats].MaxEntries; n != uint32(xdpnsStatSTAT_MAX) || int(n) != len(statNames) {
		return fmt.Errorf("stats: %d counters, %d names: %w", n, len(statNames), ErrABI)
	}
	if cfg.IndexEntries > MaxIndexEntries {
		return fmt.Errorf("index of %d entries (max %d): %w", cfg.IndexEntries, MaxIndexEntries, ErrTooLarge)
	}
	if uint64(cfg.StoreBlocks)*storeValueLen > 1<<32-1 { // mmap size is 32-bit
		return fmt.Errorf("store of %d blocks: %w", cfg.StoreBlocks, ErrTooLarge)
	}
	if n := len(cfg.ServiceAddrs); n > int(spec.Maps[xdpnsMapServiceAddrs].MaxEntries) {
		return fmt.Errorf("%d service addresses: %w", n, ErrTooLarge)
	}
	if cfg.UDPPayload < 512 {
		return fmt.Errorf("udp payload %d below 512", cfg.UDPPayload)
	}
	return nil
}

func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}

func (x *XDP) writeConfig() error {
	for _, a := range x.cfg.ServiceAddrs {
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
		c.Flags |= configAddrFilter
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
	configNoTailGrow = 0x0004
)

// Config returns the configuration in force (defaults filled).
func (x *XDP) Config() Config { return x.cfg }

// Program is the XDP program, for attaching and BPF_PROG_RUN.
func (x *XDP) Program() *ebpf.Program { return x.objs.XdpnsAnswer }

// Close releases program and maps. An attached link keeps the program.
func (x *XDP) Close() error { return x.objs.Close() }

// Fill writes im into empty maps: records first, straight into the
// mmapped store, then the index that publishes them.
func (x *XDP) Fill(im *Image) error {
	if im.Entries > x.cfg.IndexEntries || im.blocks > x.cfg.StoreBlocks {
		return fmt.Errorf("%d entries in %d blocks, room for %d in %d: %w",
			im.Entries, im.blocks, x.cfg.IndexEntries, x.cfg.StoreBlocks, ErrTooLarge)
	}
	mem, err := x.objs.AnswerStore.Memory()
	if err != nil {
		return fmt.Errorf("map answer store: %w", err)
	}
	if _, err := mem.WriteAt(im.store, 0); err != nil {
		return fmt.Errorf("write answer store: %w", err)
	}
	const batch = 1 << 14
	keys := make([]xdpnsIndexKey, 0, batch)
	for i := 0; i < len(im.keys); i += batch {
		end := min(i+batch, len(im.keys))
		keys = keys[:0]
		for _, h := range im.keys[i:end] {
			keys = append(keys, xdpnsIndexKey{Hash: h})
		}
		if _, err := x.objs.AnswerIndex.BatchUpdate(keys, im.vals[i:end], nil); err != nil {
			return fmt.Errorf("write answer index: %w", err)
		}
	}
	return nil
}

// MapMemory returns the kernel memory of the index and store maps, as the
// kernel accounts it (fdinfo memlock).
func (x *XDP) MapMemory() (index, store uint64, err error) {
	for _, m := range []struct {
		m *ebpf.Map
		n *uint64
	}{{x.objs.AnswerIndex, &index}, {x.objs.AnswerStore, &store}} {
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
