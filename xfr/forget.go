package xfr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/xdpns/xdpns/userspace/zone"
)

// ForgetState deletes what the state directory dir keeps of a zone (its
// data, journal and timers), for a zone whose state must not come back: a
// catalog member removed or reset (RFC 9432 §5.5). Call it once the zone
// is no longer in the Manager. Missing files are no error.
func ForgetState(dir, origin string) error {
	if dir == "" {
		return nil
	}
	s := store{dir: dir}
	var errs []error
	for _, p := range []string{s.zonePath(origin), s.timersPath(origin)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("forget %s: %w", origin, err))
		}
	}
	return errors.Join(errs...)
}

// StoredZone reads the zone the state directory dir keeps for origin, as
// a Manager serves it at start: nil without error when nothing is stored.
// For `xdpns check` (a consumed catalog's members as last transferred);
// the running Manager is not asked.
func StoredZone(dir, origin string) (*zone.Zone, error) {
	if dir == "" {
		return nil, nil
	}
	s := store{dir: dir}
	z, _, _, err := s.loadZone(origin)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return z, err
}
