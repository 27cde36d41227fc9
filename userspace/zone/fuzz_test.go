package zone

import (
	"strings"
	"testing"
)

// FuzzParse: zone text from anywhere never panics the loader; a zone it
// accepts has its SOA at the apex.
func FuzzParse(f *testing.F) {
	f.Add(head + "www A 198.18.0.2\n*.w TXT x\nsub NS ns.sub\nns.sub A 198.18.0.3\n")
	f.Add(head + "www CNAME x\nwww A 198.18.0.2\n")
	f.Add("$ORIGIN example.\n@ 300 SOA ns h ( 1 2\n 3 4 5 )\n")
	f.Fuzz(func(t *testing.T, text string) {
		z, _, err := Parse(strings.NewReader(text), "f.zone", "example.", LoadOptions{})
		if err != nil {
			return
		}
		if z.SOA == nil || z.Node(z.Origin) == nil {
			t.Fatal("accepted a zone without SOA at the apex")
		}
		_ = z.Records()
	})
}
