package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Run-time zones are secondary zones added to a running serve (`xdpns zone
// add`, or a catalog) rather than written in the configuration. They are
// kept in their own file, xfr.runtime-zones, so the operator's YAML is never
// rewritten. The file has the shape of the configuration's zones section,
// with one more key per zone, owner (who added it; empty: the command
// line), and is read with the same decoder: every problem names FILE:LINE,
// keys are looked up in the configuration's keys section.
//
//	zones:
//	  - name: example.com.
//	    primaries: [{address: 192.0.2.1:53, key: k1}]

// RuntimeZonesFile is the file name of the default xfr.runtime-zones,
// inside xfr.state-dir.
const RuntimeZonesFile = "runtime-zones.yaml"

// runtimeZonesPath sets the default xfr.runtime-zones and resolves it.
func (d *decoder) runtimeZonesPath(cfg *Config) {
	x := &cfg.Xfr
	switch {
	case !d.runtimeZonesSet && x.StateDir == "":
		x.RuntimeZones = ""
	case !d.runtimeZonesSet:
		x.RuntimeZones = filepath.Join(x.StateDir, RuntimeZonesFile)
	case x.RuntimeZones != "":
		x.RuntimeZones = d.path(x.RuntimeZones)
	}
}

// RuntimeZone is one zone added at run time.
type RuntimeZone struct {
	Zone
	// Owner says who added it: empty for `xdpns zone add`, else e.g.
	// "catalog:NAME." for a catalog member.
	Owner string
}

// ParseRuntimeZones decodes a run-time zones file against cfg (the keys
// zones name, the default timers). A zone that cfg also holds is not an
// error: the configuration wins, and it is returned in shadowed (an Error
// at the run-time entry's line, naming the configuration's) instead of in
// zones. Any other problem makes the error an Errors and zones nil.
func ParseRuntimeZones(data []byte, file string, cfg *Config) (zones []RuntimeZone, shadowed Errors, err error) {
	d := &decoder{file: file, base: filepath.Dir(file), keyNames: map[string]bool{}}
	for _, k := range cfg.Keys {
		d.keyNames[k.Name] = true
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		d.syntax(err)
		return nil, nil, d.errs
	}
	if len(doc.Content) > 0 {
		d.mapping(doc.Content[0], "", []field{
			{"zones", func(v *yaml.Node) { zones = d.runtimeZones(v) }},
		})
	}
	d.finish(cfg)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, nil, d.errs
	}
	inCfg := make(map[string]*Zone, len(cfg.Zones))
	for i := range cfg.Zones {
		inCfg[cfg.Zones[i].Name] = &cfg.Zones[i]
	}
	out := zones[:0]
	for _, z := range zones {
		if cz := inCfg[z.Name]; cz != nil {
			shadowed = append(shadowed, &Error{File: file, Line: z.Line, Msg: fmt.Sprintf(
				"zone %s: also in %s:%d; the configuration's entry is served and this one is dropped",
				z.Name, cfg.File, cz.Line)})
			continue
		}
		out = append(out, z)
	}
	return out, shadowed, nil
}

// runtimeZones decodes the zones list of a run-time zones file.
func (d *decoder) runtimeZones(n *yaml.Node) []RuntimeZone {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	var out []RuntimeZone
	first := map[string]int{}
	d.list(n, "zones", false, func(i int, v *yaml.Node) {
		path := fmt.Sprintf("zones[%d]", i)
		v = resolve(v)
		owner := ""
		if v.Kind == yaml.MappingNode {
			// Take out what only run-time zones have; the rest is a
			// configuration zone entry.
			c := *v
			c.Content = nil
			for j := 0; j+1 < len(v.Content); j += 2 {
				k, val := v.Content[j], v.Content[j+1]
				switch k.Value {
				case "owner":
					d.str(val, path+".owner", 255, &owner)
					continue
				case "file", "timers":
					d.errorf(k.Line, "%s.%s: not for a zone added at run time (a secondary with the xfr timers)", path, k.Value)
					continue
				}
				c.Content = append(c.Content, k, val)
			}
			v = &c
		}
		z, nameLine, ok := d.zone(v, path)
		if !ok {
			return
		}
		if line, dup := first[z.Name]; dup {
			d.errorf(nameLine, "%s.name: duplicate zone %s (first at line %d)", path, z.Name, line)
			return
		}
		first[z.Name] = nameLine
		out = append(out, RuntimeZone{Zone: z, Owner: owner})
	})
	return out
}

// LoadRuntimeZones reads cfg's run-time zones file; a missing file (or
// none configured) is no zones.
func LoadRuntimeZones(cfg *Config) (zones []RuntimeZone, shadowed Errors, err error) {
	path := cfg.Xfr.RuntimeZones
	if path == "" {
		return nil, nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, Errors{{File: path, Msg: err.Error()}}
	}
	return ParseRuntimeZones(data, path, cfg)
}

