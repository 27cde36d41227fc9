package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

const head = `$ORIGIN cat.example.
@ 0 IN SOA invalid. invalid. %d 3600 600 2147483646 0
@ 0 IN NS invalid.
`

// catZone builds a catalog zone from body records (relative to
// cat.example.), with version "2" unless body sets one.
func catZone(t testing.TB, serial int, body string) *zone.Zone {
	t.Helper()
	return catZoneAt(t, "cat.example.", serial, body)
}

func catZoneAt(t testing.TB, origin string, serial int, body string) *zone.Zone {
	t.Helper()
	text := strings.Replace(fmt.Sprintf(head, serial), "cat.example.", origin, 1)
	if !strings.Contains(body, "version") {
		text += "version 0 IN TXT \"2\"\n"
	}
	z, _, err := zone.Parse(strings.NewReader(text+body), "cat.zone", origin, zone.LoadOptions{})
	if err != nil {
		t.Fatalf("zone: %v", err)
	}
	return z
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		opt     Options
		members []string // zone/id/groups/coo
		probs   []string // substrings, one per problem
		err     error
	}{
		{name: "empty catalog"},
		{
			name: "members and properties",
			body: `m1.zones PTR example.com.
group.m1.zones TXT "gold"
m2.zones PTR Example.NET.
coo.m2.zones PTR new.cat.
group.m2.zones TXT "b" "lue"
group.m2.zones TXT "red"
m3.zones PTR a.example.org.
ext.m3.zones TXT "custom"
ext TXT "catalog custom property"
`,
			members: []string{"a.example.org./m3//", "example.com./m1/gold/", "example.net./m2/blue,red/new.cat."},
		},
		{name: "no version", body: "version2 TXT \"2\"\nversion A 192.0.2.1\n", err: ErrVersion},
		{name: "version 1", body: "version TXT \"1\"\n", err: ErrVersion},
		{name: "two versions", body: "version TXT \"2\"\nversion TXT \"1\"\n", err: ErrVersion},
		{
			name: "several PTRs at a member node: broken catalog",
			body: "m1.zones PTR a.example.\nm1.zones PTR b.example.\n",
			err:  ErrBrokenMember,
		},
		{
			name:    "member node without PTR",
			body:    "m1.zones A 192.0.2.1\nm2.zones PTR b.example.\n",
			members: []string{"b.example./m2//"},
			probs:   []string{"m1.zones.cat.example.: member node without a PTR"},
		},
		{
			name:    "duplicate member: smallest unique-id wins",
			body:    "zz.zones PTR a.example.\naa.zones PTR a.example.\ngroup.aa.zones TXT g1\ngroup.zz.zones TXT g2\n",
			members: []string{"a.example./aa/g1/"},
			probs:   []string{"zz.zones.cat.example.: zone a.example. is already a member under unique-id aa"},
		},
		{
			name:    "duplicate member: the previous unique-id wins",
			body:    "zz.zones PTR a.example.\naa.zones PTR a.example.\ngroup.aa.zones TXT g1\ngroup.zz.zones TXT g2\n",
			opt:     Options{Prev: &Set{Members: map[string]Member{"a.example.": {Zone: "a.example.", ID: "zz"}}}},
			members: []string{"a.example./zz/g2/"},
			probs:   []string{"aa.zones.cat.example.: zone a.example. is already a member under unique-id zz"},
		},
		{
			name:    "member that is a configured zone",
			body:    "m1.zones PTR yaml.example.\nm2.zones PTR b.example.\n",
			opt:     Options{Clash: func(z string) bool { return z == "yaml.example." }},
			members: []string{"b.example./m2//"},
			probs:   []string{"m1.zones.cat.example.: zone yaml.example. is already served"},
		},
		{
			name:    "member is the catalog",
			body:    "m1.zones PTR cat.example.\n",
			probs:   []string{"member is the catalog zone itself"},
			members: nil,
		},
		{
			name:    "bad properties",
			body:    "m1.zones PTR a.example.\ncoo.m1.zones PTR x.\ncoo.m1.zones PTR y.\ngroup.m1.zones A 192.0.2.1\nfoo.m1.zones TXT x\ncoo.m9.zones PTR z.\n",
			members: []string{"a.example./m1//"},
			probs: []string{
				"coo.m1.zones.cat.example.: coo property with 2 PTR records",
				"coo.m9.zones.cat.example.: property of a member node that does not exist",
				"foo.m1.zones.cat.example.: unknown member property",
				"group.m1.zones.cat.example.: group property without a TXT",
			},
		},
		{
			name: "coo pointing to itself",
			body: "m1.zones PTR a.example.\ncoo.m1.zones PTR cat.example.\n", members: []string{"a.example./m1//"},
			probs: []string{"coo points to this catalog"},
		},
		{
			name: "over the limit",
			body: "m1.zones PTR a.example.\nm2.zones PTR b.example.\nm3.zones PTR c.example.\n",
			opt:  Options{MaxMembers: 2},
			err:  ErrTooManyMembers,
		},
		{
			name:    "at the limit",
			body:    "m1.zones PTR a.example.\nm2.zones PTR b.example.\n",
			opt:     Options{MaxMembers: 2},
			members: []string{"a.example./m1//", "b.example./m2//"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, probs, err := Parse(catZone(t, 1, tc.body), tc.opt)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if set != nil {
					t.Fatalf("a set with the error")
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range set.Names() {
				m := set.Members[n]
				got = append(got, fmt.Sprintf("%s/%s/%s/%s", m.Zone, m.ID, strings.Join(m.Groups, ","), m.COO))
			}
			if !slices.Equal(got, tc.members) {
				t.Errorf("members\n got %q\nwant %q", got, tc.members)
			}
			if len(probs) != len(tc.probs) {
				t.Fatalf("problems %q, want %d like %q", probs, len(tc.probs), tc.probs)
			}
			for i, p := range probs {
				if !strings.Contains(p.String(), tc.probs[i]) {
					t.Errorf("problem %d: %q, want it to contain %q", i, p, tc.probs[i])
				}
			}
			if set.Serial != 1 || set.Catalog != "cat.example." {
				t.Errorf("serial %d catalog %s", set.Serial, set.Catalog)
			}
		})
	}
}

