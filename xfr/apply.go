package xfr

import (
	"errors"
	"fmt"

	"github.com/xdpns/xdpns/userspace/zone"
)

// applyDiffs applies IXFR differences to cur with zone.ApplyDiffs. Each
// difference must start at the serial the previous one reached, every deleted
// record must be present and every added record absent (RFC 1995 §5: anything
// else means the histories diverged): otherwise the error wraps
// ErrInconsistent. cur is not modified and keeps serving.
func applyDiffs(cur *zone.Zone, diffs []Diff) (*zone.Zone, error) {
	serial := cur.Serial()
	zd := make([]zone.Diff, len(diffs))
	for i, d := range diffs {
		if d.From != serial {
			return nil, fmt.Errorf("%w: difference from serial %d, zone is at %d", ErrInconsistent, d.From, serial)
		}
		serial = d.To
		zd[i] = zone.Diff{Deleted: d.Deleted, Added: d.Added}
	}
	z, _, err := cur.ApplyDiffs(zd, zone.Options{RequireNS: true})
	switch {
	case errors.Is(err, zone.ErrNotFound) || errors.Is(err, zone.ErrExists):
		return nil, fmt.Errorf("%w: %v", ErrInconsistent, err)
	case err != nil:
		return nil, fmt.Errorf("invalid zone at serial %d: %w", serial, err)
	}
	return z, nil
}

// trimJournal drops the oldest differences until at most max records remain.
func trimJournal(diffs []Diff, max int) []Diff {
	total := 0
	for _, d := range diffs {
		total += d.Len()
	}
	i := 0
	for i < len(diffs) && total > max {
		total -= diffs[i].Len()
		i++
	}
	if i == 0 {
		return diffs
	}
	return append([]Diff(nil), diffs[i:]...)
}
