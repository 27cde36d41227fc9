package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// DefaultPinPath is where a daemon pins its maps and links (bpffs).
const DefaultPinPath = "/sys/fs/bpf/xdpns"

// pinned are the maps that outlive the process when Config.PinPath is set:
// the answers (reached through the outer maps), the generation served, the
// configuration and the counters. scratch is per packet and not kept.
var pinned = []string{
	xdpnsMapAnswerBuckets, xdpnsMapAnswerStore, xdpnsMapActiveGen,
	xdpnsMapConfigMap, xdpnsMapServiceAddrs, xdpnsMapStats,
}

// stalePin is the old index's pin (see pinSpec).
const stalePin = "answer_index"

// pinSpec marks the kept maps for pinning by name under cfg.PinPath.
func pinSpec(spec *ebpf.CollectionSpec, cfg *Config) (*ebpf.CollectionOptions, error) {
	if cfg.PinPath == "" {
		return nil, nil
	}
	if err := os.MkdirAll(cfg.PinPath, 0o700); err != nil {
		return nil, fmt.Errorf("pin path: %w", err)
	}
	for _, n := range pinned {
		spec.Maps[n].Pinning = ebpf.PinByName
	}
	// The index was a hash map pinned as answer_index before it became
	// answer_buckets: not adopted, and removed so that its memory goes
	// once the program reading it is replaced.
	if err := os.Remove(filepath.Join(cfg.PinPath, stalePin)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale pin: %w", err)
	}
	return &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: cfg.PinPath}}, nil
}

// adopt takes over the generation a previous process left in pinned maps.
func (x *XDP) adopt() error {
	var g uint32
	if err := x.objs.ActiveGen.Lookup(uint32(0), &g); err != nil {
		return fmt.Errorf("read active generation: %w", err)
	}
	g &= generations - 1
	var ids [2]ebpf.MapID
	for i, m := range []*ebpf.Map{x.objs.AnswerBuckets, x.objs.AnswerStore} {
		var id uint32
		err := m.Lookup(g, &id)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil // nothing was loaded
		}
		if err != nil {
			return fmt.Errorf("read generation %d: %w", g, err)
		}
		ids[i] = ebpf.MapID(id)
	}
	index, err := ebpf.NewMapFromID(ids[0])
	if err != nil {
		return fmt.Errorf("adopt answer index: %w", err)
	}
	ix, err := mapIndex(index)
	if err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	store, err := ebpf.NewMapFromID(ids[1])
	if err != nil {
		ix.close()
		return fmt.Errorf("adopt answer store: %w", err)
	}
	x.gens[g] = &generation{ix: ix, store: store}
	x.active = int(g)
	return nil
}

// Adopted reports whether New took over answers a previous process had
// loaded into pinned maps: they are served until the next Load.
func (x *XDP) Adopted() bool { return x.adopted }

func linkPin(dir, ifname string) string { return filepath.Join(dir, "link-"+ifname) }

// attachPinned attaches through the link pinned for ifname when there is
// one, swapping in this process's program atomically; else it attaches and
// pins the new link.
func (x *XDP) attachPinned(ifname string, mode Mode) (link.Link, Mode, error) {
	path := linkPin(x.cfg.PinPath, ifname)
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		had, merr := AttachedMode(ifname)
		switch {
		case merr != nil:
			l.Close()
			return nil, mode, merr
		case mode != ModeAuto && had != mode:
			// Asked for another mode than the pinned link's (the
			// configuration changed): detach it and attach anew. Until
			// then the kernel passes every query to Go.
			uerr := l.Unpin()
			l.Close()
			if uerr != nil {
				return nil, mode, fmt.Errorf("unpin xdp link %s attached %s: %w", path, had, uerr)
			}
		default:
			if err := l.Update(x.objs.XdpnsAnswer); err != nil {
				l.Close()
				return nil, mode, fmt.Errorf("update pinned xdp link %s: %w", path, err)
			}
			return l, had, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, mode, fmt.Errorf("load pinned xdp link %s: %w", path, err)
	}
	l, m, err := x.attach(ifname, mode)
	if err != nil {
		return nil, m, err
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return nil, m, fmt.Errorf("pin xdp link: %w", err)
	}
	return l, m, nil
}

// PinnedLinks lists the interfaces with an XDP link pinned under dir.
func PinnedLinks(dir string) ([]string, error) {
	paths, err := filepath.Glob(linkPin(dir, "*"))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimPrefix(filepath.Base(p), "link-")
	}
	return names, nil
}

// RemoveLink detaches the XDP link pinned under dir for ifname.
func RemoveLink(dir, ifname string) error {
	p := linkPin(dir, ifname)
	l, err := link.LoadPinnedLink(p, nil)
	if err != nil {
		return fmt.Errorf("load %s: %w", p, err)
	}
	defer l.Close() // the last reference: detaches
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin %s: %w", p, err)
	}
	return nil
}

// RemovePins detaches every pinned link under dir and removes the pinned
// maps: XDP stops answering once the last process holding them exits.
func RemovePins(dir string) error {
	ifnames, err := PinnedLinks(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range ifnames {
		errs = append(errs, RemoveLink(dir, n))
	}
	for _, n := range append(pinned, stalePin) {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
