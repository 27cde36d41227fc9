package zone

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/miekg/dns"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// AllowInclude permits $INCLUDE (off by default: a zone file handed over
	// by a customer must not read arbitrary files of the server).
	AllowInclude bool
	// DefaultTTL applies to records before any $TTL or explicit TTL.
	DefaultTTL uint32
	Options
}

// Load reads an RFC 1035 zone file. Errors name file:line.
func Load(path, origin string, opt LoadOptions) (*Zone, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return parseText(data, path, origin, opt)
}

// Parse reads zone-file text; file names the source in errors.
func Parse(r io.Reader, file, origin string, opt LoadOptions) (*Zone, []Warning, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	return parseText(data, file, origin, opt)
}

// parseText is Parse on text already read (Load: no second copy of a large
// file grown by io.ReadAll).
func parseText(data []byte, file, origin string, opt LoadOptions) (*Zone, []Warning, error) {
	origin = dns.Fqdn(origin)
	// ZoneParser does not say on which line a record began; scanRecords
	// scans the same text so semantic errors can name file:line, and TTLs
	// can follow BIND where ZoneParser does not (fixTTLs).
	// The TTLs differ only around $GENERATE and $INCLUDE: without them the
	// scan runs only when an error or warning needs a line (a third of
	// the CPU of loading a fleet of small zones went to it). With them it
	// runs beside the parser (both only read data).
	var recs []scannedRecord
	scanned := make(chan error, 1)
	eager := fixesTTLs(data)
	if !eager && !noFastParse {
		if pr, ok := fastParse(data, file, origin, opt.DefaultTTL); ok {
			if z, ok := newFast(origin, &pr, opt.Options); ok {
				return z, nil, nil
			}
			rrs, lines := pr.records()
			return newParsed(origin, rrs, opt, func(i int) string {
				if i >= 0 && i < len(lines) {
					return fmt.Sprintf("%s:%d", file, lines[i])
				}
				return file
			})
		}
	}
	if eager {
		go func() {
			var err error
			recs, err = scanRecords(data, file, opt.AllowInclude, opt.DefaultTTL)
			scanned <- err
		}()
	} else {
		scanned <- nil
	}
	zp := dns.NewZoneParser(bytes.NewReader(data), origin, file)
	zp.SetIncludeAllowed(opt.AllowInclude)
	if opt.DefaultTTL != 0 {
		zp.SetDefaultTTL(opt.DefaultTTL)
	}
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	serr := <-scanned
	if serr != nil {
		return nil, nil, serr
	}
	if err := zp.Err(); err != nil {
		if !opt.AllowInclude && strings.Contains(err.Error(), "$INCLUDE") {
			return nil, nil, fmt.Errorf("%w (allow-include is off in the config)", err)
		}
		return nil, nil, err
	}
	var lines []scannedRecord
	if eager && len(recs) == len(rrs) {
		lines = recs
		if err := fixTTLs(rrs, recs); err != nil {
			return nil, nil, err
		}
	}
	// Otherwise the scan and the parser disagree on what makes a record
	// (some syntax the scan does not know): errors name only the file
	// rather than a wrong line, and TTLs stay as ZoneParser read them.
	var once sync.Once
	pos := func(i int) string {
		once.Do(func() {
			if !eager {
				if r, err := scanRecords(data, file, opt.AllowInclude, opt.DefaultTTL); err == nil && len(r) == len(rrs) {
					lines = r
				}
			}
		})
		if i >= 0 && i < len(lines) {
			return lines[i].pos()
		}
		return file
	}
	return newParsed(origin, rrs, opt, pos)
}

// noFastParse turns fastParse off, for tests comparing the two paths.
var noFastParse = false

func newParsed(origin string, rrs []dns.RR, opt LoadOptions, pos func(int) string) (*Zone, []Warning, error) {
	z, warns, err := New(origin, rrs, opt.Options, pos)
	if err == ErrNoSOA {
		err = fmt.Errorf("%s: %w %s", pos(-1), err, origin)
	}
	return z, warns, err
}

