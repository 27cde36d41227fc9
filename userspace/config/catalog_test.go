package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const catalogYAML = `keys:
  - {name: k, algorithm: hmac-sha256, secret: "c2VjcmV0c2VjcmV0"}
templates:
  - name: default
    primaries: [{address: 192.0.2.1:53, key: k}]
    allow-notify: [192.0.2.0/24]
  - name: gold
    primaries: ["192.0.2.2:53"]
    axfr-only: true
    allow-transfer: {from: [127.0.0.0/8]}
    notify: ["127.0.0.1:5300"]
zones:
  - name: catalog.example
    catalog: consume
    max-members: 500
    primaries: [{address: 192.0.2.9:53, key: k}]
  - name: a.example
    file: a.zone
    group: gold
  - name: out.catalog.invalid
    catalog: produce
  - name: some.catalog.invalid
    catalog: produce
    members: [a.example, catalog.example]
`

func TestParseCatalog(t *testing.T) {
	cfg, err := Parse([]byte(catalogYAML), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat := cfg.Zone("catalog.example.")
	if cat.Catalog != CatalogConsume || cat.MaxMembers != 500 || !cat.Secondary() {
		t.Fatalf("consumer %+v", cat)
	}
	if z := cfg.Zone("a.example."); z.Group != "gold" || z.Catalog != "" {
		t.Fatalf("a.example. %+v", z)
	}
	if len(cfg.Templates) != 2 || cfg.Template("gold").Primaries[0].Addr.String() != "192.0.2.2:53" {
		t.Fatalf("templates %+v", cfg.Templates)
	}
	// The first group naming a template; unknown groups: default.
	for _, c := range []struct {
		groups   []string
		template string
		primary  string
	}{
		{nil, "default", "192.0.2.1:53"},
		{[]string{"nope"}, "default", "192.0.2.1:53"},
		{[]string{"a", "gold"}, "gold", "192.0.2.2:53"},
	} {
		m := cfg.MemberZone(cat, "m.example.", c.groups)
		if m.Template != c.template || m.Primaries[0].Addr.String() != c.primary || m.MemberOf != "catalog.example." || !m.Secondary() {
			t.Errorf("groups %q: %+v", c.groups, m)
		}
	}
	gold := cfg.MemberZone(cat, "m.example.", []string{"gold"})
	if !gold.AXFROnly || len(gold.Notify) != 1 || len(gold.AllowTransfer.From) != 1 {
		t.Errorf("gold member %+v", gold)
	}
	// Without templates: the catalog's own settings.
	cfg.Templates = nil
	if m := cfg.MemberZone(cat, "m.example.", nil); m.Template != "" || m.Primaries[0].Addr.String() != "192.0.2.9:53" || m.Primaries[0].Key != "k." {
		t.Errorf("no template: %+v", m)
	}
	var names []string
	for _, p := range cfg.Producers() {
		var ms []string
		for _, m := range cfg.ProducedMembers(&p) {
			ms = append(ms, m.Name)
		}
		names = append(names, p.Name+"="+strings.Join(ms, ","))
	}
	want := []string{"out.catalog.invalid.=catalog.example.,a.example.", "some.catalog.invalid.=catalog.example.,a.example."}
	if !slices.Equal(names, want) {
		t.Errorf("producers %q, want %q", names, want)
	}
	if c := cfg.Zone("catalog.example."); c.MaxMembers != 500 {
		t.Error(c.MaxMembers)
	}
	cfg, err = Parse([]byte("zones:\n  - {name: c.example, catalog: consume, primaries: [\"192.0.2.1:53\"]}\n"), "c.yaml")
	if err != nil || cfg.Zones[0].MaxMembers != DefaultMaxMembers {
		t.Fatalf("default max-members: %v %+v", err, cfg)
	}
}

func TestParseCatalogErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown role", "zones:\n  - name: c.\n    catalog: eat\n    primaries: [\"192.0.2.1:53\"]\n", []string{
			`c.yaml:3: zones[0].catalog: must be one of consume|produce, got "eat"`}},
		{"consume without primaries", "zones:\n  - name: c.\n    catalog: consume\n    file: c.zone\n", []string{
			`c.yaml:3: zones[0].catalog: consume needs primaries`}},
		{"produce with a file", "zones:\n  - name: c.\n    catalog: produce\n    file: c.zone\n", []string{
			`c.yaml:3: zones[0].catalog: produce is a zone xdpns writes: no file or primaries`}},
		{"members of a consumer", "zones:\n  - name: c.\n    catalog: consume\n    primaries: [\"192.0.2.1:53\"]\n    members: all\n", []string{
			`c.yaml:5: zones[0].members: only for catalog: produce`}},
		{"max-members of a producer", "zones:\n  - name: c.\n    catalog: produce\n    max-members: 3\n", []string{
			`c.yaml:4: zones[0].max-members: only for catalog: consume`}},
		{"members without catalog", "zones:\n  - name: c.\n    file: c.zone\n    members: [a.]\n", []string{
			`c.yaml:4: zones[0].members: only for a catalog zone`, `c.yaml:4: zones[0].members[0]: zone a. is not configured`}},
		{"member not configured", "zones:\n  - name: c.\n    catalog: produce\n    members:\n      - x.example\n", []string{
			`c.yaml:5: zones[0].members[0]: zone x.example. is not configured`}},
		{"member a producer", "zones:\n  - name: c.\n    catalog: produce\n    members: [c.]\n", []string{
			`c.yaml:4: zones[0].members[0]: c. is a produced catalog, not a zone to list`}},
		{"max-members range", "zones:\n  - name: c.\n    catalog: consume\n    primaries: [\"192.0.2.1:53\"]\n    max-members: 0\n", []string{
			`c.yaml:5: zones[0].max-members: must be between 1 and 10000000, got 0`}},
		{"template without name", "templates:\n  - primaries: [\"192.0.2.1:53\"]\n", []string{
			`c.yaml:2: templates[0]: name is required`}},
		{"template without primaries", "templates:\n  - name: default\n", []string{
			`c.yaml:2: templates[0]: primaries are required`}},
		{"duplicate template", "templates:\n  - {name: g, primaries: [\"192.0.2.1:53\"]}\n  - {name: g, primaries: [\"192.0.2.1:53\"]}\n", []string{
			`c.yaml:3: templates[1].name: duplicate template "g" (first at line 2)`}},
		{"template key undefined", "templates:\n  - name: g\n    primaries: [{address: \"192.0.2.1:53\", key: nokey}]\n", []string{
			`c.yaml:3: templates[0].primaries[0].key: key nokey. is not defined in keys`}},
		{"template unknown key", "templates:\n  - name: g\n    primaries: [\"192.0.2.1:53\"]\n    file: x\n", []string{
			`c.yaml:4: unknown key "file" in templates[0]`}},
		{"template timers", "templates:\n  - name: g\n    primaries: [\"192.0.2.1:53\"]\n    timers: {refresh-min: 2h, refresh-max: 1h}\n", []string{
			`c.yaml:4: templates[0].timers: refresh-min 2h0m0s is above refresh-max 1h0m0s`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "c.yaml")
			var errs Errors
			if !errors.As(err, &errs) || cfg != nil {
				t.Fatalf("error %v is not Errors (config %+v)", err, cfg)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("errors:\n%v\nwant %d like %q", err, len(tc.want), tc.want)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s", i, e, tc.want[i])
				}
			}
		})
	}
}
