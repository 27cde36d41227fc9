package xfr

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xdpns/xdpns/userspace/testenv/peer"
)

// A Knot primary: AXFR, then changes committed with knotc (several per
// transaction) arrive by NOTIFY and IXFR, and the zone matches after each.
func TestKnotPrimary(t *testing.T) {
	t.Parallel()
	nl := notifyListener(t)
	knot := peer.StartKnot(t, peer.KnotConfig{
		Zones:      []peer.Zone{{Name: testZone, Text: zoneText(1, 3600, 600, 86400)}},
		NotifyPort: port(nl),
	})
	s := startSecondary(t, Config{Zones: []Zone{{Name: testZone, Primaries: []Primary{{Addr: knot.Addr()}}}}}, nl)
	s.waitSerial(1, 5*time.Second)
	sameZone(t, knot.AXFR(testZone), s.served())

	rng := rand.New(rand.NewPCG(3, 4))
	const commits = 15
	for i := range commits {
		var changes [][]string
		for j := range 1 + rng.IntN(4) {
			name := fmt.Sprintf("k%d", rng.IntN(10))
			switch rng.IntN(3) {
			case 0:
				changes = append(changes, []string{"unset", name})
			case 1:
				changes = append(changes, []string{"set", name, "300", "TXT", fmt.Sprintf("c%d-%d", i, j)})
			default:
				changes = append(changes, []string{"set", name, "300", "A", fmt.Sprintf("198.18.%d.%d", i, j)})
			}
		}
		// An unset of a name that does not exist fails the transaction in
		// knotc; make sure something exists first.
		knot.Change(testZone, append([][]string{{"set", "k-anchor", "300", "A", fmt.Sprintf("198.18.99.%d", i)}}, existing(s, changes)...)...)
		s.waitSerial(knot.Serial(testZone), 3*time.Second)
		sameZone(t, knot.AXFR(testZone), s.served())
	}
	st := s.status(testZone)
	t.Logf("counters %+v", st.Counters)
	if st.Counters.Full != 1 || st.Counters.Incremental != commits {
		t.Errorf("counters %+v: want 1 full and %d incremental transfers", st.Counters, commits)
	}
}

// existing drops unsets of names the served zone does not have.
func existing(s *secondary, changes [][]string) [][]string {
	have := map[string]bool{}
	for _, r := range s.served().Records() {
		have[r.Header().Name] = true
	}
	var out [][]string
	for _, c := range changes {
		if c[0] == "unset" && !have[c[1]+"."+testZone] {
			continue
		}
		out = append(out, c)
		if c[0] == "set" {
			have[c[1]+"."+testZone] = true
		} else {
			delete(have, c[1]+"."+testZone)
		}
	}
	return out
}
