package loader

import "testing"

// TestSizeOf: the store estimate loadInPlace sizes a map from is close to
// what the image takes, for every test zone: short, the load lays the
// image out twice; long, the kernel allocates memory never used.
func TestSizeOf(t *testing.T) {
	for file, origin := range testZones(t) {
		zs := mustZones(t, loadZone(t, file, origin))
		n, est, err := sizeOf(zs)
		if err != nil {
			t.Fatal(err)
		}
		im, err := BuildImage(zs...)
		if err != nil {
			t.Fatal(err)
		}
		got := im.StoreBytes()
		t.Logf("%s: %d entries, %d estimated; store %d bytes, %d estimated", origin, im.Entries, n, got, est)
		if n < im.Entries {
			t.Errorf("%s: %d entries estimated, %d in the image", origin, n, im.Entries)
		}
		// Shared bodies are counted one per QNAME length, and a small
		// zone has names of one length with different ones: a little
		// short there, which the headroom covers.
		if est < got*3/4 || est > got+got/4+4096 {
			t.Errorf("%s: store of %d bytes estimated at %d", origin, got, est)
		}
	}
}
