package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// summary is the medians of one server's runs in one phase.
type summary struct {
	Kind        string  `json:"kind"` // "summary"
	Server      string  `json:"server"`
	Version     string  `json:"version"`
	XDPMode     string  `json:"xdp_mode,omitempty"`
	AttachedBy  string  `json:"attached_by,omitempty"`
	Phase       string  `json:"phase"`
	Offered     int     `json:"offered_qps"`
	Batch       int     `json:"batch"`
	Runs        int     `json:"runs"`
	Answered    float64 `json:"answered_qps"` // median
	AnsweredMin float64 `json:"answered_qps_min"`
	AnsweredMax float64 `json:"answered_qps_max"`
	Sent        float64 `json:"sent_qps"`
	AnswerRatio float64 `json:"answer_ratio"`
	VsKnot      float64 `json:"vs_knot_xdp,omitempty"` // answered (saturation) or server CPU (fixed) over Knot XDP's
	ServerCPU   float64 `json:"server_cpu"`            // median of NAPI thread + process
	ServerNAPI  float64 `json:"server_napi"`
	ServerProc  float64 `json:"server_proc"`
	ServerCPU0  float64 `json:"server_cpu_busy"`
	ClientCPU1  float64 `json:"client_cpu_busy"`
	ClientGun   float64 `json:"client_gun"`
	ClientNAPI  float64 `json:"client_napi"`
	NsPerAnswer float64 `json:"server_ns_per_answer"` // server CPU / answered
	InXDP       float64 `json:"in_xdp,omitempty"`     // XDP's answers over the replies counted (above 1: sent, not taken in)
	XDPQPS      float64 `json:"xdp_answers_qps,omitempty"`
}

func med(rs []runResult, f func(runResult) float64) float64 {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, f(r))
	}
	return lab.Median(xs)
}

// summarize gives one summary per server, phase and offered rate, in run
// order.
func summarize(o *options, res *result) []summary {
	var out []summary
	for _, phase := range []string{phaseSaturation, phaseSweep, phaseFixed} {
		var offered []int
		for _, r := range res.Runs {
			if r.Phase == phase && !slices.Contains(offered, r.Offered) {
				offered = append(offered, r.Offered)
			}
		}
		for _, rate := range offered {
			out = append(out, summarizePoint(res, phase, rate)...)
		}
	}
	return out
}

