package zone

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
// holds a token and is not a $ directive, following $INCLUDE.
func recordLines(data []byte, file string, allowInclude bool) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line, depth := 0, 0
	start := 0
	inQuote := false
	var logical strings.Builder
	for sc.Scan() {
		line++
		text := sc.Text()
		if depth == 0 && !inQuote {
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
				depth++
			case c == ')':
				if depth > 0 {
					depth--
				}
			}
			logical.WriteByte(c)
		}
		logical.WriteByte(' ')
		if depth > 0 || inQuote {
			continue
		}
		l := logical.String()
		t := strings.TrimSpace(l)
		switch {
		case t == "":
		case strings.HasPrefix(l, "$INCLUDE"):
			f := strings.Fields(t)
			if len(f) < 2 || !allowInclude {
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
			sub, err := recordLines(b, inc, allowInclude)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case strings.HasPrefix(t, "$"):
		default:
			out = append(out, fmt.Sprintf("%s:%d", file, start))
		}
	}
	return out, sc.Err()
}