func TestParseNotCatalog(t *testing.T) {
	if _, _, err := Parse(nil, Options{}); !errors.Is(err, ErrNotCatalog) {
		t.Fatal(err)
	}
}

// TestParseHostile: a catalog with a million members is refused whole,
// with the limit in the message, and the default limit applies.
func TestParseHostile(t *testing.T) {
	const n = 1_000_000
	rrs := Generate("cat.example.", nil, 1)
	for i := range n {
		rrs = append(rrs, &dns.PTR{Hdr: dns.RR_Header{Name: fmt.Sprintf("m%d.zones.cat.example.", i), Rrtype: dns.TypePTR, Class: dns.ClassINET},
			Ptr: fmt.Sprintf("z%d.example.", i)})
	}
	z, _, err := zone.New("cat.example.", rrs, zone.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Parse(z, Options{})
	if !errors.Is(err, ErrTooManyMembers) || !strings.Contains(err.Error(), "limit 100000") {
		t.Fatalf("err %v", err)
	}
	// The registry keeps the member set it had.
	r := NewRegistry(Options{})
	if _, _, err := r.Update(catZone(t, 1, "m1.zones PTR a.example.\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Update(z); err == nil {
		t.Fatal("hostile version accepted")
	}
	if got := r.Set("cat.example.").Names(); !slices.Equal(got, []string{"a.example."}) {
		t.Fatalf("members after a refused version: %q", got)
	}
}

func TestDiff(t *testing.T) {
	old, _, err := Parse(catZone(t, 1, `a.zones PTR a.example.
b.zones PTR b.example.
c.zones PTR c.example.
group.c.zones TXT g1
d.zones PTR d.example.
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	new, _, err := Parse(catZone(t, 2, `a.zones PTR a.example.
b2.zones PTR b.example.
c.zones PTR c.example.
group.c.zones TXT g2
e.zones PTR e.example.
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch := Diff(old, new)
	names := func(ms []Member) (out []string) {
		for _, m := range ms {
			out = append(out, m.Zone+"/"+m.ID)
		}
		return out
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"added", names(ch.Added), []string{"e.example./e"}},
		{"removed", names(ch.Removed), []string{"d.example./d"}},
		{"reset", names(ch.Reset), []string{"b.example./b2"}},
		{"regrouped", names(ch.Regrouped), []string{"c.example./c"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}
	if ch.String() != "added 1, removed 1, reset 1, regrouped 1" {
		t.Errorf("%s", ch)
	}
	if !Diff(new, new).Empty() || Diff(nil, nil).Len() != 0 {
		t.Error("diff of a set with itself")
	}
	if got := Diff(nil, new); len(got.Added) != 4 {
		t.Errorf("from nothing: %s", got)
	}
}

// Len counts every change (for the test above).
func (c Changes) Len() int { return len(c.Added) + len(c.Removed) + len(c.Reset) + len(c.Regrouped) }

func acts(as []Action) []string {
	var out []string
	for _, a := range as {
		s := a.Kind.String() + " " + a.Member.Zone
		if a.From != "" {
			s += " from " + a.From
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestRegistryMigrate follows RFC 9432 §5.4: a member of catalog A listed
// by catalog B is a clash until A points it at B with coo; then it moves
// (state kept with the same unique-id, reset with another), and A dropping
// it later removes nothing.
func TestRegistryMigrate(t *testing.T) {
	r := NewRegistry(Options{Clash: func(z string) bool { return z == "yaml.example." }})
	a := func(serial int, body string) *zone.Zone { return catZoneAt(t, "a.cat.", serial, body) }
	b := func(serial int, body string) *zone.Zone { return catZoneAt(t, "b.cat.", serial, body) }
	step := func(z *zone.Zone, want ...string) []Problem {
		t.Helper()
		got, probs, err := r.Update(z)
		if err != nil {
			t.Fatal(err)
		}
		if g := acts(got); !slices.Equal(g, want) {
			t.Fatalf("update %s serial %d: actions %q, want %q", z.Origin, z.Serial(), g, want)
		}
		return probs
	}
	step(a(1, "m1.zones PTR one.example.\nm2.zones PTR two.example.\nm3.zones PTR yaml.example.\n"),
		"add one.example.", "add two.example.")
	// B lists one.example. too: A has it, so it is ignored in B.
	probs := step(b(1, "m1.zones PTR one.example.\nx.zones PTR two.example.\n"))
	if len(probs) != 2 {
		t.Fatalf("problems %q", probs)
	}
	if o, _ := r.Owner("one.example."); o != "a.cat." {
		t.Fatalf("owner %s", o)
	}
	// A hands both to B: one.example. keeps its unique-id (migrated with
	// its state), two.example. has another in B (reset). B is processed
	// again at once, since it lists them already.
	step(a(2, "m1.zones PTR one.example.\ncoo.m1.zones PTR b.cat.\nm2.zones PTR two.example.\ncoo.m2.zones PTR b.cat.\n"),
		"migrate one.example. from a.cat.", "reset two.example. from a.cat.")
	if o, _ := r.Owner("two.example."); o != "b.cat." {
		t.Fatalf("owner %s", o)
	}
	// A drops them: nothing happens, B owns them.
	step(a(3, ""))
	step(b(2, "m1.zones PTR one.example.\n"), "remove two.example.")
	got := r.Members()
	if len(got) != 1 || got[0].Member.Zone != "one.example." || got[0].Catalog != "b.cat." {
		t.Fatalf("members %v", got)
	}
	if d := acts(r.Drop("b.cat.")); !slices.Equal(d, []string{"remove one.example."}) {
		t.Fatalf("drop: %q", d)
	}
	if len(r.Members()) != 0 {
		t.Fatal("members left")
	}
}

// TestRegistryMigrateLater: coo in A first, B lists the member afterwards.
func TestRegistryMigrateLater(t *testing.T) {
	r := NewRegistry(Options{})
	mustActs := func(z *zone.Zone, want ...string) {
		t.Helper()
		got, _, err := r.Update(z)
		if err != nil {
			t.Fatal(err)
		}
		if g := acts(got); !slices.Equal(g, want) {
			t.Fatalf("actions %q, want %q", g, want)
		}
	}
	mustActs(catZoneAt(t, "a.cat.", 1, "m1.zones PTR one.example.\ncoo.m1.zones PTR b.cat.\n"), "add one.example.")
	mustActs(catZoneAt(t, "b.cat.", 1, "m1.zones PTR one.example.\n"), "migrate one.example. from a.cat.")
	// A coo to a third catalog from the old owner no longer matters.
	mustActs(catZoneAt(t, "c.cat.", 1, "m1.zones PTR one.example.\n"))
}

func TestRegistryResetRegroup(t *testing.T) {
	r := NewRegistry(Options{})
	for _, c := range []struct {
		body string
		want []string
	}{
		{"m1.zones PTR one.example.\nm2.zones PTR two.example.\n", []string{"add one.example.", "add two.example."}},
		{"m1.zones PTR one.example.\nn2.zones PTR two.example.\n", []string{"reset two.example."}},
		{"m1.zones PTR one.example.\ngroup.m1.zones TXT g\nn2.zones PTR two.example.\n", []string{"regroup one.example."}},
		{"version TXT \"3\"\n", nil},
		{"m1.zones PTR one.example.\ngroup.m1.zones TXT g\n", []string{"remove two.example."}},
	} {
		got, _, err := r.Update(catZone(t, 1, c.body))
		if c.want == nil {
			if err == nil {
				t.Fatal("version 3 accepted")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if g := acts(got); !slices.Equal(g, c.want) {
			t.Fatalf("%q: actions %q, want %q", c.body, g, c.want)
		}
	}
}

// TestGenerate: what a producer writes, a consumer reads back, with
// stable unique-ids.
func TestGenerate(t *testing.T) {
	entries := []Entry{{Zone: "B.example"}, {Zone: "a.example.", Group: "gold"}, {Zone: "b.example."}, {Zone: "cat.example."}}
	z, err := Build("cat.example.", entries, 7)
	if err != nil {
		t.Fatal(err)
	}
	set, probs, err := Parse(z, Options{})
	if err != nil || len(probs) != 0 {
		t.Fatal(err, probs)
	}
	if got := set.Names(); !slices.Equal(got, []string{"a.example.", "b.example."}) {
		t.Fatalf("members %q", got)
	}
	if m := set.Members["a.example."]; m.ID != UniqueID("A.Example") || !slices.Equal(m.Groups, []string{"gold"}) {
		t.Fatalf("a.example.: %+v", m)
	}
	if set.Serial != 7 {
		t.Fatal(set.Serial)
	}
	if id := UniqueID("a.example."); len(id) != 16 || id == UniqueID("b.example.") {
		t.Fatalf("unique-id %q", id)
	}
	long := strings.Repeat("x", 300)
	z, err = Build("cat.example.", []Entry{{Zone: "a.example.", Group: long}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	set, _, _ = Parse(z, Options{})
	if g := set.Members["a.example."].Groups; len(g) != 1 || g[0] != long {
		t.Fatalf("long group %q", g)
	}
}
