package main

import (
	"context"
	"fmt"
	"time"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/cookie"
)

// cookieClockEvery is how often XDP's cookie clock is set to the wall
// clock again (loader.SyncCookieClock): a stepped clock is followed
// within that time; until then XDP's timestamps and Go's differ by the
// step, which the hour a cookie stays valid absorbs.
const cookieClockEvery = 10 * time.Second

// ctlCookieRotate makes a new random cookie secret current; the old one
// stays accepted (RFC 9018 §5 rollover) until the next rotation.
const ctlCookieRotate = "cookie-rotate"

// newCookieJar is server.cookies: nil when off.
func newCookieJar(cfg *config.Config) (*cookie.Jar, error) {
	c := cfg.Server.Cookies
	if !c.Enabled {
		return nil, nil
	}
	j, err := cookie.New(c.Secret, c.Previous)
	if err != nil {
		return nil, fmt.Errorf("server.cookies: %w", err)
	}
	return j, nil
}

// rotateCookie answers cookie-rotate.
func (d *daemon) rotateCookie() ctlResponse {
	if d.cookies == nil {
		return ctlResponse{Error: "DNS cookies are off (server.cookies.enabled)"}
	}
	if err := d.cookies.Rotate(nil); err != nil {
		return ctlResponse{Error: err.Error()}
	}
	d.xdpCookies(false)
	d.log.Info("cookie secret rotated; the previous one is accepted until the next rotation")
	return ctlResponse{OK: true, Message: "cookie secret rotated: new server cookies use a new random secret; cookies made with the previous one stay valid until the next rotation (rotate at most once an hour so no client holds a cookie two secrets old)"}
}

// cmdCookie runs `xdpns cookie rotate`.
func cmdCookie(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] != "rotate" {
		e.errorf("usage: xdpns cookie rotate [-s SOCKET | -c FILE]\n\nrotate: a new random DNS cookie secret in a running serve (the previous one stays accepted)\n")
		return exitUsage
	}
	fs := newFlagSet(e, "cookie rotate", "[-s SOCKET | -c FILE]")
	sock := fs.String("s", "", "control `socket` (default: control.socket of the configuration)")
	cfgPath := configFlag(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if code, ok := parseFlags(fs, args[1:]); !ok {
		return code
	}
	path, err := socketPath(fs, *sock, *cfgPath)
	if err != nil {
		printErrors(e, err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, _, err := controlCall(ctx, path, ctlRequest{Command: ctlCookieRotate})
	if err != nil {
		e.errorf("xdpns cookie rotate: %v\n", err)
		return exitFail
	}
	if !resp.OK {
		printResponse(e, "", resp)
		return exitFail
	}
	e.printf("%s\n", resp.Message)
	return exitOK
}

// xdpCookies gives XDP the jar's secrets (bpf/cookie.h), so that its
// answers carry the server cookie Go's carry; cookies off, it ignores
// COOKIE options as Go does. start also keeps XDP's clock on the wall
// clock while serving.
func (d *daemon) xdpCookies(start bool) {
	if d.xdp == nil {
		return
	}
	var c *loader.Cookies
	if d.cookies != nil {
		cur, prev, has := d.cookies.Secrets()
		c = &loader.Cookies{Current: cur, Previous: prev, HasPrevious: has, Require: d.requireCookie}
	}
	if err := d.xdp.x.SetCookies(c); err != nil {
		d.log.Error("DNS cookies not configured in XDP: its answers differ from Go's", "err", err)
		return
	}
	if c == nil || !start {
		return
	}
	x := d.xdp.x
	go func() {
		t := time.NewTicker(cookieClockEvery)
		defer t.Stop()
		for {
			select {
			case <-d.ctx.Done():
				return
			case <-t.C:
				if err := x.SyncCookieClock(); err != nil {
					d.log.Warn("XDP cookie clock", "err", err)
				}
			}
		}
	}()
}
