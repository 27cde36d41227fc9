package metrics

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Family is a metric family as parsed.
type Family struct {
	Name, Help string
	Type       Type
	Samples    []Sample
}

// Sample is one sample line.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Scrape is a parsed page, its families in page order.
type Scrape []Family

// Parse reads a page of the text format strictly, as Writer writes it (for
// tests and tools): every family has a HELP line, then a TYPE line
// (counter or gauge), then at least one sample, all together; names are
// valid and not repeated, counters end in _total and are not negative;
// label values use only the escapes \\, \" and \n; no series is repeated;
// no timestamps, blank lines or other comments; the page ends with a
// newline. The error names the line.
func Parse(r io.Reader) (Scrape, error) {
	br := bufio.NewReader(r)
	var out Scrape
	seen := map[string]bool{}  // family names
	series := map[string]int{} // name{labels} -> line
	var cur *Family
	wantType := false // a HELP line was read, its TYPE must follow
	ln := 0
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			if line != "" {
				return nil, fmt.Errorf("line %d: no newline at the end of the page", ln+1)
			}
			break
		}
		if err != nil {
			return nil, err
		}
		ln++
		line = strings.TrimSuffix(line, "\n")
		fail := func(format string, args ...any) (Scrape, error) {
			return nil, fmt.Errorf("line %d: %s: %q", ln, fmt.Sprintf(format, args...), line)
		}
		switch {
		case strings.HasPrefix(line, "# HELP "):
			if cur != nil && len(cur.Samples) == 0 {
				return fail("family %s has no samples", cur.Name)
			}
			name, help, _ := strings.Cut(line[len("# HELP "):], " ")
			if !ValidMetricName(name) {
				return fail("invalid metric name")
			}
			if seen[name] {
				return fail("family %s again", name)
			}
			text, ok := unescape(help, false)
			if !ok {
				return fail("bad escape in HELP")
			}
			seen[name] = true
			out = append(out, Family{Name: name, Help: text})
			cur = &out[len(out)-1]
			wantType = true
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(line[len("# TYPE "):], " ")
			if !wantType || cur == nil || name != cur.Name {
				return fail("TYPE not right after the HELP of its family")
			}
			switch Type(typ) {
			case Counter:
				if !strings.HasSuffix(name, "_total") {
					return fail("counter not named *_total")
				}
			case Gauge:
			default:
				return fail("type %q is not counter or gauge", typ)
			}
			cur.Type = Type(typ)
			wantType = false
		case line == "" || strings.HasPrefix(line, "#"):
			return fail("blank line or comment")
		default:
			if cur == nil || wantType {
				return fail("sample before its family's HELP and TYPE")
			}
			s, key, err := parseSample(line)
			if err != nil {
				return fail("%v", err)
			}
			if s.Name != cur.Name {
				return fail("sample of %s in family %s", s.Name, cur.Name)
			}
			if cur.Type == Counter && !(s.Value >= 0) {
				return fail("counter is negative or NaN")
			}
			if first, dup := series[key]; dup {
				return fail("series repeated (first at line %d)", first)
			}
			series[key] = ln
			cur.Samples = append(cur.Samples, s)
		}
	}
	if wantType {
		return nil, fmt.Errorf("line %d: HELP without TYPE at the end", ln)
	}
	if cur != nil && len(cur.Samples) == 0 {
		return nil, fmt.Errorf("line %d: family %s has no samples", ln, cur.Name)
	}
	return out, nil
}

// parseSample reads `name{l="v",...} value`; key identifies the series.
func parseSample(line string) (s Sample, key string, err error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, "", fmt.Errorf("no value")
	}
	s.Name = line[:i]
	if !ValidMetricName(s.Name) {
		return s, "", fmt.Errorf("invalid metric name")
	}
	s.Labels = map[string]string{}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			if len(s.Labels) > 0 {
				if !strings.HasPrefix(rest, ",") {
					return s, "", fmt.Errorf("labels not separated by a comma")
				}
				rest = rest[1:]
			}
			name, after, ok := strings.Cut(rest, "=\"")
			if !ok || !ValidLabelName(name) {
				return s, "", fmt.Errorf("bad label name")
			}
			if _, dup := s.Labels[name]; dup {
				return s, "", fmt.Errorf("label %s repeated", name)
			}
			end := closingQuote(after)
			if end < 0 {
				return s, "", fmt.Errorf("label %s: value not closed", name)
			}
			v, ok := unescape(after[:end], true)
			if !ok {
				return s, "", fmt.Errorf("label %s: bad escape", name)
			}
			s.Labels[name] = v
			rest = after[end+1:]
		}
	}
	v, ok := strings.CutPrefix(rest, " ")
	if !ok || v == "" || strings.ContainsAny(v, " \t") {
		return s, "", fmt.Errorf("want one space and a value (no timestamp)")
	}
	switch v {
	case "NaN":
		s.Value = math.NaN()
	case "+Inf":
		s.Value = math.Inf(1)
	case "-Inf":
		s.Value = math.Inf(-1)
	default:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || strings.ContainsAny(v, "_xXpP") || strings.EqualFold(v, "inf") || strings.EqualFold(v, "infinity") || strings.EqualFold(v, "nan") {
			return s, "", fmt.Errorf("bad value %q", v)
		}
		s.Value = f
	}
	return s, seriesKey(s.Name, s.Labels), nil
}

// closingQuote returns the index of the first unescaped " in s, or -1.
func closingQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unescape undoes appendEscaped; ok is false for any other escape, and
// for a bare " in a label value or a raw newline.
func unescape(s string, quote bool) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' && quote || c == '\n' {
			return "", false
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", false
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !quote {
				return "", false
			}
			b.WriteByte('"')
		default:
			return "", false
		}
	}
	return b.String(), true
}

func seriesKey(name string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString("\x00" + k + "\x00" + labels[k])
	}
	return b.String()
}

// Family returns the family with this name, or nil.
func (sc Scrape) Family(name string) *Family {
	for i := range sc {
		if sc[i].Name == name {
			return &sc[i]
		}
	}
	return nil
}

// Get returns the value of the sample of name with exactly these labels
// (name, value pairs).
func (sc Scrape) Get(name string, labels ...string) (float64, bool) {
	f := sc.Family(name)
	if f == nil {
		return 0, false
	}
	for _, s := range f.Samples {
		if len(s.Labels)*2 == len(labels) && s.has(labels) {
			return s.Value, true
		}
	}
	return 0, false
}

// Sum adds the samples of name that have these labels (and any others).
func (sc Scrape) Sum(name string, labels ...string) float64 {
	f := sc.Family(name)
	if f == nil {
		return 0
	}
	sum := 0.0
	for _, s := range f.Samples {
		if s.has(labels) {
			sum += s.Value
		}
	}
	return sum
}

func (s Sample) has(labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if v, ok := s.Labels[labels[i]]; !ok || v != labels[i+1] {
			return false
		}
	}
	return true
}
