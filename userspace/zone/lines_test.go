package zone

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Errors name the line of the record at fault, also around $GENERATE (one
// line, many records), $INCLUDE, records in parentheses and directives.
func TestLoadErrorLinesAroundGenerate(t *testing.T) {
	gen := "$GENERATE 1-100 host$ A 198.18.1.$\n" // 100 records from one line
	cases := []struct {
		name, text, want string
		is               error
	}{
		// head is lines 1-5.
		{"before", head + "@ SOA ns h 2 2 3 4 5\n" + gen + "x A 198.18.0.9\n",
			"t.zone:6: duplicate SOA", ErrDuplicateSOA},
		{"inside, out of zone", head + "x A 198.18.0.9\n$GENERATE 1-3 h$.example.org. A 198.18.1.$\n",
			"t.zone:7: record outside the zone", ErrOutOfZone},
		{"inside, beside a CNAME", head + "host42 CNAME www\n" + gen,
			"t.zone:7: CNAME beside other data", ErrCNAMEAndData},
		{"after", head + gen + "www.example.org. A 198.18.0.2\n",
			"t.zone:7: record outside the zone", ErrOutOfZone},
		{"after, with step", head + "$GENERATE 10-99/7 host$ A 198.18.1.$\n" + "@ SOA ns h 2 2 3 4 5\n",
			"t.zone:7: duplicate SOA", ErrDuplicateSOA},
		{"after two", head + gen + "; comment\n\n" + "$generate 1-9 h${0,3,d} TXT \"$\"\n" + "www.example.org. A 198.18.0.2\n",
			"t.zone:10: record outside the zone", ErrOutOfZone},
		{"after a conflict with a generated name", head + gen + "host7 CNAME www\n",
			"t.zone:7: CNAME beside other data", ErrCNAMEAndData},
		{"parentheses and directives", head + "$ttl 60\nmx ( MX 10\n  mail ; comment (\n )\n$ORIGIN sub.example.\n\t\t; only a comment\n" +
			gen + "txt TXT \"a ( ; \" (\n \"b\" )\n@ CNAME x\n@ A 198.18.0.3\n",
			"t.zone:16: CNAME beside other data", ErrCNAMEAndData},
		{"owner that starts with $", head + "\\$x A 198.18.0.7\n" + gen + "@ SOA ns h 2 2 3 4 5\n",
			"t.zone:8: duplicate SOA", ErrDuplicateSOA},
	}
	for _, c := range cases {
		_, _, err := parse(t, c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
		if !errors.Is(err, c.is) {
			t.Errorf("%s: %v is not %v", c.name, err, c.is)
		}
	}
}

func TestLoadErrorLinesAcrossInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("part.zone", "; part\n$GENERATE 0-255/5 p$ A 198.18.2.$\nmulti (\n A 198.18.0.8 )\n")
	cases := []struct {
		name, part, text, want string
	}{
		{"in the included file, after its $GENERATE", "\nx.example.org. A 198.18.0.1\n",
			head + "$INCLUDE part.zone\n$INCLUDE bad.zone\n", "bad.zone:2: record outside the zone"},
		{"in the including file, after", "",
			head + "$INCLUDE part.zone\n$INCLUDE bad.zone\n$GENERATE 1-2 q$ A 198.18.3.$\nwww.example.org. A 198.18.0.2\n", "main.zone:9: record outside the zone"},
		{"generated in the included file", "p5 CNAME www\n$INCLUDE part.zone\n",
			head + "$INCLUDE bad.zone\n", "part.zone:2: CNAME beside other data"},
	}
	for _, c := range cases {
		write("bad.zone", c.part)
		p := write("main.zone", c.text)
		_, _, err := Load(p, "example.", LoadOptions{AllowInclude: true})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, c.want)) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

// A file that includes itself fails in the parser, not with a stack overflow
// in the line scan.
func TestSelfIncludeFails(t *testing.T) {
	p := filepath.Join(t.TempDir(), "self.zone")
	if err := os.WriteFile(p, []byte(head+"$INCLUDE self.zone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(p, "example.", LoadOptions{AllowInclude: true}); err == nil || !strings.Contains(err.Error(), "too deeply nested") {
		t.Errorf("self include: %v", err)
	}
}

func TestRecordLinesCountMatchesParser(t *testing.T) {
	text := head + "$GENERATE 1-10/3 a$ A 198.18.1.$\n$GENERATE 5-5 b$ A 198.18.1.$\n$TTL 5\nc ( A\n 198.18.0.1 )\n"
	lines, err := recordLines([]byte(text), "t.zone", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"t.zone:3", "t.zone:4", "t.zone:5", "t.zone:6", "t.zone:6", "t.zone:6", "t.zone:6", "t.zone:7", "t.zone:9"}
	if strings.Join(lines, " ") != strings.Join(want, " ") {
		t.Errorf("lines %v, want %v", lines, want)
	}
}

// ttlsFixed reports whether fixTTLs changes a TTL ZoneParser read in text.
func ttlsFixed(t *testing.T, text string) bool {
	zp := dns.NewZoneParser(strings.NewReader(text), "example.", "t.zone")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if zp.Err() != nil {
		return false
	}
	recs, err := scanRecords([]byte(text), "t.zone", false, 0)
	if err != nil {
		return false
	}
	before := make([]uint32, len(rrs))
	for i, rr := range rrs {
		before[i] = rr.Header().Ttl
	}
	if err := fixTTLs(rrs, recs); err != nil {
		return true
	}
	for i, rr := range rrs {
		if rr.Header().Ttl != before[i] {
			return true
		}
	}
	return false
}

// The scan runs only for files with $GENERATE or $INCLUDE (fixesTTLs):
// elsewhere fixTTLs must change nothing. Every zone file of the tree, and
// texts around TTL semantics.
func TestFixTTLsOnlyAroundDirectives(t *testing.T) {
	texts := map[string]string{
		"ttl then none":   head + "a 60 A 198.18.0.1\nb A 198.18.0.2\n$TTL 5\nc A 198.18.0.3\nd 7 A 198.18.0.4\ne A 198.18.0.5\n",
		"blank owners":    head + "a 60 A 198.18.0.1\n  AAAA 2001:2::1\n  IN 9 TXT x\n",
		"parens":          head + "a ( 60\n IN A 198.18.0.1 )\nb A 198.18.0.2\n",
		"no $TTL":         "$ORIGIN example.\n@ 60 SOA ns h 1 2 3 4 5\n@ NS ns\nns 7 A 198.18.0.1\nb A 198.18.0.2\n$TTL 9\nc A 198.18.0.3\n",
		"generate":        head + "$GENERATE 1-3 g$ 30 A 198.18.1.$\nh A 198.18.0.9\n",
		"generate, lower": head + "$generate 1-3 g$ 30 A 198.18.1.$\nh A 198.18.0.9\n",
	}
	addTreeZones(t, texts)
	for name, text := range texts {
		if ttlsFixed(t, text) && !fixesTTLs([]byte(text)) {
			t.Errorf("%s: fixTTLs changes a TTL, and the scan would not run", name)
		}
	}
	if !fixesTTLs([]byte(texts["generate, lower"])) || fixesTTLs([]byte(texts["ttl then none"])) {
		t.Error("fixesTTLs misreads the directives")
	}
}

func FuzzFixTTLsOnlyAroundDirectives(f *testing.F) {
	f.Add(head + "a 60 A 198.18.0.1\nb A 198.18.0.2\n$TTL 5\nc A 198.18.0.3\n")
	f.Add(head + "a ( 60\n IN A 198.18.0.1 )\n  TXT \"$x\"\n")
	f.Add("$ORIGIN example.\n@ 60 SOA ns h 1 2 3 4 5\nb A 198.18.0.2\n$TTL 9\nc 4 A 198.18.0.3\nd A 198.18.0.4\n")
	f.Fuzz(func(t *testing.T, text string) {
		if ttlsFixed(t, text) && !fixesTTLs([]byte(text)) {
			t.Fatalf("fixTTLs changes a TTL without $GENERATE or $INCLUDE:\n%s", text)
		}
	})
}

// addTreeZones adds every zone file of the tree's test data to texts, by
// path.
func addTreeZones(t *testing.T, texts map[string]string) {
	t.Helper()
	files, _ := filepath.Glob("../nsddiff/testdata/*.zone*")
	more, _ := filepath.Glob("testdata/*.zone")
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(b)
	}
}
