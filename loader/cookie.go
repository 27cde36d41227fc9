package loader

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Flags of struct cookie_config (bpf/abi.h).
const (
	cookieOn       = 0x0001
	cookiePrevious = 0x0002
	cookieRequire  = 0x0004
)

// Cookies is what XDP needs to answer DNS cookies as the Go responder's
// cookie.Jar does (bpf/cookie.h): its secrets, and whether a valid server
// cookie is required (then XDP passes queries without one: Go answers
// BADCOOKIE).
type Cookies struct {
	Current, Previous [16]byte
	HasPrevious       bool
	Require           bool
}

// SetCookies makes XDP answer COOKIE options with c (nil: ignore them, as
// Go does with cookies off). It also sets the clock XDP stamps server
// cookies with: CLOCK_BOOTTIME plus the offset to the wall clock now;
// SyncCookieClock keeps it there when the wall clock is stepped.
func (x *XDP) SetCookies(c *Cookies) error {
	x.cookieMu.Lock()
	defer x.cookieMu.Unlock()
	x.cookies = c
	return x.writeCookies()
}

// SyncCookieClock writes the wall clock's offset to CLOCK_BOOTTIME again
// (the daemon calls it every few seconds while cookies are on), so that
// XDP's timestamps stay Go's when the wall clock is stepped or slewed.
func (x *XDP) SyncCookieClock() error {
	x.cookieMu.Lock()
	defer x.cookieMu.Unlock()
	if x.cookies == nil {
		return nil
	}
	return x.writeCookies()
}

func (x *XDP) writeCookies() error {
	var v xdpnsCookieConfig
	if c := x.cookies; c != nil {
		v.Current, v.Previous = c.Current, c.Previous
		v.Flags = cookieOn
		if c.HasPrevious {
			v.Flags |= cookiePrevious
		}
		if c.Require {
			v.Flags |= cookieRequire
		}
		off, err := clockOffset()
		if err != nil {
			return err
		}
		v.ClockOffsetNs = off
	}
	if err := x.objs.CookieConfig.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write cookie config: %w", err)
	}
	return nil
}

// clockOffset is the wall clock less CLOCK_BOOTTIME (bpf_ktime_get_boot_ns).
func clockOffset() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("cookie clock: %w", err)
	}
	return time.Now().UnixNano() - ts.Nano(), nil
}

// CookieNow is the time XDP stamps server cookies with now (whole
// seconds matter): for tests that compare XDP's bytes with Go's.
func (x *XDP) CookieNow() time.Time {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	var v xdpnsCookieConfig
	_ = x.objs.CookieConfig.Lookup(uint32(0), &v)
	return time.Unix(0, ts.Nano()+v.ClockOffsetNs)
}
