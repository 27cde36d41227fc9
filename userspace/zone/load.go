package zone

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	return Parse(bytes.NewReader(data), path, origin, opt)
}

// Parse reads zone-file text; file names the source in errors.
func Parse(r io.Reader, file, origin string, opt LoadOptions) (*Zone, []Warning, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	origin = dns.Fqdn(origin)
	// ZoneParser does not say on which line a record began; recordLines
	// scans the same text so semantic errors can name file:line.
	lines, err := recordLines(data, file, opt.AllowInclude)
	if err != nil {
		return nil, nil, err
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
	if err := zp.Err(); err != nil {
		if !opt.AllowInclude && strings.Contains(err.Error(), "$INCLUDE") {
			return nil, nil, fmt.Errorf("%w (allow-include is off in the config)", err)
		}
		return nil, nil, err
	}
	if len(lines) != len(rrs) {
		// The scan and the parser disagree on what makes a record (some
		// syntax the scan does not know): name only the file rather than
		// a wrong line.
		lines = nil
	}
	pos := func(i int) string {
		if i >= 0 && i < len(lines) {
			return lines[i]
		}
		return file
	}
	z, warns, err := New(origin, rrs, opt.Options, pos)
	if err == ErrNoSOA {
		err = fmt.Errorf("%s: %w %s", file, err, origin)
	}
	return z, warns, err
}

// recordLines returns "file:line" for each record the file yields, in the
// order ZoneParser returns them: every logical line (parentheses joined) that
// holds a token and is not a directive, following $INCLUDE; a $GENERATE line
// stands for each of the records it expands to.
func recordLines(data []byte, file string, allowInclude bool) ([]string, error) {
	return scanLines(nil, data, file, allowInclude, 0)
}

// maxIncludeDepth is the $INCLUDE nesting ZoneParser accepts (miekg/dns
// scan.go); deeper, it fails the parse, so the scan need not go further (and
// must not recurse forever on a file that includes itself).
const maxIncludeDepth = 7

func scanLines(out []string, data []byte, file string, allowInclude bool, depth int) ([]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line, parens := 0, 0
	start := 0
	inQuote := false
	var logical strings.Builder
	for sc.Scan() {
		line++
		text := sc.Text()
		if parens == 0 && !inQuote {
			start = line
			logical.Reset()
		}
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c == '\\':
				logical.WriteByte(c)
				if i+1 < len(text) {
					i++
					logical.WriteByte(text[i])
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
			logical.WriteByte(c)
		}
		logical.WriteByte(' ')
		if parens > 0 || inQuote {
			continue
		}
		l := logical.String()
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		here := fmt.Sprintf("%s:%d", file, start)
		// The lexer takes a directive only as the line's first token, in
		// column one, in any case; anything else is an owner name.
		dir := ""
		if l[0] == '$' {
			dir = strings.ToUpper(f[0])
		}
		switch dir {
		case "$TTL", "$ORIGIN":
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
				return nil, fmt.Errorf("%s: $INCLUDE: %w", here, err)
			}
			if out, err = scanLines(out, b, inc, allowInclude, depth+1); err != nil {
				return nil, err
			}
		case "$GENERATE":
			if len(f) > 1 {
				for n := generateCount(f[1]); n > 0; n-- {
					out = append(out, here)
				}
			}
		default:
			out = append(out, here)
		}
	}
	return out, sc.Err()
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
