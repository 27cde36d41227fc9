package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/xdpns/xdpns/userspace/catalog"
	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/xfr"
)

// cmdCheck validates the configuration and loads every zone file, printing
// each warning and error. It exits 1 when anything failed. Secondary zones
// are checked as configuration only: their primaries are not contacted.
func cmdCheck(_ context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "check", "[-c FILE]")
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printErrors(e, err)
		return exitFail
	}
	if g := cfg.Control; g.Socket != "" && g.Group != "" {
		// Not an error: the configuration may be checked on another machine.
		if _, err := lookupGroup(g.Group); err != nil {
			e.errorf("warning: %s:%d: control.group: %v (serve would run without a control socket)\n", cfg.File, g.GroupLine, err)
		}
	}
	runtime, rtOK := checkRuntime(e, cfg)
	zones, records, failed := 0, 0, 0
	for _, lz := range loadZones(cfg) {
		for _, w := range lz.warns {
			e.errorf("warning: %s\n", w.Error())
		}
		if lz.err != nil {
			e.errorf("%s\n", lz.err)
			failed++
			continue
		}
		zones++
		records += lz.zone.RecordCount()
	}
	files := len(cfg.Zones) - cfg.Secondaries()
	if failed > 0 {
		e.errorf("failed: %d of %d zones did not load\n", failed, files)
		return exitFail
	}
	if !rtOK {
		e.errorf("failed: the run-time zones file %s has errors\n", cfg.Xfr.RuntimeZones)
		return exitFail
	}
	e.printf("ok: %s, %s", plural(zones, "zone"), plural(records, "record"))
	if n := cfg.Secondaries(); n > 0 {
		e.printf("; %s (transferred from their primaries when served)", plural(n, "secondary zone"))
	}
	if runtime > 0 {
		e.printf("; %s added at run time (%s)", plural(runtime, "zone"), cfg.Xfr.RuntimeZones)
	}
	e.printf("\n")
	checkCatalogs(e, cfg)
	if x := cfg.XDP; x.Enabled() {
		e.printf("%s\n", xdpSummary(cfg))
	}
	return exitOK
}

// xdpSummary says what XDP will answer, from where.
func xdpSummary(cfg *config.Config) string {
	x := cfg.XDP
	port, addrs := cfg.XDPService()
	at := "any address"
	if addrs != nil {
		var as []string
		for _, a := range addrs {
			as = append(as, a.String())
		}
		at = strings.Join(as, ", ")
	}
	s := fmt.Sprintf("xdp: %s (%s): UDP port %d at %s", strings.Join(x.Interfaces, ", "), x.Mode, port, at)
	if x.Pin != "" {
		s += "; pinned under " + x.Pin
	}
	var others []string
	for _, ap := range cfg.Server.Listen {
		if ap.Port() != port {
			others = append(others, ap.String())
		}
	}
	if len(others) > 0 {
		s += "; " + strings.Join(others, ", ") + " answered from userspace only"
	}
	return s
}

// printErrors prints a configuration error, one problem per line.
func printErrors(e *env, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, x := range errs {
			e.errorf("%s\n", x)
		}
		return
	}
	e.errorf("%s\n", err)
}

// plural writes "1 zone" or "2 zones".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkRuntime validates the run-time zones file against cfg: its errors
// (file:line) are printed and make ok false; a zone the configuration also
// holds is a warning (the configuration wins).
func checkRuntime(e *env, cfg *config.Config) (n int, ok bool) {
	zones, shadowed, err := config.LoadRuntimeZones(cfg)
	for _, s := range shadowed {
		e.errorf("warning: %s\n", s)
	}
	if err != nil {
		printErrors(e, err)
		return 0, false
	}
	return len(zones), true
}

// checkCatalogs prints, for each consumed catalog, the members its copy in
// the state directory lists (what serve starts with, before the primary is
// asked) and the templates they take; members that clash with a
// configured zone are warnings (the configuration wins, RFC 9432 §5.1).
// Nothing is contacted, and a missing or unreadable copy is no failure:
// serve transfers the catalog afresh.
func checkCatalogs(e *env, cfg *config.Config) {
	for _, cz := range cfg.Zones {
		if cz.Catalog != config.CatalogConsume {
			continue
		}
		z, err := xfr.StoredZone(cfg.Xfr.StateDir, cz.Name)
		switch {
		case err != nil:
			e.errorf("warning: %s:%d: catalog %s: state: %v (serve transfers it afresh)\n", cfg.File, cz.Line, cz.Name, err)
			continue
		case z == nil:
			e.printf("catalog %s: no copy in the state directory yet; members come with its first transfer\n", cz.Name)
			continue
		}
		set, probs, err := catalog.Parse(z, catalog.Options{MaxMembers: cz.MaxMembers})
		if err != nil {
			e.errorf("warning: %s:%d: catalog %s at serial %d: %v (serve keeps no members from it)\n", cfg.File, cz.Line, cz.Name, z.Serial(), err)
			continue
		}
		for _, p := range probs {
			e.errorf("warning: catalog %s: %s: %s (ignored)\n", cz.Name, p.Owner, p.Msg)
		}
		templates := map[string]int{}
		n := 0
		for _, name := range slices.Sorted(maps.Keys(set.Members)) {
			if other := cfg.Zone(name); other != nil {
				e.errorf("warning: catalog %s: member %s is configured at %s:%d; the configured zone wins\n", cz.Name, name, cfg.File, other.Line)
				continue
			}
			m := cfg.MemberZone(&cz, name, set.Members[name].Groups)
			t := m.Template
			if t == "" {
				t = "the catalog's own primaries"
			}
			templates[t]++
			n++
		}
		var by []string
		for _, t := range slices.Sorted(maps.Keys(templates)) {
			by = append(by, fmt.Sprintf("%d %s", templates[t], t))
		}
		e.printf("catalog %s: %s at serial %d (state directory)", cz.Name, plural(n, "member"), z.Serial())
		if len(by) > 0 {
			e.printf("; settings: %s", strings.Join(by, ", "))
		}
		e.printf("\n")
	}
}
