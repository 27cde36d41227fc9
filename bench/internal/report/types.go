// Package report holds what the benchmark harness measured: one Run per
// load run (JSON lines for machines), medians over rounds (Summary), the
// Markdown table and the plots drawn from them.
//
// The harness (bench/cmd/harness) fills these; nothing here measures.
package report

import "time"

// Run is one load run: one server, one scenario, one generator, one
// offered rate, one round.
type Run struct {
	Kind      string    `json:"kind"` // always "run" (JSON lines mix kinds)
	Time      time.Time `json:"time"`
	Scenario  string    `json:"scenario"`  // hit, mixed, miss, large, updates, ipv6, and the coverage scenarios (bench/README.md)
	Server    string    `json:"server"`    // xdpns-native, xdpns-generic, xdpns-user, knot-xdp, knot-udp, nsd, bind
	Generator string    `json:"generator"` // kxdpgun, dnsperf
	Phase     string    `json:"phase"`     // "saturation" or "fixed"
	Round     int       `json:"round"`     // 1-based
	Offered   int       `json:"offered_qps"`
	Seconds   float64   `json:"seconds"` // sending time

	Sent     int64   `json:"sent"`
	Answered int64   `json:"answered"`
	QPS      float64 `json:"answered_qps"` // Answered / Seconds
	// AnswerRatio is Answered / Sent; Correct is the share of answers
	// with the expected rcode (NOERROR for hits, NXDOMAIN for misses).
	AnswerRatio float64 `json:"answer_ratio"`
	Correct     float64 `json:"correct_ratio"`

	// CPU over the run, in CPUs (1.0 = one CPU busy the whole time):
	// the server end's NAPI thread (driver, XDP, stack) and the server's
	// processes; ServerCPU is their sum.
	ServerNAPI float64 `json:"server_napi"`
	ServerProc float64 `json:"server_proc"`
	ServerCPU  float64 `json:"server_cpu"`
	ClientCPU  float64 `json:"client_cpu"`
	// CPUPerMillion is server CPU-seconds per million answers.
	CPUPerMillion float64 `json:"cpu_s_per_million"`

	// InXDP is the share of answers sent by XDP (xdpns with XDP only;
	// -1 when not known).
	InXDP float64 `json:"in_xdp"`

	// Latency from the generator when it reports per-query times
	// (dnsperf); nil otherwise.
	Latency *Latency `json:"latency,omitempty"`

	// Sources: what each client network got (rrl-flood only), and Note
	// those counts and XDP's limiter decisions in words.
	Sources []Source `json:"sources,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// Source is one client network of the rrl-flood scenario: its queries
// and what came back for them.
type Source struct {
	Name     string `json:"name"` // "flood" or "quiet"
	Addr     string `json:"addr"`
	Offered  int    `json:"offered_qps"`
	Sent     int64  `json:"sent"`
	Answered int64  `json:"answered"` // full answers (NOERROR, TC=0)
	Slipped  int64  `json:"slipped"`  // truncated (TC=1): RRL's slip
	Dropped  int64  `json:"dropped"`  // no response
	Other    int64  `json:"other"`    // any other response
}

// Latency is a distribution of response times, in microseconds.
type Latency struct {
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	// CDF holds at most ~200 points, increasing in both fields.
	CDF []CDFPoint `json:"cdf,omitempty"`
}

// CDFPoint: Fraction of the answers came within Micros.
type CDFPoint struct {
	Micros   float64 `json:"us"`
	Fraction float64 `json:"f"`
}

// ServerSetup is what a server cost to set up for one scenario.
type ServerSetup struct {
	Kind     string  `json:"kind"` // always "setup"
	Scenario string  `json:"scenario"`
	Server   string  `json:"server"`
	Version  string  `json:"version"`
	Names    int     `json:"names"`     // names in the zone
	Records  int     `json:"records"`   // records in the zone
	LoadSecs float64 `json:"load_s"`    // start until the zone answered
	RSSBytes int64   `json:"rss_bytes"` // resident memory once loaded
	// MapBytes is BPF map memory (xdpns with XDP), 0 otherwise.
	MapBytes int64 `json:"map_bytes,omitempty"`
	// Checked: the answers were verified before any figure counted.
	Checked bool   `json:"checked"`
	Error   string `json:"error,omitempty"`
}

// Summary is the median over rounds of the runs of one (scenario,
// server, generator, phase, offered) point.
type Summary struct {
	Scenario, Server, Generator, Phase string
	Offered                            int
	Rounds                             int
	QPS, QPSMin, QPSMax                float64
	AnswerRatio, Correct               float64
	ServerCPU, ServerNAPI, ServerProc  float64
	CPUPerMillion                      float64
	InXDP                              float64
	Latency                            *Latency // of the median run by QPS
}
