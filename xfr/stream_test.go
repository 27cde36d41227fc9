package xfr

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

func soaAt(serial uint32) dns.RR { return soaRR(serial) }

func a(t *testing.T, name, ip string) dns.RR {
	return rr(t, fmt.Sprintf("%s.example.test. 300 IN A %s", name, ip))
}

func TestStream(t *testing.T) {
	ns := rr(t, "example.test. 300 IN NS ns1.example.test.")
	x1, x2, x3 := a(t, "x", "198.18.0.1"), a(t, "x", "198.18.0.2"), a(t, "y", "198.18.0.3")
	type msgs = [][]dns.RR
	cases := []struct {
		name    string
		ixfr    bool
		ours    uint32
		msgs    msgs
		err     string // substring; "" means success
		incons  bool   // the error wraps ErrInconsistent (AXFR will do)
		full    int    // records in the full result (AXFR-style)
		diffs   []string
		current bool // up to date
		done    bool // the stream ended (false: more messages expected)
	}{
		{name: "axfr one message", msgs: msgs{{soaAt(5), ns, x1, soaAt(5)}}, full: 3, done: true},
		{name: "axfr SOA alone first", msgs: msgs{{soaAt(5)}, {ns, x1}, {soaAt(5)}}, full: 3, done: true},
		{name: "axfr unfinished", msgs: msgs{{soaAt(5), ns}}, done: false},
		{name: "axfr empty message", msgs: msgs{{soaAt(5)}, {}}, err: "empty message"},
		{name: "axfr trailing records", msgs: msgs{{soaAt(5), ns, soaAt(5), x1}}, err: "1 records after the closing SOA"},
		{name: "axfr second SOA differs", msgs: msgs{{soaAt(5), ns, soaAt(6)}}, err: "closing SOA has serial 6"},
		{name: "axfr starts without SOA", msgs: msgs{{ns, soaAt(5)}}, err: "does not start with the SOA"},
		{name: "ixfr up to date", ixfr: true, ours: 5, msgs: msgs{{soaAt(5)}}, current: true, done: true},
		{name: "ixfr primary behind", ixfr: true, ours: 6, msgs: msgs{{soaAt(5)}}, current: true, done: true},
		{name: "ixfr newer SOA alone waits for more", ixfr: true, ours: 4, msgs: msgs{{soaAt(5)}}, done: false},
		{name: "ixfr answered AXFR-style", ixfr: true, ours: 4, msgs: msgs{{soaAt(5), ns, x1}, {soaAt(5)}}, full: 3, done: true},
		{name: "ixfr one difference", ixfr: true, ours: 4,
			msgs:  msgs{{soaAt(5), soaAt(4), x1, soaAt(5), x2, soaAt(5)}},
			diffs: []string{"4→5 -1 +1"}, done: true},
		{name: "ixfr condensed differences across messages", ixfr: true, ours: 4,
			msgs:  msgs{{soaAt(7), soaAt(4), x1}, {soaAt(5), x2, soaAt(5)}, {soaAt(7), x3}, {soaAt(7)}},
			diffs: []string{"4→5 -1 +1", "5→7 -0 +1"}, done: true},
		{name: "ixfr only deletions", ixfr: true, ours: 4,
			msgs:  msgs{{soaAt(5), soaAt(4), x1, soaAt(5), soaAt(5)}},
			diffs: []string{"4→5 -1 +0"}, done: true},
		{name: "ixfr from another serial", ixfr: true, ours: 4,
			msgs: msgs{{soaAt(7), soaAt(3), x1, soaAt(7), soaAt(7)}}, err: "IXFR starts from serial 3", incons: true},
		{name: "ixfr gap between differences", ixfr: true, ours: 4,
			msgs: msgs{{soaAt(7), soaAt(4), soaAt(5), soaAt(6), soaAt(7), soaAt(7)}}, err: "starts from serial 6 after one ending at 5", incons: true},
		{name: "ixfr difference going backwards", ixfr: true, ours: 4,
			msgs: msgs{{soaAt(7), soaAt(4), soaAt(3)}}, err: "from serial 4 to 3", incons: true},
		{name: "ixfr final SOA differs", ixfr: true, ours: 4,
			msgs: msgs{{soaAt(7), soaAt(4), soaAt(7), x1, soaAt(8)}}, err: "closing SOA has serial 8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &stream{origin: testZone, ixfr: tc.ixfr, ours: tc.ours, limits: DefaultLimits}
			var err error
			for _, m := range tc.msgs {
				var cp []dns.RR
				for _, r := range m {
					cp = append(cp, dns.Copy(r))
				}
				if err = s.message(cp); err != nil {
					break
				}
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if errors.Is(err, ErrInconsistent) != tc.incons {
					t.Errorf("errors.Is(%v, ErrInconsistent) = %v, want %v", err, !tc.incons, tc.incons)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.done() != tc.done || s.upToDate != tc.current {
				t.Fatalf("done %v upToDate %v, want %v %v", s.done(), s.upToDate, tc.done, tc.current)
			}
			if !tc.done || tc.current {
				return
			}
			if len(s.full) != tc.full {
				t.Errorf("full has %d records, want %d", len(s.full), tc.full)
			}
			var got []string
			for _, d := range s.diffs {
				got = append(got, fmt.Sprintf("%d→%d -%d +%d", d.From, d.To, len(d.Deleted)-1, len(d.Added)-1))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.diffs) {
				t.Errorf("diffs %v, want %v", got, tc.diffs)
			}
		})
	}
}

func TestApplyDiffs(t *testing.T) {
	cur := []dns.RR{soaAt(4), rr(t, "example.test. 300 IN NS ns1.example.test."),
		a(t, "x", "198.18.0.1"), a(t, "X", "198.18.0.2"), a(t, "y", "198.18.0.3")}
	snapshot := canon(cur)
	diffs := []Diff{
		{From: 4, To: 5, Deleted: []dns.RR{soaAt(4), a(t, "x", "198.18.0.1")}, Added: []dns.RR{soaAt(5), a(t, "z", "198.18.0.4")}},
		// TTL change: delete and add the same data (names differ in case).
		{From: 5, To: 6, Deleted: []dns.RR{soaAt(5), rr(t, "Y.example.test. 300 IN A 198.18.0.3")}, Added: []dns.RR{soaAt(6), rr(t, "y.example.test. 60 IN A 198.18.0.3")}},
	}
	cz, _, err := zone.New("example.test.", cur, zone.Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nz, err := applyDiffs(cz, diffs)
	if err != nil {
		t.Fatal(err)
	}
	got := nz.Records()
	want := []string{
		"example.test.\t300\tIN\tNS\tns1.example.test.",
		"example.test.\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 6 3600 600 86400 60",
		"x.example.test.\t300\tIN\tA\t198.18.0.2",
		"y.example.test.\t60\tIN\tA\t198.18.0.3",
		"z.example.test.\t300\tIN\tA\t198.18.0.4",
	}
	if fmt.Sprint(canon(got)) != fmt.Sprint(want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(canon(got), "\n"), strings.Join(want, "\n"))
	}
	if got[0].(*dns.SOA).Serial != 6 {
		t.Errorf("first record %v, want the SOA at 6", got[0])
	}
	// The old version is untouched: it keeps serving until the swap.
	if cz.Serial() != 4 || cz.Node("x.example.test.").Get(dns.TypeA) == nil || len(cz.Node("x.example.test.").Get(dns.TypeA).RRs) != 2 {
		t.Error("applyDiffs changed the zone it started from")
	}
	_ = snapshot

	bad := []struct {
		name  string
		diffs []Diff
		want  string
	}{
		{"wrong start", []Diff{{From: 3, To: 5, Deleted: []dns.RR{soaAt(3)}, Added: []dns.RR{soaAt(5)}}}, "difference from serial 3, zone is at 4"},
		{"delete missing", []Diff{{From: 4, To: 5, Deleted: []dns.RR{soaAt(4), a(t, "q", "198.18.0.9")}, Added: []dns.RR{soaAt(5)}}}, "deleted record not in the zone"},
		{"delete twice", []Diff{{From: 4, To: 5, Deleted: []dns.RR{soaAt(4), a(t, "y", "198.18.0.3"), a(t, "y", "198.18.0.3")}, Added: []dns.RR{soaAt(5)}}}, "deleted record not in the zone"},
		{"add present", []Diff{{From: 4, To: 5, Deleted: []dns.RR{soaAt(4)}, Added: []dns.RR{soaAt(5), a(t, "y", "198.18.0.3")}}}, "added record already in the zone"},
	}
	for _, tc := range bad {
		_, err := applyDiffs(cz, tc.diffs)
		if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrInconsistent saying %q", tc.name, err, tc.want)
		}
	}
}

func TestTrimJournal(t *testing.T) {
	mk := func(from uint32, n int) Diff {
		d := Diff{From: from, To: from + 1, Deleted: []dns.RR{soaAt(from)}, Added: []dns.RR{soaAt(from + 1)}}
		for range n {
			d.Added = append(d.Added, a(t, "x", "198.18.0.1"))
		}
		return d
	}
	j := []Diff{mk(1, 8), mk(2, 3), mk(3, 3)} // 10, 5, 5 records
	if got := trimJournal(j, 20); len(got) != 3 {
		t.Errorf("limit 20: kept %d, want 3", len(got))
	}
	if got := trimJournal(j, 19); len(got) != 2 || got[0].From != 2 {
		t.Errorf("limit 19: kept %v, want the last two", got)
	}
	if got := trimJournal(j, 4); len(got) != 0 {
		t.Errorf("limit 4: kept %d, want none", len(got))
	}
}
