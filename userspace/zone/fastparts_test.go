package zone

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// partSplits are the (parts, prefix) pairs checkParts reads a text with:
// parts of a few bytes to a few lines, so that part starts land on every
// kind of line, and prefixes that leave the file's directives to a part.
var partSplits = [][2]int{{2, 0}, {3, 1}, {5, 17}, {9, 0}, {17, 40}, {64, 3}}

// checkParts fails t when fastParse in parts reads text otherwise than in
// one piece. In parts it may take a text the one piece refuses (tooSlow
// counts per part), and must then read it as ZoneParser does; it may
// refuse one the piece takes only for tooSlow, so not below 65 lines.
func checkParts(t *testing.T, name, text, origin string, defaultTTL uint32) {
	t.Helper()
	one, oneOK := fastParseIn([]byte(text), "t.zone", origin, defaultTTL, 1, 0)
	for _, s := range partSplits {
		got, ok := fastParseIn([]byte(text), "t.zone", origin, defaultTTL, s[0], s[1])
		label := fmt.Sprintf("%s (%d parts after %d bytes)", name, s[0], s[1])
		switch {
		case ok && oneOK:
			if msg := sameParsed(&got, &one); msg != "" {
				t.Fatalf("%s: %s:\n%s", label, msg, text)
			}
		case ok:
			checkParsed(t, label, text, origin, defaultTTL, &got)
		case oneOK && strings.Count(text, "\n") <= 64:
			t.Fatalf("%s: refused what the one piece reads:\n%s", label, text)
		}
	}
}

// sameParsed says how a and b differ, or "".
func sameParsed(a, b *parsed) string {
	if len(a.rrs) != len(b.rrs) || len(a.addrs) != len(b.addrs) {
		return fmt.Sprintf("%d records and %d addresses, in one piece %d and %d", len(a.rrs), len(a.addrs), len(b.rrs), len(b.addrs))
	}
	for i := range a.rrs {
		if a.rrs[i].String() != b.rrs[i].String() || *a.rrs[i].Header() != *b.rrs[i].Header() || a.lines[i] != b.lines[i] {
			return fmt.Sprintf("record %d is %v on line %d, in one piece %v on line %d", i, a.rrs[i], a.lines[i], b.rrs[i], b.lines[i])
		}
	}
	for i := range a.addrs {
		if !reflect.DeepEqual(a.addrs[i], b.addrs[i]) {
			return fmt.Sprintf("address %d is %+v, in one piece %+v", i, a.addrs[i], b.addrs[i])
		}
	}
	return ""
}

