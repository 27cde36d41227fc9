package zone

import (
	"bytes"
	"net"
	"runtime"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// fastParse reads the zone file text of most large zones, hosts with an
// address each, without miekg/dns's ZoneParser: a line holding an A or
// AAAA record on its own (owner or blank, TTL and class as the grammar
// allows, one address, maybe a comment) becomes its record directly, and
// knows its line. Any other record, SOA and TXT and multi-line records
// included, goes through a ZoneParser of its own, started in the state the
// file is in at that line ($ORIGIN, default TTL, previous owner). The lexer
// allocated per token and the line scan beside it read every byte again: a
// third of loading a fleet of zones.
//
// ok is false when the text holds anything fastParse does not follow
// ($INCLUDE, $GENERATE, syntax it would have to judge, an error, or too
// many records of the slow kind); Parse then reads the file as before, so
// errors keep their wording. FuzzFastParse holds it to ZoneParser's records.
func fastParse(data []byte, file, origin string, defaultTTL uint32) (pr parsed, ok bool) {
	return fastParseIn(data, file, origin, defaultTTL, fastParts(len(data)), fastPrefixBytes)
}

// fastParts is how many parts fastParse reads a text of n bytes in.
func fastParts(n int) int {
	if procs := runtime.GOMAXPROCS(0); procs > 1 {
		return max(1, min(n/fastPartBytes, 4*procs))
	}
	return 1
}

// fastParseIn is fastParse in up to parts parts after a prefix of about
// prefix bytes (fastparts.go); in one piece when parts < 2.
func fastParseIn(data []byte, file, origin string, defaultTTL uint32, parts, prefix int) (pr parsed, ok bool) {
	p := fastParser{file: file, origin: origin}
	if defaultTTL != 0 {
		p.ttl, p.ttlSet = defaultTTL, true
	}
	if parts >= 2 {
		return p.parallel(data, parts, prefix)
	}
	var part fastPart
	part.addrs = make([]addrRR, 0, bytes.Count(data, []byte{'\n'})+1)
	if !p.scan(data, 0, len(data), 0, &part) {
		return parsed{}, false
	}
	return parsed{rrs: part.rrs, lines: part.lines, addrs: part.addrs}, true
}

// fastPart is what scan read of a range of the text, and where it ended.
type fastPart struct {
	rrs   []dns.RR
	lines []int32
	addrs []addrRR
	slow  int
	// end is the offset after the last line read (past to when a record
	// there goes on over several lines), line the number of lines before
	// it.
	end, line int
}

// scan reads the lines that begin in data[off:to] (the first one is line
// line+1) into part, from the state p is in, and leaves p in the state
// after them; false when it meets anything fastParse does not follow.
func (p *fastParser) scan(data []byte, off, to, line int, part *fastPart) bool {
	rrs, lines, addrs := part.rrs, part.lines, part.addrs
	slow := part.slow
	for off < to {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off
		}
		raw := data[off:end]
		start := off
		off = end + 1
		text := bytes.TrimSuffix(raw, []byte{'\r'})
		if i := bytes.IndexByte(text, ';'); i >= 0 && !bytes.ContainsAny(text[:i], "\"\\") {
			if len(text)-i > maxComment {
				return false // ZoneParser refuses long comments: its error, its words
			}
			text = text[:i] // a comment, not inside quotes or escaped
		}
		if bytes.ContainsAny(text, "()\"\\\r;") {
			// The grammar's harder parts: the record (maybe several
			// lines) goes to a ZoneParser of its own.
			n, rr, ok := p.slowRecord(data, start, line)
			if !ok {
				return false
			}
			rrs = append(rrs, rr)
			lines = append(lines, int32(line))
			for ; off < len(data) && n > 0; n-- { // the record's further lines
				if e := bytes.IndexByte(data[off:], '\n'); e >= 0 {
					off += e + 1
				} else {
					off = len(data)
				}
				line++
			}
			if slow++; tooSlow(slow, len(rrs)+len(addrs)) {
				return false
			}
			continue
		}
		var fb [8][]byte
		f := splitFields(fb[:0], text)
		if len(f) == 0 {
			continue
		}
		if text[0] == '$' {
			if !p.directive(f) {
				return false
			}
			continue
		}
		owner := p.owner
		rest := f
		if text[0] == ' ' || text[0] == '\t' {
			if owner == "" {
				return false // no record before to take the owner from
			}
		} else {
			if !sameName(owner, f[0], p.origin) { // the last owner again: no new string
				var ok bool
				if owner, ok = absoluteName(string(f[0]), p.origin); !ok {
					return false
				}
			}
			rest = f[1:]
		}
		hdr, rdata, kind := p.header(owner, rest)
		switch kind {
		case fastBad:
			return false
		case fastOther:
			n, rr, ok := p.slowRecord(data, start, line)
			if !ok || n != 0 {
				return false
			}
			rrs = append(rrs, rr)
			lines = append(lines, int32(line))
			if slow++; tooSlow(slow, len(rrs)+len(addrs)) {
				return false
			}
			continue
		}
		if len(rdata) != 1 {
			return false
		}
		a := addrRR{owner: owner, line: int32(line), ttl: hdr.Ttl, typ: hdr.Rrtype}
		if !a.setIP(rdata[0]) {
			return false
		}
		p.owner = owner
		addrs = append(addrs, a)
	}
	part.rrs, part.lines, part.addrs, part.slow = rrs, lines, addrs, slow
	part.end, part.line = off, line
	return true
}

