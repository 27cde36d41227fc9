package main

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/xdpns/xdpns/userspace/catalog"
	"github.com/xdpns/xdpns/userspace/config"
)

// Catalog zones (docs/catalog.md). A produced catalog (catalog: produce)
// is built here from the configuration each time the zones load (start,
// reload) and served like a zone from a file: answered, transferred by
// AXFR (IXFR gets the whole zone, as for any file zone) and NOTIFYed when
// its serial changes.

// produced remembers, per produced catalog, the entries last written and
// their serial: the serial moves only when the member set does.
var produced = struct {
	sync.Mutex
	last map[string]producedVersion
}{last: map[string]producedVersion{}}

type producedVersion struct {
	entries []catalog.Entry
	serial  uint32
}

// producedSerial returns the serial for a version of catalog name listing
// entries: the last one when they did not change, else the Unix time (so
// that a restart, which forgets the last serial, still goes forward), or
// one more than the last when the clock is behind it.
func producedSerial(name string, entries []catalog.Entry, now time.Time) uint32 {
	produced.Lock()
	defer produced.Unlock()
	last, ok := produced.last[name]
	if ok && slices.Equal(last.entries, entries) {
		return last.serial
	}
	serial := uint32(now.Unix())
	if ok && int32(serial-last.serial) <= 0 { // RFC 1982: not after the last
		serial = last.serial + 1
	}
	produced.last[name] = producedVersion{entries: entries, serial: serial}
	return serial
}

// produceCatalog builds the catalog zone cz lists: the zones of cfg
// (members: all) or the ones named, each with its group.
func produceCatalog(cfg *config.Config, cz config.Zone) loadedZone {
	var entries []catalog.Entry
	for _, m := range cfg.ProducedMembers(&cz) {
		entries = append(entries, catalog.Entry{Zone: m.Name, Group: m.Group})
	}
	slices.SortFunc(entries, func(a, b catalog.Entry) int {
		if a.Zone < b.Zone {
			return -1
		}
		if a.Zone > b.Zone {
			return 1
		}
		return 0
	})
	z, err := catalog.Build(cz.Name, entries, producedSerial(cz.Name, entries, time.Now()))
	if err != nil {
		return loadedZone{conf: cz, err: fmt.Errorf("%s:%d: catalog %s: %w", cfg.File, cz.Line, cz.Name, err)}
	}
	return loadedZone{conf: cz, zone: z}
}
