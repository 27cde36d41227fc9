package xfr

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkBINDBigZone: a BIND primary on loopback with a zone of 100k
// records. Setup logs the first AXFR; each iteration is one update at the
// primary until the secondary publishes it (NOTIFY, SOA query, IXFR,
// applying, validating; compiling for the responder included).
func BenchmarkBINDBigZone(b *testing.B) {
	const records = 100_000
	var text strings.Builder
	text.WriteString(zoneText(1, 3600, 600, 86400))
	for i := range records {
		fmt.Fprintf(&text, "r%d IN A 198.18.%d.%d\n", i, (i/256)%256, i%256)
	}
	nl := notifyListener(b)
	named := bindPrimary(b, text.String(), port(nl))
	start := time.Now()
	s := startSecondary(b, Config{StateDir: b.TempDir(), Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}, nl)
	s.waitSerial(1, time.Minute)
	b.Logf("first AXFR of %d records, validated and compiled: %v", records, time.Since(start))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		named.Update(testZone, func(m *dns.Msg) {
			r, _ := dns.NewRR(fmt.Sprintf("u%d.example.test. 300 IN A 198.18.200.1", i))
			m.Insert([]dns.RR{r})
		})
		s.waitSerial(uint32(i+2), 30*time.Second)
	}
	b.StopTimer()
	var lines []string
	for _, l := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(l, "zone saved") || strings.Contains(l, "zone updated") {
			lines = append(lines, l)
		}
	}
	b.Logf("last steps:\n%s", strings.Join(lines[max(0, len(lines)-4):], "\n"))
}
