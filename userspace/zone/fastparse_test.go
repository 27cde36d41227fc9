package zone

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// checkFastParse fails t when fastParse accepts text and reads it
// differently from ZoneParser: other records, other TTLs, other lines, or
// a text ZoneParser refuses. It reports whether fastParse took it.
func checkFastParse(t *testing.T, name, text, origin string, defaultTTL uint32) bool {
	t.Helper()
	pr, ok := fastParse([]byte(text), "t.zone", origin, defaultTTL)
	if !ok {
		return false
	}
	checkParsed(t, name, text, origin, defaultTTL, &pr)
	checkNewFast(t, name, text, origin, defaultTTL, zoneParserRecords(t, name, text, origin, defaultTTL))
	return true
}

// zoneParserRecords is what ZoneParser reads of text; t fails if it
// refuses it.
func zoneParserRecords(t *testing.T, name, text, origin string, defaultTTL uint32) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "t.zone")
	if defaultTTL != 0 {
		zp.SetDefaultTTL(defaultTTL)
	}
	var want []dns.RR
	for rr, more := zp.Next(); more; rr, more = zp.Next() {
		want = append(want, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("%s: fastParse accepted what ZoneParser refuses (%v):\n%s", name, err, text)
	}
	return want
}

// checkParsed fails t when pr, what fastParse read of text, differs from
// ZoneParser's records or the scan's lines.
func checkParsed(t *testing.T, name, text, origin string, defaultTTL uint32, pr *parsed) {
	t.Helper()
	rrs, lines := pr.records()
	want := zoneParserRecords(t, name, text, origin, defaultTTL)
	if len(rrs) != len(want) {
		t.Fatalf("%s: fastParse read %d records, ZoneParser %d:\n%s", name, len(rrs), len(want), text)
	}
	for i := range rrs {
		if a, b := rrs[i].String(), want[i].String(); a != b {
			t.Fatalf("%s: record %d is %q, ZoneParser reads %q:\n%s", name, i, a, b, text)
		}
		if *rrs[i].Header() != *want[i].Header() {
			t.Fatalf("%s: record %d header %+v, ZoneParser %+v", name, i, *rrs[i].Header(), *want[i].Header())
		}
	}
	if recs, err := scanRecords([]byte(text), "t.zone", false, defaultTTL); err == nil && len(recs) == len(lines) {
		for i := range recs {
			if recs[i].line != int(lines[i]) {
				t.Fatalf("%s: record %d on line %d, the scan says %d:\n%s", name, i, lines[i], recs[i].line, text)
			}
		}
	}
}

// checkNewFast fails t when newFast builds a zone New would not build from
// ZoneParser's records want, or another one.
func checkNewFast(t *testing.T, name, text, origin string, defaultTTL uint32, want []dns.RR) {
	t.Helper()
	pr, _ := fastParse([]byte(text), "t.zone", origin, defaultTTL)
	got, ok := newFast(origin, &pr, Options{})
	z, warns, err := New(origin, want, Options{}, nil)
	switch {
	case !ok:
		return // New builds it (or words the error)
	case err != nil || len(warns) > 0:
		t.Fatalf("%s: newFast built a zone where New says %v %v:\n%s", name, err, warns, text)
	}
	if a, b := storedText(got), storedText(z); a != b {
		t.Fatalf("%s: newFast built\n%s\nNew\n%s\nfrom:\n%s", name, a, b, text)
	}
	if got.SOA.String() != z.SOA.String() || got.Signed != z.Signed || got.RecordCount() != z.RecordCount() {
		t.Fatalf("%s: newFast's SOA, signing or count differ from New's", name)
	}
}

