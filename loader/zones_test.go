package loader

import (
	"fmt"
	"slices"
	"testing"

	"github.com/xdpns/xdpns/userspace/compile"
	"github.com/xdpns/xdpns/userspace/zone"
)

// TestZonesFromTable: the entries read from a zone's table (the daemon's
// path: ZonesFrom with tables, Table.Each lending the table's bytes) are the
// ones compile.Each lists for it, for every test zone; and the image built
// from them lent is the one built from them copied.
func TestZonesFromTable(t *testing.T) {
	// Small zones sized from a sample too, as a big one is: the store
	// then often grows as the image is laid out.
	defer func(n int) { sizeSample = n }(sizeSample)
	sizeSample = 3
	for file, origin := range testZones(t) {
		z, _, err := zone.Load(file, origin, zone.LoadOptions{AllowInclude: true})
		if err != nil {
			t.Fatal(err)
		}
		tab, err := compile.Build(z)
		if err != nil {
			t.Fatal(err)
		}
		compiled, err := ZonesFrom(nil, nil, z)
		if err != nil {
			t.Fatal(err)
		}
		read, err := ZonesFrom(func(*zone.Zone) *compile.Table { return tab }, nil, z)
		if err != nil {
			t.Fatal(err)
		}
		if read[0].List == nil || len(read[0].Entries) != 0 {
			t.Fatalf("%s: the table's entries were copied, not lent", origin)
		}
		a, b := entryLines(t, &compiled[0]), entryLines(t, &read[0])
		if !slices.Equal(a, b) {
			t.Errorf("%s: %d entries compiled, %d read from the table; first differences:\n%v\n%v", origin, len(a), len(b), diffLines(a, b), diffLines(b, a))
		}
		// The image from the lent entries is the one from the same entries
		// copied into a slice, as ZonesFrom gave them before.
		copied := read[0]
		copied.List = nil
		if err := read[0].each(func(e *compile.Entry) error {
			copied.Entries = append(copied.Entries, *e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		im1, err := BuildImage(copied)
		if err != nil {
			t.Fatal(err)
		}
		im2, err := BuildImage(read...)
		if err != nil {
			t.Fatal(err)
		}
		// Table.Each's order is the map's, new at every pass, and shared
		// bodies depend on the order: compare what does not.
		k1, k2 := imageKeys(im1), imageKeys(im2)
		slices.Sort(k1)
		slices.Sort(k2)
		if !slices.Equal(k1, k2) || im1.Entries != im2.Entries || im1.Collisions != im2.Collisions {
			t.Errorf("%s: the image from the table's entries has other keys than the one from their copies", origin)
		}
	}
}

// entryLines renders ze's entries, sorted.
func entryLines(t *testing.T, ze *ZoneEntries) []string {
	var out []string
	if err := ze.each(func(e *compile.Entry) error {
		b := e.Body
		out = append(out, fmt.Sprintf("%x/%d/%v %d %v/%v/%v/%v/%v/%v/%v %v %d/%d/%d/%d %x|%x|%d|%x", e.Name, e.Type, e.DO, e.Kind,
			e.Negative, e.NXD, e.Wild, e.WildSafe, e.Referral, e.WildNoData, e.WildNoDataSigned, e.WildExcept,
			b.An, b.Ns, b.Ar, b.Rcode, b.Bytes, b.Tail, b.TailNs, b.Ptrs))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// diffLines is up to three lines of a missing from b.
func diffLines(a, b []string) []string {
	var out []string
	for _, l := range a {
		if _, found := slices.BinarySearch(b, l); !found && len(out) < 3 {
			out = append(out, l)
		}
	}
	return out
}

// imageKeys lists the index keys of im, in no order.
func imageKeys(im *Image) []uint64 {
	var out []uint64
	im.ix.each(func(k uint64, _ xdpnsIndexVal) { out = append(out, k) })
	return out
}
