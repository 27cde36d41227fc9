package xfr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Issue 3, test 9: a restarted secondary serves its zones from disk at
// once, with the serial and history it had, and asks the primary nothing
// until a check is due. A due check finds the zone current; a damaged file
// is reported and the zone transferred again.
func TestBINDRestartFromDisk(t *testing.T) {
	t.Parallel()
	nl := notifyListener(t)
	named := bindPrimary(t, zoneText(100, 3600, 600, 86400), port(nl))
	dir := t.TempDir()
	cfg := Config{StateDir: dir, Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}

	s1 := startSecondary(t, cfg, nl)
	s1.waitSerial(100, 5*time.Second)
	named.Update(testZone, func(m *dns.Msg) {
		m.Insert([]dns.RR{rr(t, "kept.example.test. 300 IN A 198.18.5.1")})
	})
	serial := named.Serial(testZone)
	s1.waitSerial(serial, 3*time.Second)
	want := s1.served().Records()
	s1.m.Stop()

	t.Run("not due", func(t *testing.T) {
		s := startSecondary(t, cfg, nil)
		z := s.served() // published by Start, before any network traffic
		if z == nil || z.Serial() != serial {
			t.Fatalf("served at start: %v, want serial %d", z, serial)
		}
		sameZone(t, want, z)
		if m := s.query("kept.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("kept A: %v", m)
		}
		_, journal, _, _ := s.m.Snapshot(testZone)
		if len(journal) != 1 || journal[0].To != serial {
			t.Errorf("journal after restart: %v", journal)
		}
		time.Sleep(300 * time.Millisecond)
		st := s.status(testZone)
		if !st.FromDisk || st.State != StateOK || st.Counters.SOAQueries != 0 || st.Counters.Full+st.Counters.Incremental != 0 {
			t.Errorf("status %+v: want served from disk with no query", st)
		}
		s.m.Stop()
	})

	t.Run("due", func(t *testing.T) {
		// Pretend the daemon was down past the next refresh.
		editTimers(t, dir, func(tm *timerState) { tm.NextCheck = time.Now().Add(-time.Minute) })
		s := startSecondary(t, cfg, nil)
		if z := s.served(); z == nil || z.Serial() != serial {
			t.Fatalf("served at start: %v", z)
		}
		st := s.waitFor("a refresh", 2*time.Second, func(st ZoneStatus) bool { return st.Counters.UpToDate == 1 })
		if st.Counters.Full+st.Counters.Incremental != 0 {
			t.Errorf("counters %+v: want a check and no transfer", st.Counters)
		}
		s.m.Stop()
	})

	t.Run("corrupt", func(t *testing.T) {
		path := filepath.Join(dir, "example.test.zone")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x55
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s := startSecondary(t, cfg, nil)
		if z := s.served(); z != nil {
			t.Fatalf("a corrupt file was served (serial %d)", z.Serial())
		}
		st := s.waitSerial(serial, 3*time.Second)
		if st.FromDisk || st.Counters.Full != 1 {
			t.Errorf("status %+v: want a fresh full transfer", st)
		}
		if !strings.Contains(s.log.String(), "corrupt state file") {
			t.Errorf("corruption not reported:\n%s", s.log.String())
		}
		if _, err := os.Stat(path + ".corrupt"); err != nil {
			t.Errorf("damaged file not kept aside: %v", err)
		}
		sameZone(t, named.AXFR(testZone, nil), s.served())
		// The new transfer was saved: the next start serves it again.
		s.m.Stop()
		s2 := startSecondary(t, cfg, nil)
		if z := s2.served(); z == nil || z.Serial() != serial {
			t.Errorf("after re-transfer and restart: %v", z)
		}
	})
}

// An expired copy on disk is published as expired (SERVFAIL) until a
// refresh succeeds.
func TestBINDRestartExpired(t *testing.T) {
	t.Parallel()
	named := bindPrimary(t, zoneText(9, 3600, 1, 86400), 0)
	dir := t.TempDir()
	cfg := Config{StateDir: dir, Zones: []Zone{{Name: testZone, Primaries: []Primary{primaryOf(named)}}}}
	s1 := startSecondary(t, cfg, nil)
	s1.waitSerial(9, 5*time.Second)
	s1.m.Stop()
	named.Stop()

	editTimers(t, dir, func(tm *timerState) { tm.ExpireAt = time.Now().Add(-time.Second) })
	cfg.Timers = fastTimers
	s := startSecondary(t, cfg, nil)
	if m := s.query("www.example.test.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("expired copy at start: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	named.Start()
	named.WaitZone(testZone)
	s.waitFor("recovery", 3*time.Second, func(st ZoneStatus) bool { return st.State == StateOK })
	if m := s.query("www.example.test.", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Errorf("after recovery: rcode %s", dns.RcodeToString[m.Rcode])
	}
	if _, exp := s.events(); len(exp) != 2 || !exp[0] || exp[1] {
		t.Errorf("OnExpire calls %v, want [true false]", exp)
	}
}

// editTimers rewrites the saved timers of testZone in dir, as if time had
// passed while the daemon was down. The timers file it writes wins over
// the zone file's copy (same serial, a later refresh).
func editTimers(t *testing.T, dir string, edit func(*timerState)) {
	t.Helper()
	st := store{dir: dir}
	_, _, tm, err := st.loadZone(testZone)
	if err != nil {
		t.Fatal(err)
	}
	// After IXFRs the timers file is ahead of the snapshot (the journal
	// holds the changes between): it is the state to edit.
	if t2, err := st.loadTimers(testZone); err == nil && (t2.Serial != tm.Serial || !t2.LastRefresh.Before(tm.LastRefresh)) {
		tm = t2
	}
	tm.LastRefresh = tm.LastRefresh.Add(time.Millisecond)
	edit(&tm)
	if err := st.saveTimers(testZone, tm); err != nil {
		t.Fatal(err)
	}
}