// parsed is what fastParse read: address records in stored form, the
// others as ZoneParser made them.
type parsed struct {
	rrs   []dns.RR
	lines []int32 // rrs[i] begins on line lines[i]
	addrs []addrRR
}

// addrRR is an A or AAAA record of a line of its own.
type addrRR struct {
	owner string // absolute, as written
	line  int32
	ttl   uint32
	typ   uint16
	ip    [16]byte // an A's address in the first 4
}

// setIP reads the address as miekg/dns does (net.ParseIP, a colon for
// AAAA and none for A); false when it does not.
func (a *addrRR) setIP(tok []byte) bool {
	colon := bytes.IndexByte(tok, ':') >= 0
	if colon != (a.typ == dns.TypeAAAA) {
		return false
	}
	ip := net.ParseIP(string(tok))
	if ip == nil {
		return false
	}
	if a.typ == dns.TypeA {
		ip4 := ip.To4()
		if ip4 == nil {
			return false
		}
		copy(a.ip[:], ip4)
	} else {
		copy(a.ip[:], ip)
	}
	return true
}

// rdata is the record's rdata in wire form.
func (a *addrRR) rdata() []byte {
	if a.typ == dns.TypeA {
		return a.ip[:4]
	}
	return a.ip[:]
}

// rr is the record as ZoneParser makes it.
func (a *addrRR) rr() dns.RR {
	h := dns.RR_Header{Name: a.owner, Rrtype: a.typ, Class: dns.ClassINET, Ttl: a.ttl}
	ip := net.IP(slices.Clone(a.rdata()))
	if a.typ == dns.TypeA {
		return &dns.A{Hdr: h, A: ip}
	}
	return &dns.AAAA{Hdr: h, AAAA: ip}
}

// records is every record in file order, with its line.
func (pr *parsed) records() ([]dns.RR, []int32) {
	rrs := make([]dns.RR, 0, len(pr.rrs)+len(pr.addrs))
	lines := make([]int32, 0, cap(rrs))
	i, j := 0, 0
	for i < len(pr.rrs) || j < len(pr.addrs) {
		if j == len(pr.addrs) || i < len(pr.rrs) && pr.lines[i] < pr.addrs[j].line {
			rrs, lines = append(rrs, pr.rrs[i]), append(lines, pr.lines[i])
			i++
		} else {
			rrs, lines = append(rrs, pr.addrs[j].rr()), append(lines, pr.addrs[j].line)
			j++
		}
	}
	return rrs, lines
}

// newFast builds the zone from pr without a dns.RR per address record;
// false when New must (any error or warning: New words it, with lines).
func newFast(origin string, pr *parsed, opt Options) (*Zone, bool) {
	bl := newBuilder(origin, pr.rrs, len(pr.rrs)+len(pr.addrs), nil)
	for i, rr := range pr.rrs {
		if bl.add(i, rr) != nil {
			return nil, false
		}
	}
	for i := range pr.addrs {
		a := &pr.addrs[i]
		if !bl.addAddr(a.owner, a.typ, a.ttl, a.rdata()) {
			return nil, false
		}
	}
	z, warns, err := bl.finish(pr.rrs, opt)
	if err != nil || len(warns) > 0 {
		return nil, false
	}
	return z, true
}