// TestFastParseParts: texts with what makes a part's start state differ
// from what it assumed ($ORIGIN and $TTL further down, explicit TTLs
// without $TTL, records over several lines whose next lines start at the
// left margin, names given once for several lines) read the same in
// parts as in one piece, and are taken.
func TestFastParseParts(t *testing.T) {
	hosts := func(b *strings.Builder, from, n int, line func(i int) string) {
		for i := from; i < from+n; i++ {
			b.WriteString(line(i))
		}
	}
	texts := map[string]func(*strings.Builder){
		"$TTL at the top": func(b *strings.Builder) {
			b.WriteString(head)
			hosts(b, 0, 300, func(i int) string { return fmt.Sprintf("h%d A 198.18.%d.%d\n  AAAA 2001:2::%x\n", i, i/256, i%256, i) })
		},
		"no $TTL, explicit TTLs": func(b *strings.Builder) {
			b.WriteString("$ORIGIN example.\nns 60 A 198.18.0.1\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n")
			hosts(b, 0, 300, func(i int) string {
				if i%7 == 0 {
					return fmt.Sprintf("h%d %d A 198.18.%d.%d\n", i, 30+i, i/256, i%256)
				}
				return fmt.Sprintf("h%d A 198.18.%d.%d\n", i, i/256, i%256)
			})
		},
		"directives further down": func(b *strings.Builder) {
			b.WriteString(head)
			hosts(b, 0, 300, func(i int) string {
				switch i % 50 {
				case 10:
					return fmt.Sprintf("$TTL %d\nh%d A 198.18.0.%d\n", 100+i, i, i%256)
				case 30:
					return fmt.Sprintf("$ORIGIN s%d.example.\nh%d A 198.18.0.%d\n", i, i, i%256)
				case 40:
					return fmt.Sprintf("$ORIGIN example.\nh%d A 198.18.0.%d\n", i, i%256)
				}
				return fmt.Sprintf("h%d A 198.18.1.%d\n", i, i%256)
			})
		},
		"records over several lines": func(b *strings.Builder) {
			b.WriteString("$ORIGIN example.\n$TTL 300\n@ SOA ns h (\n1 ; serial at the margin\n2 3 4 5 )\n@ NS ns\nns A 198.18.0.1\n")
			hosts(b, 0, 300, func(i int) string {
				if i%13 == 0 {
					return fmt.Sprintf("t%d TXT (\n\"a\"\nx%d \"b\" )\n  A 198.18.2.%d\n", i, i, i%256)
				}
				return fmt.Sprintf("h%d A 198.18.1.%d ; c\n\n", i, i%256)
			})
		},
		"a record longer than a part": func(b *strings.Builder) {
			b.WriteString(head)
			hosts(b, 0, 50, func(i int) string { return fmt.Sprintf("h%d A 198.18.1.%d\n", i, i%256) })
			b.WriteString("long TXT (\n")
			hosts(b, 0, 400, func(i int) string { return fmt.Sprintf("w%d\n", i) })
			b.WriteString(")\n  A 198.18.3.1\n")
			hosts(b, 50, 50, func(i int) string { return fmt.Sprintf("h%d A 198.18.1.%d\n", i, i%256) })
		},
	}
	for name, gen := range texts {
		var b strings.Builder
		gen(&b)
		text := b.String()
		if _, ok := fastParseIn([]byte(text), "t.zone", "example.", 0, 1, 0); !ok {
			t.Fatalf("%s: fastParse refused it", name)
		}
		checkParts(t, name, text, "example.", 0)
		for parts := 2; parts < 40; parts++ {
			for _, prefix := range []int{0, 5, 100, 700} {
				got, ok := fastParseIn([]byte(text), "t.zone", "example.", 0, parts, prefix)
				one, _ := fastParseIn([]byte(text), "t.zone", "example.", 0, 1, 0)
				if !ok {
					t.Fatalf("%s: refused in %d parts after %d bytes", name, parts, prefix)
				}
				if msg := sameParsed(&got, &one); msg != "" {
					t.Fatalf("%s, %d parts after %d bytes: %s", name, parts, prefix, msg)
				}
			}
		}
	}
}

// TestFastParseInParts: fastParse itself reads a large file in parts when
// it has CPUs for them, and the zone is the one of the one-piece read.
func TestFastParseInParts(t *testing.T) {
	old := fastPartBytes
	fastPartBytes = 4096
	t.Cleanup(func() { fastPartBytes = old })
	var b strings.Builder
	b.WriteString(head)
	for i := range 5000 {
		fmt.Fprintf(&b, "h%d A 198.18.%d.%d\nh%d AAAA 2001:2::%x\n", i, i/256%256, i%256, i, i)
	}
	data := []byte(b.String())
	pr, ok := fastParse(data, "t.zone", "example.", 0)
	one, _ := fastParseIn(data, "t.zone", "example.", 0, 1, 0)
	if !ok {
		t.Fatal("fastParse refused a zone of hosts")
	}
	if msg := sameParsed(&pr, &one); msg != "" {
		t.Fatal(msg)
	}
	if len(pr.addrs) != 10001 {
		t.Fatalf("%d addresses, want 10001", len(pr.addrs))
	}
}

// BenchmarkFastParseParts: fastParse of a file of 300k names (an A and an
// AAAA each, 15 MB) in one piece and in the parts fastParse picks on this
// machine; the ratio of the two is the figure (docs/performance.md).
func BenchmarkFastParseParts(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(head)
	for i := range 300000 {
		fmt.Fprintf(&sb, "h%d A 198.18.%d.%d\nh%d AAAA 2001:2::%x:%x\n", i, i/256%256, i%256, i, i>>16, i&0xffff)
	}
	data := []byte(sb.String())
	parts := fastParts(len(data))
	for _, c := range []struct {
		name  string
		parts int
	}{{"one-piece", 1}, {fmt.Sprintf("%d-parts", parts), parts}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, ok := fastParseIn(data, "bench.zone", "example.", 0, c.parts, fastPrefixBytes); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