// storedText is z's stored form as text, in canonical order.
func storedText(z *Zone) string {
	var lines []string
	for _, n := range storedOf(z) {
		lines = append(lines, fmt.Sprintf("%s %v %x", n.Name, n.NSEC3, n.Data))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func TestFastParseMatchesZoneParser(t *testing.T) {
	texts := map[string]string{
		"hosts":         head + "a 60 A 198.18.0.1\nb IN A 198.18.0.2\nc 7 IN AAAA 2001:2::1\nd IN 8 A 198.18.0.4\n  AAAA 2001:2::2\ne A 198.18.0.5 ; comment\n",
		"no $TTL":       "$ORIGIN example.\n@ 60 SOA ns h 1 2 3 4 5\n@ NS ns\nns 7 A 198.18.0.1\nb A 198.18.0.2\n$TTL 9\nc A 198.18.0.3\nd 4 A 198.18.0.4\ne A 198.18.0.5\n",
		"soa in parens": "$ORIGIN example.\n$TTL 300\n@ IN SOA ns h (\n 1 ; serial\n 2 3 4 5 )\n  NS ns\nns A 198.18.0.1\nwww A 198.18.0.2\n",
		"txt":           head + "t TXT \"v=spf1 -all\" ; (c)\n  A 198.18.0.9\n; (c) 2026 example\nu \"\" 0 IN A 198.18.0.1\n",
		"origin":        head + "$ORIGIN sub\nx A 198.18.0.1\n$ORIGIN example.\ny A 198.18.0.2\n@ A 198.18.0.3\nz.example. A 198.18.0.4\n",
		"crlf":          strings.ReplaceAll(head+"a A 198.18.0.1\nb AAAA 2001:2::1\n", "\n", "\r\n"),
		"mixed case":    head + "A a 198.18.0.1\nB in aaaa 2001:2::1\nC 1h IN A 198.18.0.3\n",
		"bad address":   head + "a A 2001:2::1\n",
		"blank first":   "  A 198.18.0.1\n",
		"escapes":       head + "a\\.b A 198.18.0.1\nc MX 10 d\\046e\n",
	}
	addTreeZones(t, texts)
	took := 0
	for name, text := range texts {
		origin := "example."
		if strings.HasPrefix(name, "../") {
			origin = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
			origin = strings.TrimSuffix(origin, ".zone") + "."
		}
		if checkFastParse(t, name, text, origin, 0) {
			took++
		}
	}
	t.Logf("fastParse took %d of %d texts", took, len(texts))
	if !checkFastParse(t, "hosts", texts["hosts"], "example.", 0) || !checkFastParse(t, "soa in parens", texts["soa in parens"], "example.", 0) {
		t.Error("fastParse refused a zone of hosts")
	}
	for _, name := range []string{"hosts", "soa in parens", "mixed case", "origin"} {
		pr, _ := fastParse([]byte(texts[name]), "t.zone", "example.", 0)
		if _, ok := newFast("example.", &pr, Options{}); !ok {
			t.Errorf("newFast gave way to New on %q", name)
		}
	}
}

// Both paths make the same zone, and errors name the same line.
func TestFastParseSameZone(t *testing.T) {
	for _, text := range []string{
		head + "a A 198.18.0.1\nb CNAME a\nb A 198.18.0.2\n", // CNAME and data: an error naming line 8
		head + "a A 198.18.0.1\nwww.other. A 198.18.0.2\n",   // out of zone, line 7
		head + "a A 198.18.0.1\n  AAAA 2001:2::1\n",
		// newFast: stored form merged with records read as dns.RR.
		head + "a A 198.18.0.1\na RRSIG A 8 2 300 20300101000000 20200101000000 12345 example. AAAA\n",
		head + "a A 198.18.0.1\na A ( 198.18.0.3 )\n", // one set read both ways
		head + "a 60 A 198.18.0.1\na 30 A 198.18.0.1\na 90 A 198.18.0.2\n  AAAA 2001:2::1\n",
		head + "A A 198.18.0.1\na AAAA 2001:2::1\nB.example. A 198.18.0.2\n@ A 198.18.0.3\n* A 198.18.0.4\n",
		head + "@ NS ns.other.\nns.other. A 198.18.0.9\n", // ignored glue: a warning
		head + "sub NS ns.other.\nx.sub CNAME a\nx.sub A 198.18.0.1\n",
		head + "b MX 1 a\nb A 198.18.0.1\nc TXT x\nc AAAA 2001:2::1\nc A 198.18.0.5\n",
	} {
		z1, w1, err1 := Parse(strings.NewReader(text), "t.zone", "example.", LoadOptions{})
		noFastParse = true
		z2, w2, err2 := Parse(strings.NewReader(text), "t.zone", "example.", LoadOptions{})
		noFastParse = false
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) || len(w1) != len(w2) {
			t.Errorf("fast: %v %v; slow: %v %v", err1, w1, err2, w2)
			continue
		}
		if err1 == nil && strings.Join(recordStrings(z1), "\n") != strings.Join(recordStrings(z2), "\n") {
			t.Errorf("the two paths made different zones from:\n%s", text)
		}
		if err1 == nil && storedText(z1) != storedText(z2) {
			t.Errorf("the two paths stored different zones from:\n%s", text)
		}
	}
}

func FuzzFastParse(f *testing.F) {
	f.Add(head + "a 60 A 198.18.0.1\n  AAAA 2001:2::1\nb IN 5 A 198.18.0.2\n")
	f.Add("$ORIGIN example.\n@ IN SOA ns h (\n 1 ; serial\n 2 3 4 5 )\n  NS ns\nns A 198.18.0.1\n$TTL 9\nb A 198.18.0.2\n")
	f.Add(head + "t TXT \"a;b\" ; (c)\n  A 198.18.0.9\n$ORIGIN sub\nx 3 A 198.18.0.1\n")
	f.Fuzz(func(t *testing.T, text string) {
		checkFastParse(t, "fuzz", text, "example.", 0)
		checkFastParse(t, "fuzz, default TTL", text, "example.", 77)
		checkParts(t, "fuzz in parts", text, "example.", 0)
		checkParts(t, "fuzz in parts, default TTL", text, "example.", 77)
	})
}

// TestFastRunsMerged: a name whose address lines are not together (all A
// records first, then all AAAA; a name again further down, with a lower
// TTL and a record it already had) gets a building per run in newFast,
// merged in file order: newFast keeps the fast path and makes New's zone.
func TestFastRunsMerged(t *testing.T) {
	for _, text := range []string{
		head + "a A 198.18.0.1\nb A 198.18.0.2\na AAAA 2001:2::1\nb AAAA 2001:2::2\n",
		head + "a 60 A 198.18.0.1\nb A 198.18.0.2\na 30 A 198.18.0.3\nc A 198.18.0.4\na 90 A 198.18.0.1\n  AAAA 2001:2::1\nb AAAA 2001:2::2\nb AAAA 2001:2::3\n",
		head + "x.a A 198.18.0.1\na A 198.18.0.2\nx.a AAAA 2001:2::1\n",
	} {
		pr, ok := fastParse([]byte(text), "t.zone", "example.", 0)
		if !ok {
			t.Fatalf("fastParse refused:\n%s", text)
		}
		z1, ok := newFast("example.", &pr, Options{})
		if !ok {
			t.Fatalf("newFast refused:\n%s", text)
		}
		noFastParse = true
		z2, _, err := Parse(strings.NewReader(text), "t.zone", "example.", LoadOptions{})
		noFastParse = false
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(recordStrings(z1), "\n") != strings.Join(recordStrings(z2), "\n") || storedText(z1) != storedText(z2) {
			t.Errorf("newFast's zone differs from New's for:\n%s\nfast:\n%s\nslow:\n%s", text, storedText(z1), storedText(z2))
		}
	}
}