// sameName reports whether field, read as a name relative to origin, is
// owner: absoluteName would make the same string.
func sameName(owner string, field []byte, origin string) bool {
	if owner == "" || origin == "" || len(field) == 0 || field[len(field)-1] == '.' || string(field) == "@" || origin == "." {
		return false
	}
	return len(owner) == len(field)+1+len(origin) && owner[len(field)] == '.' &&
		owner[:len(field)] == string(field) && owner[len(field)+1:] == origin
}

// tooSlow: more than a quarter of the records needed a ZoneParser each;
// not a zone of hosts, and ZoneParser alone reads it faster.
// maxComment is the longest comment fastParse reads itself; ZoneParser's
// lexer refuses one of 512 bytes or more ("comment length insufficient
// for parsing"), so longer ones go the slow way, which says so.
const maxComment = 255

func tooSlow(slow, all int) bool { return slow > 64 && slow > all/4 }

// fastParser is the state of the file at a line, as ZoneParser keeps it.
type fastParser struct {
	file, origin string
	owner        string // the last record's: a line starting blank has it
	ttl          uint32 // the default TTL, when ttlSet
	ttlSet       bool
	byDirective  bool // set by $TTL: explicit TTLs no longer change it
}

const (
	fastAddress = iota // an A or AAAA record: header and rdata fields
	fastOther          // another type: left to slowRecord
	fastBad            // anything fastParse does not follow
)

// header reads [ttl] [class] type, in either order, as ZoneParser's
// grammar does, and returns the rest of the fields.
func (p *fastParser) header(owner string, f [][]byte) (dns.RR_Header, [][]byte, int) {
	h := dns.RR_Header{Name: owner, Class: dns.ClassINET}
	ttl, explicit, class := uint32(0), false, false
	for i, t := range f {
		switch {
		case bytes.EqualFold(t, []byte("A")) || bytes.EqualFold(t, []byte("AAAA")):
			if !explicit {
				if !p.ttlSet {
					return h, nil, fastBad // "missing TTL with no previous value"
				}
				ttl = p.ttl
			} else if !p.byDirective {
				p.ttl, p.ttlSet = ttl, true
			}
			h.Ttl, h.Rrtype = ttl, dns.TypeA
			if len(t) == 4 {
				h.Rrtype = dns.TypeAAAA
			}
			return h, f[i+1:], fastAddress
		case bytes.EqualFold(t, []byte("IN")):
			if class {
				return h, nil, fastBad
			}
			class = true
		default:
			u := strings.ToUpper(string(t))
			if _, isType := dns.StringToType[u]; isType || strings.HasPrefix(u, "TYPE") {
				return h, nil, fastOther
			}
			if typeOrClass(t) {
				return h, nil, fastBad // a class other than IN
			}
			v, ok := stringToTTL(string(t))
			if !ok || explicit {
				return h, nil, fastBad
			}
			ttl, explicit = v, true
		}
	}
	return h, nil, fastBad
}

// directive follows $ORIGIN and $TTL; any other ends the fast path.
func (p *fastParser) directive(f [][]byte) bool {
	if len(f) != 2 || typeOrClass(f[1]) {
		return false // the lexer makes a type or class name no value
	}
	switch strings.ToUpper(string(f[0])) {
	case "$ORIGIN":
		o, ok := absoluteName(string(f[1]), p.origin)
		if !ok {
			return false
		}
		p.origin = o
		return true
	case "$TTL":
		t, ok := stringToTTL(string(f[1]))
		if !ok {
			return false
		}
		p.ttl, p.ttlSet, p.byDirective = t, true, true
		return true
	}
	return false
}

