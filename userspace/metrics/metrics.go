// Package metrics writes the Prometheus text exposition format (version
// 0.0.4) and serves it over HTTP, without any dependency beyond the
// standard library.
//
// A Registry holds collect functions; each scrape calls them in the order
// they were registered, with a Writer. A collect function reads what the
// program already keeps (atomic counters, status structs) at scrape time:
// nothing is counted on its behalf.
//
//	reg.Register(func(w *metrics.Writer) {
//		w.Family("xdpns_udp_queries_total", metrics.Counter, "UDP queries read.")
//		w.Uint("xdpns_udp_queries_total", stats.UDPQueries.Load())
//		w.Family("xdpns_zone_serial", metrics.Gauge, "Serial served.")
//		for _, z := range zones {
//			w.Uint("xdpns_zone_serial", uint64(z.Serial), "zone", z.Name)
//		}
//	})
//
// The Writer checks what the format requires and reports the first
// violation from Err (the sample is dropped): valid metric and label
// names, a family declared once and before its samples, its samples
// together, counters named *_total, labels given as name/value pairs and
// not repeated. A family whose samples never come is not written.
package metrics

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Type is the TYPE of a metric family.
type Type string

const (
	// Counter only goes up (from 0 at start); its name ends in _total.
	Counter Type = "counter"
	// Gauge goes up and down.
	Gauge Type = "gauge"
)

// ContentType is what /metrics is served as.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Writer writes families and their samples in the text format.
type Writer struct {
	w   *bufio.Writer
	err error

	// The family being written: its samples may follow; header is
	// written with the first one.
	name, help string
	typ        Type
	header     bool
	// done holds every family declared, which may not be declared again.
	done map[string]bool
	buf  []byte
}

// NewWriter returns a Writer to w; Flush writes out what is buffered.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 32<<10), done: map[string]bool{}}
}

// Err returns the first error: a misuse of the format (the sample or
// family was not written) or a write error.
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("metrics: "+format, args...)
	}
}

// Flush writes out the buffer and returns Err.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Family declares the metric family whose samples follow: its name, its
// type and a one-line help text. A family is declared once per scrape;
// its HELP and TYPE lines are written with its first sample.
func (w *Writer) Family(name string, typ Type, help string) {
	switch {
	case !ValidMetricName(name):
		w.fail("invalid metric name %q", name)
		return
	case typ != Counter && typ != Gauge:
		w.fail("%s: unknown type %q", name, typ)
		return
	case typ == Counter && !strings.HasSuffix(name, "_total"):
		w.fail("%s: a counter's name ends in _total", name)
		return
	case w.done[name]:
		w.fail("%s: family declared twice", name)
		return
	}
	w.done[name] = true
	w.name, w.typ, w.help, w.header = name, typ, help, false
}

// Uint writes a sample with an integer value (exact, unlike a float64
// above 2^53). labels are name, value pairs.
func (w *Writer) Uint(name string, v uint64, labels ...string) {
	w.sample(name, labels, func(b []byte) []byte { return strconv.AppendUint(b, v, 10) })
}

// Int writes a sample with a signed integer value.
func (w *Writer) Int(name string, v int64, labels ...string) {
	w.sample(name, labels, func(b []byte) []byte { return strconv.AppendInt(b, v, 10) })
}

// Float writes a sample; NaN and the infinities are written as the
// format spells them.
func (w *Writer) Float(name string, v float64, labels ...string) {
	w.sample(name, labels, func(b []byte) []byte { return AppendFloat(b, v) })
}

// Bool writes 1 for true, 0 for false.
func (w *Writer) Bool(name string, v bool, labels ...string) {
	n := uint64(0)
	if v {
		n = 1
	}
	w.Uint(name, n, labels...)
}

// AppendFloat appends v as the text format writes a value.
func AppendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	// Plain digits for the usual magnitudes (a Unix time with its
	// milliseconds reads 1717171717.123, not 1.717171717123e+09).
	if a := math.Abs(v); a == 0 || a >= 1e-4 && a < 1e15 {
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func (w *Writer) sample(name string, labels []string, value func([]byte) []byte) {
	if w.err != nil {
		return
	}
	switch {
	case name != w.name || w.name == "":
		if w.done[name] {
			w.fail("%s: sample after another family began (a family's samples go together)", name)
		} else {
			w.fail("%s: sample without its family declared", name)
		}
		return
	case len(labels)%2 != 0:
		w.fail("%s: labels come in name, value pairs, got %d strings", name, len(labels))
		return
	}
	for i := 0; i < len(labels); i += 2 {
		if !ValidLabelName(labels[i]) {
			w.fail("%s: invalid label name %q", name, labels[i])
			return
		}
		for j := 0; j < i; j += 2 {
			if labels[j] == labels[i] {
				w.fail("%s: label %s given twice", name, labels[i])
				return
			}
		}
	}
	b := w.buf[:0]
	if !w.header {
		w.header = true
		b = append(b, "# HELP "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = appendEscaped(b, w.help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, w.typ...)
		b = append(b, '\n')
	}
	b = append(b, name...)
	if len(labels) > 0 {
		b = append(b, '{')
		for i := 0; i < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[i]...)
			b = append(b, '=', '"')
			b = appendEscaped(b, labels[i+1], true)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = value(b)
	b = append(b, '\n')
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		w.err = err
	}
}

// appendEscaped escapes a label value (backslash, double quote, newline)
// or a HELP text (backslash, newline), as the format requires.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// ValidMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func ValidMetricName(s string) bool { return validName(s, true) }

// ValidLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and is
// not reserved (a leading __).
func ValidLabelName(s string) bool { return validName(s, false) && !strings.HasPrefix(s, "__") }

func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			i > 0 && c >= '0' && c <= '9' || colon && c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// Registry is the list of collect functions a scrape runs.
type Registry struct {
	mu      sync.Mutex
	collect []func(*Writer)
}

// Register adds f; scrapes call the functions in the order registered.
func (r *Registry) Register(f func(*Writer)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collect = append(r.collect, f)
}

// Write runs every collect function into out and returns the first
// error (a misuse of the format, or writing to out).
func (r *Registry) Write(out io.Writer) error {
	r.mu.Lock()
	fs := r.collect
	r.mu.Unlock()
	w := NewWriter(out)
	for _, f := range fs {
		f(w)
	}
	return w.Flush()
}

// Handler serves the registry at any path it is mounted on: GET and HEAD
// only, gzip when the client accepts it (Prometheus does). A collect
// error is answered 500 with the error, so that it is seen, not scraped
// as a partial page; onError (if set) is told too.
func (r *Registry) Handler(onError func(error)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// Collected whole first: a misuse is found before any byte goes.
		var page strings.Builder
		if err := r.Write(&page); err != nil {
			if onError != nil {
				onError(err)
			}
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		h := rw.Header()
		h.Set("Content-Type", ContentType)
		h.Add("Vary", "Accept-Encoding")
		if !acceptsGzip(req.Header.Get("Accept-Encoding")) {
			h.Set("Content-Length", strconv.Itoa(page.Len()))
			_, _ = io.WriteString(rw, page.String())
			return
		}
		h.Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(rw, gzip.BestSpeed)
		_, _ = io.WriteString(zw, page.String())
		_ = zw.Close()
	})
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}