// fixesTTLs reports whether data holds a $GENERATE or $INCLUDE directive
// (any case): only around those does fixTTLs change a TTL ZoneParser read.
// A false positive (the word in a comment or a TXT) costs only the scan.
func fixesTTLs(data []byte) bool {
	for i := 0; ; i++ {
		j := bytes.IndexByte(data[i:], '$')
		if j < 0 {
			return false
		}
		i += j
		rest := data[i+1:]
		for _, d := range []string{"GENERATE", "INCLUDE"} {
			if len(rest) >= len(d) && bytes.EqualFold(rest[:len(d)], []byte(d)) {
				return true
			}
		}
	}
}

// recordLines returns "file:line" for each record the file yields, in the
// order ZoneParser returns them: every logical line (parentheses joined) that
// holds a token and is not a directive, following $INCLUDE; a $GENERATE line
// stands for each of the records it expands to.
func recordLines(data []byte, file string, allowInclude bool) ([]string, error) {
	recs, err := scanRecords(data, file, allowInclude, 0)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.pos()
	}
	return out, nil
}

// scannedRecord is what the line scan knows of one record.
type scannedRecord struct {
	// Where it begins. Kept as file and number, made "file:line" only
	// when asked: a string per record was 2M Sprintf calls in a 1M-name
	// zone, for the few that an error names.
	file string
	line int
	// ttl is the record's own TTL (explicit) or else the default TTL in
	// effect at its line (known: a $TTL or an earlier explicit TTL, or
	// LoadOptions.DefaultTTL).
	ttl                      uint32
	explicit, known, unknown bool // unknown: the scan cannot tell
	generated                bool // from a $GENERATE line
}

func (r *scannedRecord) pos() string { return fmt.Sprintf("%s:%d", r.file, r.line) }

// ttlState is the default TTL for records without one, as BIND keeps it
// (named-checkzone 9.18): $TTL sets it; before any $TTL every explicit TTL
// sets it ("RFC1035 TTL semantics"), a $GENERATE line's TTL too; it carries
// on after an $INCLUDE returns (NSD does the same). ZoneParser agrees, except
// that it restarts $GENERATE records at 3600 and drops what an included file
// set (see fixTTLs).
type ttlState struct {
	ttl         uint32
	known       bool // a default TTL is in effect
	byDirective bool // set by $TTL: explicit TTLs no longer change it
	unknown     bool // the scan lost track (a line it cannot read)
}

// record notes that a record line has the TTL fields fields (what follows the
// owner name: [ttl] [class] type ...) and updates the state.
func (st *ttlState) record(fields []string, generate bool) scannedRecord {
	ttl, explicit, ok := recordTTL(fields, generate)
	if !ok {
		if !st.byDirective {
			st.unknown = true // the line may have set it
		}
		return scannedRecord{unknown: true}
	}
	if explicit {
		if !st.byDirective {
			st.ttl, st.known, st.unknown = ttl, true, false
		}
		return scannedRecord{ttl: ttl, explicit: true}
	}
	return scannedRecord{ttl: st.ttl, known: st.known, unknown: st.unknown}
}

// recordTTL reads the fields between owner and type as ZoneParser does: a
// known type ends them, a class is skipped, anything else is a TTL (at most
// two fields). ok is false if the fields are not that (ZoneParser then fails,
// or reads something the scan does not know), or, in a $GENERATE line, hold
// a '$' the expansion would replace.
func recordTTL(fields []string, generate bool) (ttl uint32, explicit, ok bool) {
	for i, f := range fields {
		if i > 2 || (generate && strings.ContainsRune(f, '$')) {
			return 0, false, false
		}
		u := strings.ToUpper(f)
		if _, isType := dns.StringToType[u]; isType || strings.HasPrefix(u, "TYPE") {
			return ttl, explicit, true
		}
		if _, isClass := dns.StringToClass[u]; isClass || strings.HasPrefix(u, "CLASS") {
			continue
		}
		t, isTTL := stringToTTL(f)
		if !isTTL || explicit {
			return 0, false, false
		}
		ttl, explicit = t, true
	}
	return 0, false, false
}

