package zone

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseText: a zone file of 100k names (an A and an AAAA each)
// parsed into a Zone; B/op and allocs/op are what the GC pays for.
func BenchmarkParseText(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("$ORIGIN bench.test.\n$TTL 300\n@ SOA ns1 host 1 3600 600 86400 300\n@ NS ns1\nns1 A 198.18.0.1\n")
	for i := range 100000 {
		fmt.Fprintf(&sb, "h%d A 198.18.%d.%d\nh%d AAAA 2001:2::%x:%x\n", i, i/256%256, i%256, i, i>>16, i&0xffff)
	}
	data := []byte(sb.String())
	// fast: fastParse; zoneparser: miekg/dns's ZoneParser, as before it.
	for _, slow := range []bool{false, true} {
		name := "fast"
		if slow {
			name = "zoneparser"
		}
		b.Run(name, func(b *testing.B) {
			noFastParse = slow
			defer func() { noFastParse = false }()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := parseText(data, "bench.zone", "bench.test.", LoadOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
