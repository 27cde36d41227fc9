package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriterFormat(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Family("x_queries_total", Counter, "Queries read.")
	w.Uint("x_queries_total", 42, "transport", "udp")
	w.Uint("x_queries_total", math.MaxUint64, "transport", "tcp")
	w.Family("x_unused", Gauge, "Never sampled: not written.")
	w.Family("x_temp", Gauge, "A gauge.")
	w.Float("x_temp", -1.5)
	w.Float("x_temp", 1e21, "k", "big")
	w.Float("x_temp", 1717171717.123, "k", "time")
	w.Float("x_temp", 1e-7, "k", "small")
	w.Float("x_temp", math.Inf(1), "k", "inf")
	w.Float("x_temp", math.Inf(-1), "k", "-inf")
	w.Float("x_temp", math.NaN(), "k", "nan")
	w.Int("x_temp", -7, "k", "int")
	w.Bool("x_temp", true, "k", "yes")
	w.Bool("x_temp", false, "k", "no")
	w.Family("x_info", Gauge, "Help with a \\ backslash\nand a newline, and \"quotes\".")
	w.Uint("x_info", 1, "a", `back\slash`, "b", "quo\"te", "c", "new\nline", "d", "")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `# HELP x_queries_total Queries read.
# TYPE x_queries_total counter
x_queries_total{transport="udp"} 42
x_queries_total{transport="tcp"} 18446744073709551615
# HELP x_temp A gauge.
# TYPE x_temp gauge
x_temp -1.5
x_temp{k="big"} 1e+21
x_temp{k="time"} 1717171717.123
x_temp{k="small"} 1e-07
x_temp{k="inf"} +Inf
x_temp{k="-inf"} -Inf
x_temp{k="nan"} NaN
x_temp{k="int"} -7
x_temp{k="yes"} 1
x_temp{k="no"} 0
# HELP x_info Help with a \\ backslash\nand a newline, and "quotes".
# TYPE x_info gauge
x_info{a="back\\slash",b="quo\"te",c="new\nline",d=""} 1
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	// It parses back, values and escapes undone.
	sc, err := Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc) != 3 || sc[0].Type != Counter || sc[1].Type != Gauge || sc[2].Help != "Help with a \\ backslash\nand a newline, and \"quotes\"." {
		t.Errorf("parsed %+v", sc)
	}
	if v, ok := sc.Get("x_queries_total", "transport", "udp"); !ok || v != 42 {
		t.Errorf("udp %v %v", v, ok)
	}
	if v := sc.Sum("x_queries_total"); v != 42+math.MaxUint64 {
		t.Errorf("sum %v", v)
	}
	if v, ok := sc.Get("x_temp", "k", "nan"); !ok || !math.IsNaN(v) {
		t.Errorf("nan %v %v", v, ok)
	}
	if v, ok := sc.Get("x_temp"); !ok || v != -1.5 {
		t.Errorf("no labels %v %v", v, ok)
	}
	if _, ok := sc.Get("x_temp", "k"); ok {
		t.Error("odd labels matched")
	}
	l := sc.Family("x_info").Samples[0].Labels
	if l["a"] != `back\slash` || l["b"] != `quo"te` || l["c"] != "new\nline" || l["d"] != "" {
		t.Errorf("labels %q", l)
	}
}

func TestWriterMisuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(w *Writer)
		want string
	}{
		{"counter without _total", func(w *Writer) { w.Family("x_queries", Counter, "") }, "a counter's name ends in _total"},
		{"bad metric name", func(w *Writer) { w.Family("x-y", Gauge, "") }, `invalid metric name "x-y"`},
		{"leading digit", func(w *Writer) { w.Family("1x", Gauge, "") }, `invalid metric name "1x"`},
		{"unknown type", func(w *Writer) { w.Family("x", "histogram", "") }, `unknown type "histogram"`},
		{"twice", func(w *Writer) {
			w.Family("x", Gauge, "")
			w.Uint("x", 1)
			w.Family("x", Gauge, "")
		}, "family declared twice"},
		{"undeclared", func(w *Writer) { w.Uint("x", 1) }, "sample without its family declared"},
		{"interleaved", func(w *Writer) {
			w.Family("x", Gauge, "")
			w.Uint("x", 1)
			w.Family("y", Gauge, "")
			w.Uint("x", 1)
		}, "sample after another family began"},
		{"odd labels", func(w *Writer) {
			w.Family("x", Gauge, "")
			w.Uint("x", 1, "zone")
		}, "labels come in name, value pairs"},
		{"bad label", func(w *Writer) {
			w.Family("x", Gauge, "")
			w.Uint("x", 1, "zone-name", "a.")
		}, `invalid label name "zone-name"`},
		{"reserved label", func(w *Writer) {
			w.Family("x", Gauge, "")
			w.Uint("x", 1, "__name__", "a.")
		}, `invalid label name "__name__"`},
		{"label twice", func(w *Writer) {
			w.Family("x", Gauge, "")
			w.Uint("x", 1, "zone", "a.", "zone", "b.")
		}, "label zone given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := NewWriter(&b)
			tc.f(w)
			w.Family("after", Gauge, "")
			w.Uint("after", 1)
			err := w.Flush()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(b.String(), "after") {
				t.Errorf("written after the error:\n%s", b.String())
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriterWriteError(t *testing.T) {
	w := NewWriter(failWriter{})
	w.Family("x", Gauge, "")
	w.Uint("x", 1)
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("error %v", err)
	}
}

func TestValidNames(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "_a1": true, "a:b": true, ":a": true, "": false, "1a": false, "a-b": false, "a b": false, "é": false} {
		if ValidMetricName(s) != want {
			t.Errorf("ValidMetricName(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"zone": true, "_z": true, "a:b": false, "__x": false, "1a": false, "": false} {
		if ValidLabelName(s) != want {
			t.Errorf("ValidLabelName(%q) = %v", s, !want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	ok := "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
	if _, err := Parse(strings.NewReader(ok)); err != nil {
		t.Fatalf("valid page: %v", err)
	}
	for name, page := range map[string]string{
		"no final newline":    strings.TrimSuffix(ok, "\n"),
		"blank line":          ok + "\n",
		"comment":             ok + "# hello\n",
		"no HELP":             "# TYPE a gauge\na 1\n",
		"no TYPE":             "# HELP a A.\na 1\n",
		"HELP at end":         ok + "# HELP b B.\n",
		"no samples":          "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\nb 1\n",
		"no samples at end":   ok + "# HELP b B.\n# TYPE b gauge\n",
		"counter name":        "# HELP a A.\n# TYPE a counter\na 1\n",
		"negative counter":    "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",
		"NaN counter":         "# HELP a_total A.\n# TYPE a_total counter\na_total NaN\n",
		"other type":          "# HELP a A.\n# TYPE a summary\na 1\n",
		"family twice":        ok + "# HELP a_total A.\n# TYPE a_total counter\na_total 2\n",
		"foreign sample":      ok + "b 1\n",
		"series twice":        "# HELP a A.\n# TYPE a gauge\na{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n",
		"timestamp":           "# HELP a A.\n# TYPE a gauge\na 1 1700000000000\n",
		"bad value":           "# HELP a A.\n# TYPE a gauge\na one\n",
		"hex value":           "# HELP a A.\n# TYPE a gauge\na 0x10\n",
		"inf spelled":         "# HELP a A.\n# TYPE a gauge\na Inf\n",
		"two spaces":          "# HELP a A.\n# TYPE a gauge\na  1\n",
		"label unclosed":      "# HELP a A.\n# TYPE a gauge\na{x=\"1} 1\n",
		"label bad escape":    "# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n",
		"label no quotes":     "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",
		"label twice":         "# HELP a A.\n# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",
		"label no comma":      "# HELP a A.\n# TYPE a gauge\na{x=\"1\"y=\"2\"} 1\n",
		"label bad name":      "# HELP a A.\n# TYPE a gauge\na{x-y=\"1\"} 1\n",
		"help bad escape":     "# HELP a A \\\"q\\\".\n# TYPE a gauge\na 1\n",
		"bad metric name":     "# HELP a-b A.\n# TYPE a-b gauge\na-b 1\n",
		"TYPE of another one": "# HELP a A.\n# TYPE b gauge\na 1\n",
	} {
		if _, err := Parse(strings.NewReader(page)); err == nil {
			t.Errorf("%s: parsed:\n%s", name, page)
		} else if !strings.HasPrefix(err.Error(), "line ") {
			t.Errorf("%s: error %v does not name the line", name, err)
		}
	}
}

func TestHandler(t *testing.T) {
	var r Registry
	n := uint64(0)
	r.Register(func(w *Writer) {
		n++
		w.Family("x_scrapes_total", Counter, "Scrapes.")
		w.Uint("x_scrapes_total", n)
	})
	r.Register(func(w *Writer) {
		w.Family("x_zone_serial", Gauge, "Serial.")
		w.Uint("x_zone_serial", 7, "zone", "example.com.")
	})
	h := r.Handler(nil)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != ContentType {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	want := "# HELP x_scrapes_total Scrapes.\n# TYPE x_scrapes_total counter\nx_scrapes_total 1\n" +
		"# HELP x_zone_serial Serial.\n# TYPE x_zone_serial gauge\nx_zone_serial{zone=\"example.com.\"} 7\n"
	if rec.Body.String() != want {
		t.Errorf("body:\n%s", rec.Body.String())
	}

	// gzip when accepted, as Prometheus asks.
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate;q=0.5")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("not gzipped: %v", rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if sc, err := Parse(bytes.NewReader(body)); err != nil || len(sc) != 2 {
		t.Errorf("gzipped page: %v\n%s", err, body)
	}
	for _, ae := range []string{"gzip;q=0", "identity", "br"} {
		req.Header.Set("Accept-Encoding", ae)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: gzipped", ae)
		}
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}

	// A collect function that misuses the format: 500 with the error,
	// and onError is told.
	r.Register(func(w *Writer) { w.Uint("x_scrapes_total", 1) })
	var got error
	rec = httptest.NewRecorder()
	r.Handler(func(err error) { got = err }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 || got == nil || !strings.Contains(rec.Body.String(), "x_scrapes_total: sample after another family began") {
		t.Errorf("misuse: %d %v %q", rec.Code, got, rec.Body.String())
	}
}

func TestListen(t *testing.T) {
	var r Registry
	r.Register(func(w *Writer) {
		w.Family("x_up", Gauge, "Up.")
		w.Uint("x_up", 1)
	})
	s, err := Listen("127.0.0.1:0", &r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n" {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
	for path, code := range map[string]int{"/": 200, "/other": 404} {
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(s.URL()); err == nil {
		t.Error("still answering after Close")
	}
	// The port is free again.
	s2, err := Listen(s.Addr().String(), &r, nil)
	if err != nil {
		t.Fatalf("listen again: %v", err)
	}
	s2.Close()
}