// summarizePoint summarizes every server's runs at one phase and rate.
func summarizePoint(res *result, phase string, rate int) []summary {
	var out []summary
	knot := -1
	for _, srv := range res.Servers {
		var rs []runResult
		for _, r := range res.Runs {
			if r.Server == srv.Name && r.Phase == phase && r.Offered == rate {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		var qs []float64
		for _, r := range rs {
			qs = append(qs, r.ReplyQPS)
		}
		s := summary{
			Kind: "summary", Server: srv.Name, Version: srv.Version, XDPMode: srv.Mode, AttachedBy: srv.AttachedBy,
			Phase: phase, Offered: rate, Batch: rs[0].Batch, Runs: len(rs),
			Answered: lab.Median(qs), AnsweredMin: slices.Min(qs), AnsweredMax: slices.Max(qs),
			Sent:        med(rs, func(r runResult) float64 { return r.SentQPS }),
			AnswerRatio: med(rs, func(r runResult) float64 { return r.AnswerRatio }),
			ServerCPU:   med(rs, runResult.ServerCPU),
			ServerNAPI:  med(rs, func(r runResult) float64 { return r.ServerNAPI }),
			ServerProc:  med(rs, func(r runResult) float64 { return r.ServerProc }),
			ServerCPU0:  med(rs, func(r runResult) float64 { return r.ServerCPU0 }),
			ClientCPU1:  med(rs, func(r runResult) float64 { return r.ClientCPU1 }),
			ClientGun:   med(rs, func(r runResult) float64 { return r.ClientGun }),
			ClientNAPI:  med(rs, func(r runResult) float64 { return r.ClientNAPI }),
			NsPerAnswer: med(rs, func(r runResult) float64 {
				return r.ServerCPU() / max(r.ReplyQPS, 1) * 1e9
			}),
		}
		if srv.stats != nil {
			s.InXDP = med(rs, func(r runResult) float64 { return float64(r.XDPAnswers) / float64(max(r.Replies, 1)) })
			s.XDPQPS = med(rs, func(r runResult) float64 { return r.XDPQPS })
		}
		out = append(out, s)
		if srv.Knot {
			knot = len(out) - 1
		}
	}
	if knot < 0 {
		return out
	}
	k := out[knot]
	for i := range out {
		switch {
		case phase == phaseFixed && k.ServerCPU > 0:
			out[i].VsKnot = out[i].ServerCPU / k.ServerCPU
		case phase != phaseFixed && k.Answered > 0:
			out[i].VsKnot = out[i].Answered / k.Answered
		}
	}
	return out
}

// peak is a server's best median answered q/s over the saturation and
// sweep runs.
type peak struct {
	Kind     string  `json:"kind"` // "peak"
	Server   string  `json:"server"`
	Answered float64 `json:"answered_qps"`
	Offered  int     `json:"offered_qps"` // where
	VsKnot   float64 `json:"vs_knot_xdp,omitempty"`
}

func peaks(res *result, sums []summary) []peak {
	var out []peak
	knot := -1
	for _, srv := range res.Servers {
		var p *peak
		for _, s := range sums {
			if s.Server == srv.Name && s.Phase != phaseFixed && (p == nil || s.Answered > p.Answered) {
				p = &peak{Kind: "peak", Server: s.Server, Answered: s.Answered, Offered: s.Offered}
			}
		}
		if p == nil {
			continue
		}
		out = append(out, *p)
		if srv.Knot {
			knot = len(out) - 1
		}
	}
	if knot >= 0 && out[knot].Answered > 0 {
		for i := range out {
			out[i].VsKnot = out[i].Answered / out[knot].Answered
		}
	}
	return out
}

// markdown writes the report: what ran where, two tables, the goals.
func markdown(w io.Writer, o *options, res *result) {
	sums := summarize(o, res)
	fmt.Fprintf(w, "\n### %s: veth lab, %s names, %d rounds\n\n", res.Start.Format("2006-01-02 15:04 UTC"), thousands(o.names), o.rounds)
	fmt.Fprintf(w, "    %s\n\n", o.command)
	fmt.Fprintf(w, "Machine: %s; load average %s at the start", res.Machine, res.LoadAvg)
	if res.Waited > time.Second {
		fmt.Fprintf(w, " (after waiting %v for the benchmark lock)", res.Waited.Round(time.Second))
	}
	fmt.Fprintf(w, ". Load: %s in the client namespace, A and AAAA of every name, shuffled, %s; %v per run; CPU measured over the %v inside each run. Server and its veth end's NAPI thread on CPU %d, kxdpgun and the client end's NAPI thread on CPU %d.\n\n",
		res.Gun, map[bool]string{true: "EDNS (1232, no DO)", false: "no EDNS"}[o.edns], o.duration, o.duration-2*o.warm, o.serverCPU, o.clientCPU)
	for _, srv := range res.Servers {
		fmt.Fprintf(w, "- **%s** (%s): %s", srv.Name, srv.Version, srv.About)
		if srv.AttachedBy != "" {
			fmt.Fprintf(w, "; XDP %s, attached by %s", srv.Mode, srv.AttachedBy)
		}
		fmt.Fprintln(w, ".")
	}
	bySat := pick(sums, phaseSaturation)
	if len(bySat) > 0 {
		fmt.Fprintf(w, "\nSaturation (kxdpgun -Q %s -b %d):\n\n", thousands(o.saturation), o.satBatch)
		fmt.Fprintln(w, "| server | answered q/s (median) | min–max | sent q/s | answer ratio | vs Knot XDP | answers sent by XDP/s | server CPU | client CPU busy |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, s := range bySat {
			xdp := "–"
			if s.XDPQPS > 0 {
				xdp = thousands(int(s.XDPQPS))
			}
			fmt.Fprintf(w, "| %s | **%s** | %s–%s | %s | %s | %s | %s | %s | %s |\n", s.Server, thousands(int(s.Answered)),
				thousands(int(s.AnsweredMin)), thousands(int(s.AnsweredMax)), thousands(int(s.Sent)), pct(s.AnswerRatio),
				ratio(s.VsKnot), xdp, pct(s.ServerCPU), pct(s.ClientCPU1))
		}
	}
	bySweep := pick(sums, phaseSweep)
	pk := peaks(res, sums)
	if len(bySweep) > 0 {
		var rates []int
		for _, s := range append(bySweep, bySat...) {
			if !slices.Contains(rates, s.Offered) {
				rates = append(rates, s.Offered)
			}
		}
		slices.Sort(rates)
		fmt.Fprintf(w, "\nAnswered q/s by offered rate (kxdpgun -b %d; medians; the last column is the saturation run): a server that collapses under overload answers more below it.\n\n", o.satBatch)
		fmt.Fprint(w, "| server |")
		for _, r := range rates {
			fmt.Fprintf(w, " %s |", thousands(r))
		}
		fmt.Fprintln(w, " best | best vs Knot XDP's best |")
		fmt.Fprint(w, "|---|", strings.Repeat("--:|", len(rates)+2), "\n")
		for _, srv := range res.Servers {
			fmt.Fprintf(w, "| %s |", srv.Name)
			for _, r := range rates {
				cell := "–"
				for _, s := range sums {
					if s.Server == srv.Name && s.Phase != phaseFixed && s.Offered == r {
						cell = fmt.Sprintf("%s (%s)", thousands(int(s.Answered)), pct(s.AnswerRatio))
					}
				}
				fmt.Fprintf(w, " %s |", cell)
			}
			for _, p := range pk {
				if p.Server == srv.Name {
					fmt.Fprintf(w, " **%s** | %s |", thousands(int(p.Answered)), ratio(p.VsKnot))
				}
			}
			fmt.Fprintln(w)
		}
	}
	byFix := pick(sums, phaseFixed)
	if len(byFix) > 0 {
		fmt.Fprintf(w, "\nFixed rate (kxdpgun -Q %s -b %d):\n\n", thousands(o.rate), o.batch)
		fmt.Fprintln(w, "| server | answered q/s | answer ratio | server CPU | NAPI thread | process | CPU per answer | vs Knot XDP | CPU 0 busy | in XDP |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, s := range byFix {
			fmt.Fprintf(w, "| %s | %s | %s | **%s** | %s | %s | %.2f µs | %s | %s | %s |\n", s.Server, thousands(int(s.Answered)),
				pct(s.AnswerRatio), pct(s.ServerCPU), pct(s.ServerNAPI), pct(s.ServerProc), s.NsPerAnswer/1000,
				ratio(s.VsKnot), pct(s.ServerCPU0), inXDP(s))
		}
	}
	fmt.Fprintln(w, "\n- answered q/s: kxdpgun's replies over its sending time; answer ratio: replies / queries sent (every reply NOERROR, checked). Medians over the rounds.")
	fmt.Fprintln(w, "- server CPU: run time of the server end's NAPI thread (driver, XDP program, kernel stack) plus the server's threads, from schedstat, over the window, as a share of one CPU. CPU 0 busy: 1 − that CPU's idle time (includes softirq work outside the thread and anything else on CPU 0). vs Knot XDP: answered q/s over Knot's at the same offered rate, server CPU over Knot's at the fixed rate.")
	fmt.Fprintln(w, "- answers sent by XDP/s: xdpns's own counter (tx__answer) over the sending time; above the answered q/s when answers were sent but the client end (its NAPI thread and kxdpgun share one CPU) did not take them in. in XDP: that counter over the replies counted.")
	native, knot := find(bySat, "xdpns-native"), find(bySat, "knot-xdp")
	if native != nil && knot != nil {
		fmt.Fprintf(w, "- goal, answered q/s at saturation ≥ 3× Knot XDP's: xdpns native %s vs Knot XDP %s = **%.2f×**", thousands(int(native.Answered)), thousands(int(knot.Answered)), native.VsKnot)
		if native.ClientCPU1 > 0.95 {
			fmt.Fprintf(w, " (the client's CPU was %s busy: the load generator, not xdpns, set the pace)", pct(native.ClientCPU1))
		}
		fmt.Fprintln(w, ".")
	}
	var pn, pkn *peak
	for i := range pk {
		switch pk[i].Server {
		case "xdpns-native":
			pn = &pk[i]
		case "knot-xdp":
			pkn = &pk[i]
		}
	}
	if pn != nil && pkn != nil && len(bySweep) > 0 {
		fmt.Fprintf(w, "- the same against Knot XDP's best at any offered rate measured (%s q/s at %s offered): xdpns native %s = **%.2f×**.\n",
			thousands(int(pkn.Answered)), thousands(pkn.Offered), thousands(int(pn.Answered)), pn.VsKnot)
	}
	if fn := find(byFix, "xdpns-native"); fn != nil {
		fmt.Fprintf(w, "- goal, server CPU at %s q/s below 30%%: xdpns native **%s**", thousands(o.rate), pct(fn.ServerCPU))
		if fk := find(byFix, "knot-xdp"); fk != nil {
			fmt.Fprintf(w, " (Knot XDP %s)", pct(fk.ServerCPU))
		}
		fmt.Fprintln(w, ".")
	}
}

func pick(ss []summary, phase string) []summary {
	var out []summary
	for _, s := range ss {
		if s.Phase == phase {
			out = append(out, s)
		}
	}
	return out
}

func find(ss []summary, name string) *summary {
	for i := range ss {
		if ss[i].Server == name {
			return &ss[i]
		}
	}
	return nil
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func ratio(f float64) string {
	if f == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", f)
}

func inXDP(s summary) string {
	if s.InXDP == 0 {
		return "–"
	}
	return pct(s.InXDP)
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// jsonWriter writes one JSON object a line; the first error sticks.
type jsonWriter struct {
	w   io.Writer
	err error
}

func (j *jsonWriter) put(v any) {
	if j.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		_, err = j.w.Write(append(b, '\n'))
	}
	j.err = err
}
