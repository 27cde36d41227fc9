package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// testCollector reads a counter at scrape time, and fails when told to.
type testCollector struct {
	n    *atomic.Uint64
	fail atomic.Bool
}

var (
	testQueries = prometheus.NewDesc("test_queries_total", "Queries.", []string{"zone"}, nil)
	testBroken  = prometheus.NewDesc("test_broken", "Fails.", nil, nil)
)

func (c *testCollector) Describe(ch chan<- *prometheus.Desc) { ch <- testQueries; ch <- testBroken }

func (c *testCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(testQueries, prometheus.CounterValue, float64(c.n.Load()), "a.example.")
	if c.fail.Load() {
		ch <- prometheus.NewInvalidMetric(testBroken, errors.New("broken on purpose"))
	}
}

func get(t *testing.T, url string, gz bool) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	// A transport of its own: the default one would decompress for us.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func parse(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	return fams
}

// TestServerMetrics: the registry over HTTP, parsed by expfmt: the value
// read at scrape time, plain and gzipped; a collect error is a 500 and
// logged; / names the page, other paths are 404; Close stops it.
func TestServerMetrics(t *testing.T) {
	var n atomic.Uint64
	c := &testCollector{n: &n}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	var logs strings.Builder
	s, err := Listen("127.0.0.1:0", reg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i, gz := range []bool{false, true} {
		n.Store(uint64(41 + i))
		resp, b := get(t, s.URL(), gz)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Fatalf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != gz {
			t.Errorf("gzip asked %v, got %v", gz, got)
		}
		f := parse(t, b)["test_queries_total"]
		if f == nil || f.GetType() != dto.MetricType_COUNTER || len(f.Metric) != 1 {
			t.Fatalf("family %v", f)
		}
		m := f.Metric[0]
		if v := m.GetCounter().GetValue(); v != float64(41+i) || m.Label[0].GetName() != "zone" || m.Label[0].GetValue() != "a.example." {
			t.Errorf("sample %v", m)
		}
	}

	c.fail.Store(true)
	if resp, b := get(t, s.URL(), false); resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "broken on purpose") {
		t.Errorf("collect error: %s\n%s", resp.Status, b)
	}
	if !strings.Contains(logs.String(), `msg="metrics not collected"`) || !strings.Contains(logs.String(), "broken on purpose") {
		t.Errorf("not logged: %s", logs.String())
	}

	root := strings.TrimSuffix(s.URL(), Path)
	if resp, b := get(t, root+"/", false); resp.StatusCode != 200 || string(b) != "xdpns: metrics at /metrics\n" {
		t.Errorf("/: %s %q", resp.Status, b)
	}
	if resp, _ := get(t, root+"/other", false); resp.StatusCode != 404 {
		t.Errorf("/other: %s", resp.Status)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if _, err := http.Get(s.URL()); err == nil {
		t.Error("answered after Close")
	}
}
