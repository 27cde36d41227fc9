package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/xdpns/xdpns/bench/internal/lab"
)

// xdpnsLog holds the timings xdpns logs per transfer: "zone updated ...
// kind=IXFR took=" (info: SOA query, IXFR, applying the differences; before
// the new version's answers are compiled and published) and "journal
// appended ... took=" (debug: writing and fsyncing the differences, after
// publishing).
type xdpnsLog struct {
	AXFR    time.Duration   // the first transfer
	IXFR    []time.Duration // each incremental one
	Journal []time.Duration // each journal append
}

var (
	reUpdated = regexp.MustCompile(`msg="zone updated".* kind=(\w+) .*took=(\S+)`)
	reJournal = regexp.MustCompile(`msg="journal appended".* took=(\S+)`)
)

func parseXdpnsLog(text string) xdpnsLog {
	var l xdpnsLog
	for _, line := range strings.Split(text, "\n") {
		if m := reUpdated.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[2])
			if err != nil {
				continue
			}
			if m[1] == "IXFR" {
				l.IXFR = append(l.IXFR, d)
			} else if l.AXFR == 0 {
				l.AXFR = d
			}
		} else if m := reJournal.FindStringSubmatch(line); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				l.Journal = append(l.Journal, d)
			}
		}
	}
	return l
}

// pct is the nearest-rank p-th percentile of ds (p 100: the maximum).
func pct(ds []time.Duration, p float64) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(lab.Percentile(xs, p))
}

// markdown writes the report: a heading, the command, the machine, one
// table row per secondary, and what the figures mean.
func markdown(w io.Writer, o options, r *result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s: %s records, %d updates\n\n", r.Start.Format("2006-01-02 15:04 UTC"), thousands(r.Records), o.updates)
	fmt.Fprintf(&b, "    %s\n\n", o.command)
	pin := "not pinned"
	if r.Pinned {
		pin = fmt.Sprintf("secondaries pinned to CPU %d, named and the benchmark to CPU %d (taskset)", o.secondaryCPU, o.primaryCPU)
	}
	fmt.Fprintf(&b, "Machine: %s, load average %s at the start. Primary: %s; %s. Secondaries loaded one at a time in the order below, each after the others went idle.\n\n", r.Machine, r.LoadAvg, r.Primary, pin)
	b.WriteString("| secondary | version | transfer + load | RSS | PSS | changes seen | median | p90 | max | median, adds | median, replaces |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, s := range r.Servers {
		lat := s.seen()
		seen := fmt.Sprintf("%d/%d", len(lat), len(s.Obs))
		if !s.Converged {
			seen += fmt.Sprintf(" (serial %d)", s.Serial)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Name, s.Version, secs(s.Load),
			mib(s.Mem.RSS), mib(s.Mem.PSS), seen, msec(pct(lat, 50)), msec(pct(lat, 90)), msec(pct(lat, 100)),
			msec(pct(s.seenKind(r.Changes, true), 50)), msec(pct(s.seenKind(r.Changes, false), 50)))
	}
	fmt.Fprintf(&b, "\n- transfer + load: from starting the secondary (empty: no zone on disk) to its first correct answer for `%s A`, polled every %v.\n", r.LastName, o.loadPoll)
	b.WriteString("- RSS and PSS: the secondary's process tree after every secondary loaded and went idle (PSS splits pages shared by NSD's forked processes).\n")
	fmt.Fprintf(&b, "- median, p90, max: from the primary's answer to a dynamic UPDATE (adds: a new name; replaces: an existing name's A record replaced) to the receipt of the first answer showing it, each secondary polled every %v over its own UDP socket, all secondaries at once; %v between updates; a change not seen within %v is not counted. UPDATE round trip at the primary: median %s.\n",
		o.poll, o.gap, o.timeout, msec(pct(r.UpdateRTT, 50)))
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "- %s: %s.\n", s.Name, secondaries[s.Name].settings)
	}
	for _, s := range r.Servers {
		if l := s.XdpnsLog; l != nil && len(l.IXFR) > 0 {
			fmt.Fprintf(&b, "- xdpns's log: first AXFR took %s (transfer and validation, before compiling); per IXFR `took=` (SOA query, IXFR, apply) median %s, p90 %s",
				secs(l.AXFR), msec(pct(l.IXFR, 50)), msec(pct(l.IXFR, 90)))
			if len(l.Journal) > 0 {
				fmt.Fprintf(&b, "; journal append (after publishing) median %s", msec(pct(l.Journal, 50)))
			}
			b.WriteString(".\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func msec(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func thousands(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
