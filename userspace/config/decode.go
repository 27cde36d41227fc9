package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree and collects every problem it finds. Value
// helpers leave their destination untouched on error, so decoding carries on
// with defaults and reports the rest of the file too.
type decoder struct {
	file string
	base string // directory relative paths are resolved against
	errs Errors

	// keyNames is every key name the keys section defines (valid or not),
	// keyRefs every use of one; finish reports the undefined ones.
	keyNames map[string]bool
	keyRefs  []keyRef
	// tlsNames and tlsRefs do the same for tls blocks.
	tlsNames map[string]bool
	tlsRefs  []tlsRef
	// later holds checks that need the whole file (e.g. a zone's timers
	// against the xfr section, which may come after it).
	later []func(cfg *Config)
	// runtimeZonesSet: xfr.runtime-zones was given (even empty: off).
	runtimeZonesSet bool
}

// keyRef is one place a key is named.
type keyRef struct {
	name string // canonical
	path string
	line int
}

// path resolves a path from the file against the configuration's directory.
func (d *decoder) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.base, p)
}

// finish runs the checks that need the whole file.
func (d *decoder) finish(cfg *Config) {
	for _, f := range d.later {
		f(cfg)
	}
	d.tlsRefCheck(cfg)
	for _, r := range d.keyRefs {
		if !d.keyNames[r.name] {
			d.errorf(r.line, "%s: key %s is not defined in keys", r.path, r.name)
		}
	}
}

func (d *decoder) errorf(line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// yamlLine matches the position yaml.v3 puts in syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) syntax(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errorf(line, "%s", m[2])
		return
	}
	d.errorf(0, "%s", strings.TrimPrefix(msg, "yaml: "))
}

// decode parses data as exactly one YAML document into cfg.
func (d *decoder) decode(data []byte, cfg *Config) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntax(err)
		}
		return // an empty file is the default configuration
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.errorf(extra.Line, "only one YAML document is allowed")
	case !errors.Is(err, io.EOF):
		d.syntax(err)
	}
	if len(doc.Content) == 0 {
		return
	}
	d.root(doc.Content[0], cfg)
}

// field is one key of a mapping and what to do with its value.
type field struct {
	key string
	set func(v *yaml.Node)
}

// resolve follows an alias (*anchor) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// mapping decodes a mapping node by the table of fields. Unknown and
// duplicate keys are errors; a null value (a key with nothing after it)
// counts as an empty mapping, so every field keeps its default.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	what := path
	if what == "" {
		what = "the top level"
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, "%s: must be a mapping of keys, got %s", what, kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, "%s: keys must be plain words, got %s", what, kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, "%s: duplicate key %q (first at line %d)", what, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		f := lookupField(fields, k.Value)
		if f == nil {
			d.errorf(k.Line, "%s", unknownKey(path, k.Value, fields))
			continue
		}
		f.set(v)
	}
}

func lookupField(fields []field, key string) *field {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

func unknownKey(path, key string, fields []field) string {
	keys := make([]string, len(fields))
	// Suggest only close misspellings: two edits, three for longer keys
	// ("primary" for "primaries").
	best, bestDist := "", 3+len(key)/6
	for i, f := range fields {
		keys[i] = f.key
		if dist := editDistance(key, f.key); dist < bestDist {
			best, bestDist = f.key, dist
		}
	}
	where := "at the top level"
	if path != "" {
		where = "in " + path
	}
	msg := fmt.Sprintf("unknown key %q %s", key, where)
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg + "; valid keys: " + strings.Join(keys, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar returns n as a scalar node, or reports that it is not one.
func (d *decoder) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, "%s: must be %s, got %s", path, want, kindName(n))
		return nil, false
	}
	return n, true
}

// str decodes any scalar as text; null is the empty string. maxLen bounds the
// length in bytes (0: unbounded).
func (d *decoder) str(n *yaml.Node, path string, maxLen int, dst *string) {
	n, ok := d.scalar(n, path, "a string")
	if !ok {
		return
	}
	if isNull(n) {
		*dst = ""
		return
	}
	if maxLen > 0 && len(n.Value) > maxLen {
		d.errorf(n.Line, "%s: at most %d bytes, got %d", path, maxLen, len(n.Value))
		return
	}
	*dst = n.Value
}

// oneOf decodes a scalar that must be one of choices.
func (d *decoder) oneOf(n *yaml.Node, path string, choices []string, dst *string) {
	n, ok := d.scalar(n, path, "one of "+strings.Join(choices, "|"))
	if !ok {
		return
	}
	for _, c := range choices {
		if n.Value == c {
			*dst = c
			return
		}
	}
	d.errorf(n.Line, "%s: must be one of %s, got %q", path, strings.Join(choices, "|"), n.Value)
}

func (d *decoder) boolean(n *yaml.Node, path string, dst *bool) {
	n, ok := d.scalar(n, path, "true or false")
	if !ok {
		return
	}
	var b bool
	if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		d.errorf(n.Line, "%s: must be true or false, got %q", path, n.Value)
		return
	}
	*dst = b
}

// intIn decodes an integer in [lo, hi].
func intIn[T ~int | ~uint16 | ~uint32 | ~int64](d *decoder, n *yaml.Node, path string, lo, hi int64, dst *T) {
	n, ok := d.scalar(n, path, "an integer")
	if !ok {
		return
	}
	var v int64
	if n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		d.errorf(n.Line, "%s: must be an integer, got %q", path, n.Value)
		return
	}
	if v < lo || v > hi {
		d.errorf(n.Line, "%s: must be between %d and %d, got %d", path, lo, hi, v)
		return
	}
	*dst = T(v)
}

// duration decodes a Go duration with a unit ("10s", "1m30s") in [lo, hi].
func (d *decoder) duration(n *yaml.Node, path string, lo, hi time.Duration, dst *time.Duration) {
	n, ok := d.scalar(n, path, "a duration")
	if !ok {
		return
	}
	if n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
		d.errorf(n.Line, "%s: duration %q needs a unit, e.g. %ss", path, n.Value, n.Value)
		return
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n.Line, "%s: bad duration %q: want a number and a unit (ms, s, m, h), e.g. 10s", path, n.Value)
		return
	}
	if v < lo || v > hi {
		d.errorf(n.Line, "%s: must be between %s and %s, got %s", path, lo, hi, v)
		return
	}
	*dst = v
}

// list calls item for each element of a sequence. A lone scalar counts as a
// one-element list when scalarOK is set. It reports whether n was a list.
func (d *decoder) list(n *yaml.Node, path string, scalarOK bool, item func(i int, v *yaml.Node)) bool {
	n = resolve(n)
	switch {
	case n.Kind == yaml.SequenceNode:
		for i, v := range n.Content {
			item(i, v)
		}
		return true
	case scalarOK && n.Kind == yaml.ScalarNode && !isNull(n):
		item(0, n)
		return true
	}
	d.errorf(n.Line, "%s: must be a list, got %s", path, kindName(n))
	return false
}

// float decodes a number in [lo, hi) ("0.1", "0").
func (d *decoder) float(n *yaml.Node, path string, lo, hi float64, dst *float64) {
	n, ok := d.scalar(n, path, "a number")
	if !ok {
		return
	}
	var v float64
	if (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&v) != nil || math.IsNaN(v) {
		d.errorf(n.Line, "%s: must be a number, got %q", path, n.Value)
		return
	}
	if v < lo || v >= hi {
		d.errorf(n.Line, "%s: must be at least %v and below %v, got %v", path, lo, hi, v)
		return
	}
	*dst = v
}
