package zone

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func storedOf(z *Zone) []StoredNode {
	var out []StoredNode
	z.EachStored(func(name string, nsec3 bool, data []byte) error {
		out = append(out, StoredNode{Name: name, NSEC3: nsec3, Data: slices.Clone(data)})
		return nil
	})
	return out
}

func recordStrings(z *Zone) []string {
	var out []string
	for _, rr := range z.Records() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func signedTestZone(t *testing.T, name string) *Zone {
	t.Helper()
	file := filepath.Join("..", "nsddiff", "testdata", name+".zone.signed")
	z, _, err := Load(file, name+".", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestFromStoredRoundTrip(t *testing.T) {
	for _, name := range []string{"nsec.test", "nsec3s.test", "optout.test", "chain.test"} {
		z := signedTestZone(t, name)
		nodes := storedOf(z)
		if len(nodes) != z.StoredCount() {
			t.Errorf("%s: EachStored gave %d nodes, StoredCount says %d", name, len(nodes), z.StoredCount())
		}
		got, err := FromStored(name+".", nodes, Options{RequireNS: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a, b := recordStrings(z), recordStrings(got); !slices.Equal(a, b) {
			t.Errorf("%s: %d records stored, %d back", name, len(a), len(b))
		}
		if !slices.Equal(z.Names(), got.Names()) || got.RecordCount() != len(got.Records()) {
			t.Errorf("%s: names or record count differ", name)
		}
		for _, n := range z.Names() {
			if a, b := z.Node(n), got.Node(n); a.Flags != b.Flags || a.kids != b.kids {
				t.Errorf("%s: node %s flags %v kids %d, stored from %v %d", name, n, b.Flags, b.kids, a.Flags, a.kids)
			}
		}
		if !slices.Equal(z.nsec, got.nsec) || len(z.n3) != len(got.n3) {
			t.Errorf("%s: NSEC or NSEC3 chains differ", name)
		}
	}
}

// A stored form that does not hold together is an error, never a zone the
// engine would misread: bad names, duplicates, damaged data.
func TestFromStoredRefuses(t *testing.T) {
	z := signedTestZone(t, "nsec3s.test")
	good := storedOf(z)
	cases := map[string]func([]StoredNode) []StoredNode{
		"outside the zone": func(n []StoredNode) []StoredNode { n[0].Name = "other.test."; return n },
		"not canonical":    func(n []StoredNode) []StoredNode { n[0].Name = strings.ToUpper(n[0].Name); return n },
		"twice":            func(n []StoredNode) []StoredNode { return append(n, n[0]) },
		"no data":          func(n []StoredNode) []StoredNode { n[0].Data = nil; return n },
		"cut short":        func(n []StoredNode) []StoredNode { n[0].Data = n[0].Data[:len(n[0].Data)-1]; return n },
		"NSEC3 deep": func(n []StoredNode) []StoredNode {
			for i := range n {
				if n[i].NSEC3 {
					n[i].Name = "x." + n[i].Name
					break
				}
			}
			return n
		},
	}
	for what, damage := range cases {
		nodes := damage(storedOf(z))
		if _, err := FromStored("nsec3s.test.", nodes, Options{RequireNS: true}); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	if _, err := FromStored("nsec3s.test.", good, Options{RequireNS: true}); err != nil {
		t.Fatal(err)
	}
	// Random damage to the bytes: an error, or a zone whose every record
	// reads back (the engine panics on stored bytes that do not).
	rng := rand.New(rand.NewPCG(7, 11))
	accepted := 0
	for range 3000 {
		nodes := storedOf(z)
		n := &nodes[rng.IntN(len(nodes))]
		for range 1 + rng.IntN(3) {
			n.Data[rng.IntN(len(n.Data))] ^= byte(1 + rng.IntN(255))
		}
		got, err := FromStored("nsec3s.test.", nodes, Options{RequireNS: true})
		if err != nil {
			continue
		}
		accepted++
		got.Records()
	}
	t.Logf("%d of 3000 damaged forms accepted (damage inside record data), all readable", accepted)
}
