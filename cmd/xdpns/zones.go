package main

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/zone"
)

// loadedZone is the outcome of loading one configured zone.
type loadedZone struct {
	conf  config.Zone
	zone  *zone.Zone // nil when err is set
	warns []zone.Warning
	err   error // leads with file:line
	// served is the zone compiled by loadFiles' worker (nil: not yet).
	served *responder.Zone
	// compileErr is why compiling failed (served answers from the engine).
	compileErr error
}

// loadZone reads one configured zone file.
func loadZone(cfg *config.Config, cz config.Zone) loadedZone {
	if cz.Catalog == config.CatalogProduce {
		return produceCatalog(cfg, cz) // catalog.go
	}
	z, warns, err := zone.Load(cz.File, cz.Name, zone.LoadOptions{AllowInclude: cfg.Server.AllowInclude, Options: zone.Options{RequireNS: true}})
	if err != nil {
		return loadedZone{conf: cz, warns: warns, err: zoneError(cfg, cz, err)}
	}
	return loadedZone{conf: cz, zone: z, warns: warns}
}

// loadZones reads every zone configured with a file, in configuration
// order. Secondary zones are xfr's.
func loadZones(cfg *config.Config) []loadedZone { return loadZonesWith(cfg, nil) }

// loadZonesWith is loadZones spread over the CPUs: a provider's box starts
// with thousands of zone files, each parsed (and, through then, compiled)
// independently of the others. then runs on the worker right after a zone
// loaded without error; the results keep configuration order.
func loadZonesWith(cfg *config.Config, then func(*loadedZone)) []loadedZone {
	var files []config.Zone
	for _, cz := range cfg.Zones {
		if !cz.Secondary() {
			files = append(files, cz)
		}
	}
	out := make([]loadedZone, len(files))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				out[i] = loadZone(cfg, files[i])
				if then != nil && out[i].err == nil {
					then(&out[i])
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// parseErrorText splits a miekg/dns ParseError message:
// "FILE: dns: MESSAGE at line: LINE:COL" plus whatever was wrapped around it.
var parseErrorText = regexp.MustCompile(`^(?:(.*): )?dns: (.*) at line: (\d+):(\d+)(.*)$`)

// zoneError makes every zone error lead with a position: a zone file that
// cannot be opened is blamed on its entry in the configuration, and zone
// file syntax errors are rewritten from miekg/dns's "FILE: dns: MSG at line:
// L:C" into "FILE:L:C: MSG" like every other message.
func zoneError(cfg *config.Config, cz config.Zone, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == cz.File {
		return fmt.Errorf("%s:%d: zone %s: %w", cfg.File, cz.Line, cz.Name, err)
	}
	var perr *dns.ParseError
	if errors.As(err, &perr) {
		if m := parseErrorText.FindStringSubmatch(err.Error()); m != nil {
			file := m[1]
			if file == "" {
				file = cz.File
			}
			return &posError{fmt.Sprintf("%s:%s:%s: %s%s", file, m[3], m[4], m[2], m[5]), err}
		}
	}
	return err
}

// posError is an error with a rewritten message that still unwraps to the
// original.
type posError struct {
	msg string
	err error
}

func (e *posError) Error() string { return e.msg }
func (e *posError) Unwrap() error { return e.err }