// The YAML shape written by MarshalRuntimeZones.
type (
	rtFile struct {
		Zones []rtZone `yaml:"zones" json:"zones"`
	}
	rtZone struct {
		Name          string     `yaml:"name" json:"name"`
		Owner         string     `yaml:"owner,omitempty" json:"owner,omitempty"`
		Primaries     []rtPrim   `yaml:"primaries" json:"primaries"`
		AllowNotify   []string   `yaml:"allow-notify,omitempty" json:"allow-notify,omitempty"`
		AXFROnly      bool       `yaml:"axfr-only,omitempty" json:"axfr-only,omitempty"`
		AllowTransfer *rtAllowXf `yaml:"allow-transfer,omitempty" json:"allow-transfer,omitempty"`
		Notify        []string   `yaml:"notify,omitempty" json:"notify,omitempty"`
		NotifyKey     string     `yaml:"notify-key,omitempty" json:"notify-key,omitempty"`
	}
	rtPrim struct {
		Address string `yaml:"address" json:"address"`
		Key     string `yaml:"key,omitempty" json:"key,omitempty"`
	}
	rtAllowXf struct {
		From []string `yaml:"from,omitempty" json:"from,omitempty"`
		Keys []string `yaml:"keys,omitempty" json:"keys,omitempty"`
	}
)

// runtimeHeader starts every file MarshalRuntimeZones writes.
const runtimeHeader = "# Zones added at run time (`xdpns zone add`), kept by xdpns serve.\n" +
	"# Written whole on every change; edit only while serve is stopped,\n" +
	"# then check with `xdpns check`.\n"

// MarshalRuntimeZones is the text of a run-time zones file holding zones,
// which ParseRuntimeZones reads back as they are.
func MarshalRuntimeZones(zones []RuntimeZone) []byte {
	f := rtFile{Zones: make([]rtZone, 0, len(zones))}
	strs := func(n int, at func(int) string) []string {
		if n == 0 {
			return nil
		}
		out := make([]string, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	for _, z := range zones {
		rz := rtZone{Name: z.Name, Owner: z.Owner, AXFROnly: z.AXFROnly, NotifyKey: z.NotifyKey,
			AllowNotify: strs(len(z.AllowNotify), func(i int) string { return z.AllowNotify[i].String() }),
			Notify:      strs(len(z.Notify), func(i int) string { return z.Notify[i].String() }),
		}
		for _, p := range z.Primaries {
			rz.Primaries = append(rz.Primaries, rtPrim{Address: p.Addr.String(), Key: p.Key})
		}
		if a := z.AllowTransfer; len(a.From)+len(a.Keys) > 0 {
			rz.AllowTransfer = &rtAllowXf{Keys: a.Keys,
				From: strs(len(a.From), func(i int) string { return a.From[i].String() })}
		}
		f.Zones = append(f.Zones, rz)
	}
	// One zone per line, as a JSON object (YAML flow mapping): encoding/json
	// is some twenty times faster than the YAML encoder, and the file is
	// rewritten on every add and remove.
	var b bytes.Buffer
	b.WriteString(runtimeHeader)
	b.WriteString("zones:\n")
	for _, z := range f.Zones {
		line, err := json.Marshal(z)
		if err != nil {
			panic(err) // plain strings and lists
		}
		b.WriteString("  - ")
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// RuntimeZoneRequest is a zone to add at run time as a command gives it:
// text, checked by NewRuntimeZone.
type RuntimeZoneRequest struct {
	Name          string
	Owner         string
	Primaries     []string // IP:port (IP alone: port 53)
	Key           string   // TSIG key of every primary; empty: unsigned
	AllowNotify   []string
	AXFROnly      bool
	AllowTransfer []string // prefixes
	TransferKeys  []string
	Notify        []string // IP:port (IP alone: port 53)
	NotifyKey     string
}

// NewRuntimeZone checks a request against cfg with the decoder of the
// run-time zones file (every rule a configuration zone follows) and
// returns the zone. Errors name the option, not a line.
func NewRuntimeZone(req RuntimeZoneRequest, cfg *Config) (RuntimeZone, error) {
	port53 := func(s string) string {
		if a, err := netip.ParseAddr(s); err == nil {
			return netip.AddrPortFrom(a, 53).String()
		}
		return s
	}
	rz := rtZone{Name: req.Name, Owner: req.Owner, AllowNotify: req.AllowNotify, AXFROnly: req.AXFROnly, NotifyKey: req.NotifyKey}
	for _, p := range req.Primaries {
		rz.Primaries = append(rz.Primaries, rtPrim{Address: port53(p), Key: req.Key})
	}
	for _, n := range req.Notify {
		rz.Notify = append(rz.Notify, port53(n))
	}
	if len(req.AllowTransfer)+len(req.TransferKeys) > 0 {
		rz.AllowTransfer = &rtAllowXf{From: req.AllowTransfer, Keys: req.TransferKeys}
	}
	data, err := yaml.Marshal(rtFile{Zones: []rtZone{rz}})
	if err != nil {
		return RuntimeZone{}, err
	}
	// Without cfg's zones: a clash with one is the caller's to report.
	bare := *cfg
	bare.Zones = nil
	zones, _, err := ParseRuntimeZones(data, "request", &bare)
	if err != nil {
		var es Errors
		if errors.As(err, &es) {
			msgs := make([]string, len(es))
			for i, e := range es {
				msgs[i] = strings.TrimPrefix(e.Msg, "zones[0].")
			}
			return RuntimeZone{}, errors.New(strings.Join(msgs, "; "))
		}
		return RuntimeZone{}, err
	}
	if len(zones) != 1 {
		return RuntimeZone{}, errors.New("no zone given")
	}
	z := zones[0]
	z.Line = 0
	return z, nil
}
