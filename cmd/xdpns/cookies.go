package main

import (
	"context"
	"fmt"
	"time"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/cookie"
)

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