// stringToTTL is miekg/dns's TTL syntax (scan.go): seconds, or a sum of
// numbers with units s, m, h, d, w.
func stringToTTL(token string) (uint32, bool) {
	var s, i uint64
	for _, c := range token {
		switch c {
		case 's', 'S':
			s, i = s+i, 0
		case 'm', 'M':
			s, i = s+i*60, 0
		case 'h', 'H':
			s, i = s+i*60*60, 0
		case 'd', 'D':
			s, i = s+i*60*60*24, 0
		case 'w', 'W':
			s, i = s+i*60*60*24*7, 0
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			i = i*10 + uint64(c-'0')
		default:
			return 0, false
		}
		if s > math.MaxUint32 || i > math.MaxUint32 {
			return 0, false
		}
	}
	if s+i > math.MaxUint32 {
		return 0, false
	}
	return uint32(s + i), true
}

// scanRecords scans the file for its records (see recordLines) and the TTL
// each has or gets by default; defaultTTL is LoadOptions.DefaultTTL.
func scanRecords(data []byte, file string, allowInclude bool, defaultTTL uint32) ([]scannedRecord, error) {
	st := ttlState{ttl: defaultTTL, known: defaultTTL != 0}
	return scanLines(nil, &st, data, file, allowInclude, 0)
}

// maxIncludeDepth is the $INCLUDE nesting ZoneParser accepts (miekg/dns
// scan.go); deeper, it fails the parse, so the scan need not go further (and
// must not recurse forever on a file that includes itself).
const maxIncludeDepth = 7

func scanLines(out []scannedRecord, st *ttlState, data []byte, file string, allowInclude bool, depth int) ([]scannedRecord, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line, parens := 0, 0
	start := 0
	inQuote := false
	// ownerSeen: the first character that counts (not a parenthesis, CR or
	// comment) was seen; hasOwner: it was not a blank, so the line's first
	// token is its owner name (the lexer's rule).
	ownerSeen, hasOwner := false, false
	// One buffer for every logical line, and its first fields as views
	// of it (fieldsOf): nothing here outlives the line, and a copy per
	// line was most of this scan's garbage on big zones.
	var logical []byte
	var fbuf [maxScanFields]string
	for sc.Scan() {
		line++
		text := sc.Text()
		if parens == 0 && !inQuote {
			start = line
			logical = logical[:0]
			ownerSeen, hasOwner = false, false
		}
		for i := 0; i < len(text); i++ {
			c := text[i]
			if !ownerSeen && c != '(' && c != ')' && c != ';' && c != '\r' {
				ownerSeen, hasOwner = true, c != ' ' && c != '\t'
			}
			switch {
			case c == '\\':
				logical = append(logical, c)
				if i+1 < len(text) {
					i++
					logical = append(logical, text[i])
				}
				continue
			case c == '"':
				inQuote = !inQuote
			case inQuote:
			case c == ';':
				i = len(text)
				continue
			case c == '(':
				parens++
				c = ' '
			case c == ')':
				if parens > 0 {
					parens--
				}
				c = ' '
			}
			logical = append(logical, c)
		}
		logical = append(logical, ' ')
		if parens > 0 || inQuote {
			continue
		}
		l := unsafe.String(unsafe.SliceData(logical), len(logical))
		f := fieldsOf(fbuf[:0], l)
		if len(f) == 0 {
			continue
		}
		// The lexer takes a directive only as the line's first token, in
		// column one, in any case; anything else is an owner name.
		dir := ""
		if l[0] == '$' {
			dir = strings.ToUpper(f[0])
		}
		switch dir {
		case "$ORIGIN":
		case "$TTL":
			if len(f) > 1 {
				if t, ok := stringToTTL(f[1]); ok {
					*st = ttlState{ttl: t, known: true, byDirective: true}
					continue
				}
			}
			st.unknown = true // ZoneParser reports it
		case "$INCLUDE":
			if len(f) < 2 || !allowInclude || depth >= maxIncludeDepth {
				continue // ZoneParser reports it
			}
			inc := f[1]
			if !filepath.IsAbs(inc) {
				inc = filepath.Join(filepath.Dir(file), inc)
			}
			b, err := os.ReadFile(inc)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: $INCLUDE: %w", file, start, err)
			}
			if out, err = scanLines(out, st, b, inc, allowInclude, depth+1); err != nil {
				return nil, err
			}
		case "$GENERATE":
			if len(f) > 1 {
				n := generateCount(f[1])
				if n == 0 {
					continue
				}
				var rec scannedRecord
				if len(f) > 3 {
					rec = st.record(f[3:], true) // after range and lhs
				} else {
					rec = st.record(nil, true)
				}
				rec.file, rec.line, rec.generated = file, start, true
				for ; n > 0; n-- {
					out = append(out, rec)
				}
			}
		default:
			fields := f
			if hasOwner {
				fields = f[1:] // after the owner
			}
			rec := st.record(fields, false)
			rec.file, rec.line = file, start
			out = append(out, rec)
		}
	}
	return out, sc.Err()
}