// slowRecord parses the record that starts at data[start:] (line line)
// with a ZoneParser set to the file's state there, and returns how many
// lines after the first it took. It takes lines up to the one that closes
// every parenthesis (outside quotes and comments), as the lexer does.
func (p *fastParser) slowRecord(data []byte, start, line int) (extra int, rr dns.RR, ok bool) {
	if !p.ttlSet {
		// Without a default TTL, ZoneParser's TTL depends on the path
		// through its grammar (some take none and keep the last record's)
		// and an explicit one cannot be told from the state after.
		return 0, nil, false
	}
	end, extra, ok := recordEnd(data, start)
	if !ok {
		return 0, nil, false
	}
	text := data[start:end]
	var b strings.Builder
	b.Grow(len(text) + len(p.origin) + len(p.owner) + 40)
	b.WriteString("$ORIGIN ")
	b.WriteString(p.origin)
	b.WriteByte('\n')
	if p.byDirective {
		b.WriteString("$TTL ")
		b.WriteString(uitoa(p.ttl))
		b.WriteByte('\n')
	}
	if len(text) > 0 && (text[0] == ' ' || text[0] == '\t') {
		if p.owner == "" {
			return 0, nil, false
		}
		b.WriteString(p.owner) // the blank owner is the previous record's
	} else if len(text) > 0 && text[0] == '$' {
		return 0, nil, false
	}
	b.Write(text)
	// A record with rdata missing takes tokens from the lines after it
	// (an SOA cut short reads on), so it is followed by a line that fails
	// any such record: it must end on its own line, as the file's next
	// record then finds it. At the end of the file nothing follows, and
	// no newline either: the lexer ends a last line without one
	// differently.
	sentinel := end < len(data)
	if sentinel {
		b.WriteString("\n" + sentinelRecord + "\n")
	}
	zp := dns.NewZoneParser(strings.NewReader(b.String()), p.origin, p.file)
	if p.ttlSet && !p.byDirective {
		zp.SetDefaultTTL(p.ttl)
	}
	rr, got := zp.Next()
	if !got || zp.Err() != nil {
		return 0, nil, false
	}
	if sentinel {
		if s, more := zp.Next(); !more || s.Header().Name != sentinelName || s.Header().Rrtype != 65534 {
			return 0, nil, false
		}
	}
	if _, more := zp.Next(); more || zp.Err() != nil {
		return 0, nil, false
	}
	// The state after it: an explicit TTL becomes the default unless $TTL
	// set one (a TTL equal to the default changes nothing either way).
	if !p.byDirective {
		p.ttl, p.ttlSet = rr.Header().Ttl, true
	}
	p.owner = rr.Header().Name
	return extra, rr, true
}

const (
	sentinelName   = "fastparse.sentinel.invalid."
	sentinelRecord = sentinelName + " 0 IN TYPE65534 \\# 0"
)

// recordEnd finds where the record starting at data[start:] ends: the end
// of the line on which its parentheses close (outside quotes, comments and
// escapes), and how many lines after the first that is.
func recordEnd(data []byte, start int) (end, extra int, ok bool) {
	parens, quote, comment := 0, false, false
	for i := start; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\n':
			comment = false
			if parens == 0 && !quote {
				return i, extra, true
			}
			extra++
		case comment:
		case c == '\\':
			i++
		case c == '"':
			quote = !quote
		case quote:
		case c == ';':
			comment = true
		case c == '(':
			parens++
		case c == ')':
			if parens == 0 {
				return 0, 0, false
			}
			parens--
		}
	}
	if parens != 0 || quote {
		return 0, 0, false
	}
	return len(data), extra, true
}

// typeOrClass reports whether the lexer reads t as a type or a class.
func typeOrClass(t []byte) bool {
	u := strings.ToUpper(string(t))
	_, isType := dns.StringToType[u]
	_, isClass := dns.StringToClass[u]
	return isType || isClass || strings.HasPrefix(u, "TYPE") || strings.HasPrefix(u, "CLASS")
}

// absoluteName is miekg/dns's toAbsoluteName for the names a fast line
// holds (no escapes).
func absoluteName(name, origin string) (string, bool) {
	if name == "@" {
		return origin, origin != ""
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return "", false
	}
	if dns.IsFqdn(name) {
		return name, true
	}
	if origin == "" {
		return "", false
	}
	if origin == "." {
		return name + origin, true
	}
	return name + "." + origin, true
}

// splitFields appends the blank-separated fields of l to dst.
func splitFields(dst [][]byte, l []byte) [][]byte {
	for i := 0; i < len(l); {
		for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
			i++
		}
		j := i
		for j < len(l) && l[j] != ' ' && l[j] != '\t' {
			j++
		}
		if j > i {
			dst = append(dst, l[i:j])
		}
		i = j
	}
	return dst
}

func uitoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
