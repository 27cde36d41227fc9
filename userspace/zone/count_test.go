package zone

import (
	"path/filepath"
	"testing"
)

// TestRecordCount: RecordCount (counted as the zone is indexed) counts what
// Records lists, NSEC3 chains and signatures included; FromStored's is
// checked by TestFromStoredRoundTrip.
func TestRecordCount(t *testing.T) {
	for _, f := range []struct{ path, origin string }{
		{"../nsddiff/testdata/nsec3.test.zone.signed", "nsec3.test."},
		{"../nsddiff/testdata/nsec.test.zone.signed", "nsec.test."},
		{"../answer/testdata/rfc1034-edu.zone", "edu."},
		{"../responder/testdata/example.com.zone", "example.com."},
	} {
		z, _, err := Load(f.path, f.origin, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := z.RecordCount(), len(z.Records()); got != want {
			t.Errorf("%s: RecordCount %d, Records %d", filepath.Base(f.path), got, want)
		}
	}
}