// maxScanFields is how many fields of a line the scan reads: a directive
// and its argument, or an owner, a TTL, a class and the type, or the four
// fields of a $GENERATE before its record's TTL, class and type.
const maxScanFields = 8

// fieldsOf appends to dst the first maxScanFields space-separated fields
// of l, as strings.Fields would split it (blanks are all the scan leaves).
func fieldsOf(dst []string, l string) []string {
	for i := 0; i < len(l) && len(dst) < maxScanFields; {
		for i < len(l) && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r') {
			i++
		}
		j := i
		for j < len(l) && l[j] != ' ' && l[j] != '\t' && l[j] != '\r' {
			j++
		}
		if j > i {
			dst = append(dst, l[i:j])
		}
		i = j
	}
	return dst
}

// fixTTLs gives records without a TTL of their own the default TTL BIND
// gives them where ZoneParser does not: $GENERATE records (ZoneParser's
// $GENERATE starts over at 3600, not at the $TTL or the last TTL), records
// after a $GENERATE line with a TTL (before any $TTL, it is the new default)
// and records after an $INCLUDE that set the default (ZoneParser forgets it
// when the included file ends). Explicit TTLs are never changed. A $GENERATE
// without a TTL where none is in effect is an error, as for any other record
// (BIND: "no TTL specified"). recs must be the scan of the text rrs came from,
// record for record; if an explicit TTL the scan read is not the record's,
// scan and parser disagree and nothing is changed.
func fixTTLs(rrs []dns.RR, recs []scannedRecord) error {
	if len(recs) != len(rrs) {
		return nil
	}
	for i, rec := range recs {
		if rec.explicit && rrs[i].Header().Ttl != rec.ttl {
			return nil
		}
	}
	for i, rec := range recs {
		switch {
		case rec.explicit || rec.unknown:
		case rec.known:
			rrs[i].Header().Ttl = rec.ttl
		case rec.generated:
			return fmt.Errorf("%s: $GENERATE without a TTL and no $TTL or earlier TTL in effect", rec.pos())
		}
	}
	return nil
}

// generateCount is how many records a $GENERATE range (start-stop[/step])
// yields, as ZoneParser reads it (miekg/dns generate.go); 0 when ZoneParser
// would reject it.
func generateCount(r string) int {
	step := int64(1)
	if i := strings.IndexByte(r, '/'); i >= 0 {
		s, err := strconv.ParseInt(r[i+1:], 10, 64)
		if err != nil || s <= 0 {
			return 0
		}
		step, r = s, r[:i]
	}
	a, b, ok := strings.Cut(r, "-")
	if !ok {
		return 0
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start || (end-start)/step > 65535 {
		return 0
	}
	return int((end-start)/step + 1)
}
