package xfr

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/zone"
)

func TestFileBase(t *testing.T) {
	cases := map[string]string{
		"example.test.":   "example.test",
		"Example.TEST":    "example.test",
		".":               "%2E",
		"a/b.test.":       "a%2Fb.test",
		`dot\.in.label.`:  "dot%5C.in.label",
		"xn--bcher-kva.":  "xn--bcher-kva",
		"_srv._tcp.test.": "_srv._tcp.test",
	}
	for in, want := range cases {
		if got := fileBase(in); got != want {
			t.Errorf("fileBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStoreRoundTrip(t *testing.T) {
	st := store{dir: t.TempDir()}
	rrs := zoneRRs(t, 7)
	diffs := []Diff{{From: 6, To: 7, Deleted: []dns.RR{soaRR(6), a(t, "old", "198.18.0.1")}, Added: []dns.RR{soaRR(7)}}}
	tm := timerState{Serial: 7, Source: "127.0.0.1:53", LastRefresh: time.Unix(1000, 0).UTC(),
		NextCheck: time.Unix(2000, 0).UTC(), ExpireAt: time.Unix(3000, 0).UTC()}
	if err := st.saveZone(testZone, testZoneOf(t, rrs), diffs, tm); err != nil {
		t.Fatal(err)
	}
	gotZ, gotDiffs, gotTm, err := st.loadZone(testZone)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := canon(rrs), canon(gotZ.Records()); !slices.Equal(a, b) {
		t.Errorf("records differ:\n%v\n%v", a, b)
	}
	if len(gotDiffs) != 1 || gotDiffs[0].From != 6 || len(gotDiffs[0].Deleted) != 2 || len(gotDiffs[0].Added) != 1 {
		t.Errorf("diffs %v", gotDiffs)
	}
	if !gotTm.ExpireAt.Equal(tm.ExpireAt) || gotTm.Serial != 7 || gotTm.Source != tm.Source {
		t.Errorf("timers %+v, want %+v", gotTm, tm)
	}
	tm.LastRefresh = time.Unix(1500, 0).UTC()
	if err := st.saveTimers(testZone, tm); err != nil {
		t.Fatal(err)
	}
	if got, err := st.loadTimers(testZone); err != nil || !got.LastRefresh.Equal(tm.LastRefresh) {
		t.Errorf("timers file: %+v, %v", got, err)
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(st.dir)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want the zone and timers files", names)
	}
}

func TestStoreCorrupt(t *testing.T) {
	st := store{dir: t.TempDir()}
	if err := st.saveZone(testZone, testZoneOf(t, zoneRRs(t, 7)), nil, timerState{Serial: 7}); err != nil {
		t.Fatal(err)
	}
	path := st.zonePath(testZone)
	good, _ := os.ReadFile(path)
	damage := map[string]func([]byte) []byte{
		"flipped byte":  func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated":     func(b []byte) []byte { return b[:len(b)-40] },
		"cut in header": func(b []byte) []byte { return b[:20] },
		"extra data":    func(b []byte) []byte { return append(b, 0) },
		"empty":         func(b []byte) []byte { return nil },
		"other format":  func(b []byte) []byte { return []byte("$ORIGIN example.test.\n") },
	}
	for name, f := range damage {
		b := f(append([]byte(nil), good...))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.loadZone(testZone); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v, want ErrCorrupt", name, err)
		}
	}
	// A file holding another zone (renamed by hand) is refused too.
	if err := os.WriteFile(filepath.Join(st.dir, "other.test.zone"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := st.loadZone("other.test."); !errors.Is(err, ErrCorrupt) {
		t.Errorf("renamed file: error %v, want ErrCorrupt", err)
	}
	if err := os.WriteFile(st.timersPath(testZone), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.loadTimers(testZone); !errors.Is(err, ErrCorrupt) {
		t.Errorf("timers: error %v, want ErrCorrupt", err)
	}
}

// Saving a zone only reads its records: the responder reads them at the
// same time (run with -race).
func TestStoreDoesNotWriteRecords(t *testing.T) {
	st := store{dir: t.TempDir()}
	z := testZoneOf(t, zoneRRs(t, 7))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			for _, r := range z.Records() {
				_ = dns.Copy(r)
			}
		}
	}()
	for range 5 {
		if err := st.saveZone(testZone, z, nil, timerState{Serial: 7}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

func TestJournalFile(t *testing.T) {
	st := store{dir: t.TempDir()}
	mk := func(from uint32, name string) Diff {
		return Diff{From: from, To: from + 1,
			Deleted: []dns.RR{soaAt(from)},
			Added:   []dns.RR{soaAt(from + 1), a(t, name, "198.18.0.7")}}
	}
	if err := st.appendDiffs(testZone, []Diff{mk(1, "a")}); err != nil {
		t.Fatal(err)
	}
	if err := st.appendDiffs(testZone, []Diff{mk(2, "b"), mk(3, "c")}); err != nil {
		t.Fatal(err)
	}
	got, torn, err := st.loadJournal(testZone)
	if err != nil || torn || len(got) != 3 || got[2].To != 4 || len(got[1].Added) != 2 {
		t.Fatalf("journal: %v torn=%v err=%v", got, torn, err)
	}
	// A crash in the middle of an append leaves a torn last frame.
	path := st.journalPath(testZone)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-5], 0o600)
	got, torn, _ = st.loadJournal(testZone)
	if !torn || len(got) != 2 {
		t.Errorf("torn tail: %d diffs, torn=%v; want 2, true", len(got), torn)
	}
	// A flipped bit fails the frame's CRC: reading stops before it.
	b[10] ^= 0x40
	os.WriteFile(path, b, 0o600)
	if got, torn, _ = st.loadJournal(testZone); !torn || len(got) != 0 {
		t.Errorf("bad CRC in the first frame: %d diffs, torn=%v", len(got), torn)
	}
	if err := st.removeJournal(testZone); err != nil {
		t.Fatal(err)
	}
	if got, torn, err = st.loadJournal(testZone); len(got) != 0 || torn || err != nil {
		t.Errorf("after remove: %v %v %v", got, torn, err)
	}
}

func testZoneOf(t testing.TB, rrs []dns.RR) *zone.Zone {
	t.Helper()
	z, _, err := zone.New(testZone, rrs, zone.Options{RequireNS: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// A state directory written by a release before the stored-node format
// (version 1: records) still restarts.
func TestStoreReadsVersion1(t *testing.T) {
	st := store{dir: t.TempDir()}
	rrs := zoneRRs(t, 7)
	diffs := []Diff{{From: 6, To: 7, Deleted: []dns.RR{soaRR(6)}, Added: []dns.RR{soaRR(7)}}}
	if err := writeZoneV1(st, testZone, rrs, diffs, timerState{Serial: 7}); err != nil {
		t.Fatal(err)
	}
	z, gotDiffs, tm, err := st.loadZone(testZone)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := canon(rrs), canon(z.Records()); !slices.Equal(a, b) || tm.Serial != 7 || len(gotDiffs) != 1 {
		t.Errorf("version 1 file read as %v (serial %d, %d diffs)", b, tm.Serial, len(gotDiffs))
	}
	// The next save writes version 2, which reads back the same.
	if err := st.saveZone(testZone, z, gotDiffs, tm); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(st.zonePath(testZone)); !bytes.HasPrefix(b, []byte(zoneMagic)) {
		t.Errorf("saved as %q, want version 2", b[:min(len(b), 13)])
	}
	z2, _, _, err := st.loadZone(testZone)
	if err != nil || !slices.Equal(canon(z2.Records()), canon(rrs)) {
		t.Errorf("version 2 after version 1: %v", err)
	}
}

// Signed zones keep everything through a save and a load: signatures, the
// NSEC3 chain (stored apart from the tree), NSEC order, wildcards, cuts.
func TestStoreSignedZones(t *testing.T) {
	for _, name := range []string{"nsec3s.test", "nsec3.test", "nsec.test", "optout.test", "chain.test"} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("..", "userspace", "nsddiff", "testdata", name+".zone.signed")
			z, _, err := zone.Load(file, name+".", zone.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st := store{dir: t.TempDir()}
			if err := st.saveZone(name+".", z, nil, timerState{Serial: z.Serial()}); err != nil {
				t.Fatal(err)
			}
			got, _, _, err := st.loadZone(name + ".")
			if err != nil {
				t.Fatal(err)
			}
			if a, b := z.Records(), got.Records(); !slices.Equal(canon(a), canon(b)) {
				t.Errorf("records differ: %d saved, %d loaded", len(a), len(b))
			}
			if got.Signed != z.Signed || (got.NSEC3 == nil) != (z.NSEC3 == nil) || got.Len() != z.Len() {
				t.Errorf("loaded zone: signed %v nsec3 %v len %d, saved %v %v %d", got.Signed, got.NSEC3 != nil, got.Len(), z.Signed, z.NSEC3 != nil, z.Len())
			}
			for _, n := range z.Names() {
				if a, b := z.Node(n), got.Node(n); b == nil || a.Flags != b.Flags {
					t.Fatalf("node %s: flags %v, saved %v", n, b, a.Flags)
				}
			}
			if z.NSEC3 != nil {
				for _, q := range []string{"nope." + name + ".", "a.b.c." + name + "."} {
					a, am := z.NSEC3For(q)
					b, bm := got.NSEC3For(q)
					if a.Name != b.Name || am != bm {
						t.Errorf("NSEC3For(%s) = %s %v, saved zone %s %v", q, b.Name, bm, a.Name, am)
					}
				}
			}
		})
	}
}

// BenchmarkStoreLoad: reading a saved zone of 100,000 names (an A and an
// AAAA each) back into a served zone, from the stored nodes (version 2)
// and from records (version 1, what a restart did before), same run.
//
//	go test ./xfr -run '^$' -bench StoreLoad -benchmem
func BenchmarkStoreLoad(b *testing.B) {
	const names = 100_000
	var text strings.Builder
	text.WriteString(zoneText(1, 3600, 600, 86400))
	for i := range names {
		fmt.Fprintf(&text, "h%d IN A 198.18.%d.%d\nh%d IN AAAA 2001:2::%x:%x\n", i, (i/256)%256, i%256, i, i>>16, i&0xffff)
	}
	z, _, err := zone.Parse(strings.NewReader(text.String()), "bench", testZone, zone.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	st := store{dir: b.TempDir()}
	tm := timerState{Serial: z.Serial()}
	b.Run("nodes", func(b *testing.B) {
		if err := st.saveZone(testZone, z, nil, tm); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, _, _, err := st.loadZone(testZone); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("records", func(b *testing.B) {
		if err := writeZoneV1(st, testZone, z.Records(), nil, tm); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, _, _, err := st.loadZone(testZone); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// writeZoneV1 writes a zone file as releases before the stored-node format
// did: records.
func writeZoneV1(st store, origin string, rrs []dns.RR, diffs []Diff, tm timerState) error {
	return writeAtomic(st.zonePath(origin), func(w io.Writer) error {
		h := sha256.New()
		bw := bufio.NewWriter(io.MultiWriter(w, h))
		hdr, _ := json.Marshal(zoneHeader{Origin: origin, Records: len(rrs), Diffs: len(diffs), Timers: tm})
		bw.WriteString(zoneMagicV1)
		writeU32(bw, uint32(len(hdr)))
		bw.Write(hdr)
		buf := make([]byte, 1<<16)
		if err := writeRRs(bw, buf, rrs); err != nil {
			return err
		}
		for _, d := range diffs {
			if err := writeDiff(bw, buf, d); err != nil {
				return err
			}
		}
		bw.Flush()
		_, err := w.Write(h.Sum(nil))
		return err
	})
}
