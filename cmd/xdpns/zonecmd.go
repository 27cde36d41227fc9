package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/xdpns/xdpns/userspace/config"
)

// zoneCommands are the subcommands of `xdpns zone`.
var zoneCommands = []struct {
	name, args, summary string
}{
	{ctlStatus, "[NAME]", "state, serial, primary and timers of every zone (or one)"},
	{ctlRefresh, "NAME", "check the primaries' SOA now (as a NOTIFY would)"},
	{ctlRetransfer, "NAME", "transfer the zone in full (AXFR) now"},
	{ctlReload, "", "re-read the configuration and every zone file (as SIGHUP)"},
	{"add", "NAME", "add a secondary zone at run time (--primary ADDR[,ADDR]; kept in xfr.runtime-zones)"},
	{"remove", "NAME", "remove a zone added at run time (and its state files)"},
}

func zoneUsage(e *env) {
	e.errorf("usage: xdpns zone <command> [-s SOCKET | -c FILE] [args]\n\ncommands:\n")
	for _, c := range zoneCommands {
		e.errorf("  %-10s %-7s %s\n", c.name, c.args, c.summary)
	}
	e.errorf("\nThey talk to a running `xdpns serve` over its control socket (root or\ncontrol.group only). Run 'xdpns zone <command> -h' for the flags.\n")
}

// cmdZone runs `xdpns zone status|refresh|retransfer|reload`.
func cmdZone(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		zoneUsage(e)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "help", "-h", "-help", "--help":
		zoneUsage(e)
		return exitOK
	}
	if sub == "add" || sub == "remove" {
		return cmdZoneAddRemove(ctx, e, sub, args)
	}
	var synopsis string
	known := false
	for _, c := range zoneCommands {
		if c.name == sub {
			known, synopsis = true, "[-s SOCKET | -c FILE] "+c.args
		}
	}
	if !known {
		e.errorf("xdpns zone: unknown command %q\n\n", sub)
		zoneUsage(e)
		return exitUsage
	}
	fs := newFlagSet(e, "zone "+sub, synopsis)
	sock := fs.String("s", "", "control `socket` (default: control.socket of the configuration)")
	cfgPath := configFlag(fs)
	asJSON := false
	if sub == ctlStatus {
		fs.BoolVar(&asJSON, "json", false, "print the server's JSON answer")
	}
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	pos, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	var name string
	switch {
	case sub == ctlReload && len(pos) == 0:
	case sub == ctlStatus && len(pos) <= 1:
		if len(pos) == 1 {
			name = pos[0]
		}
	case (sub == ctlRefresh || sub == ctlRetransfer) && len(pos) == 1:
		name = pos[0]
	default:
		fs.Usage()
		return exitUsage
	}
	path, err := socketPath(fs, *sock, *cfgPath)
	if err != nil {
		printErrors(e, err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, raw, err := controlCall(ctx, path, ctlRequest{Command: sub, Zone: name})
	if err != nil {
		e.errorf("xdpns zone %s: %v\n", sub, err)
		return exitFail
	}
	if asJSON {
		e.printf("%s", raw)
	} else {
		printResponse(e, sub, resp)
	}
	if !resp.OK {
		return exitFail
	}
	return exitOK
}

// parseInterspersed parses flags that may come after the positional
// arguments ("status example.com -s x") and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// socketPath picks the control socket: -s; else control.socket of the
// configuration (-c, or the default file when it exists); else the
// default socket.
func socketPath(fs *flag.FlagSet, sock, cfgPath string) (string, error) {
	if sock != "" {
		return sock, nil
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "c" || f.Name == "config" })
	if !explicit {
		if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
			return config.DefaultControlSocket, nil
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return "", err
	}
	if cfg.Control.Socket == "" {
		return "", fmt.Errorf("%s: the control socket is off (control.socket is empty)", cfgPath)
	}
	return cfg.Control.Socket, nil
}

// controlCall sends one request and reads the answer.
func controlCall(ctx context.Context, path string, req ctlRequest) (ctlResponse, []byte, error) {
	var resp ctlResponse
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
			err = fmt.Errorf("%w (is `xdpns serve` running with this control socket?)", err)
		case errors.Is(err, os.ErrPermission):
			err = fmt.Errorf("%w (the control socket is for root and control.group only)", err)
		}
		return resp, nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	out, _ := json.Marshal(req)
	if _, err := c.Write(append(out, '\n')); err != nil {
		return resp, nil, err
	}
	raw, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(raw) > 0) {
		return resp, nil, fmt.Errorf("read answer: %w", err)
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return resp, nil, fmt.Errorf("bad answer: %w", err)
	}
	return resp, raw, nil
}

func printResponse(e *env, sub string, resp ctlResponse) {
	if resp.Error != "" {
		e.errorf("error: %s\n", resp.Error)
	}
	for _, d := range resp.Details {
		e.errorf("%s\n", d)
	}
	if resp.Message != "" {
		e.printf("%s\n", resp.Message)
	}
	if sub == ctlStatus && resp.OK {
		printStatus(e.stdout, resp.Zones, resp.Now)
	}
}

// printStatus writes the status table; for a single secondary zone it adds
// its counters.
func printStatus(w io.Writer, rows []zoneRow, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tSTATE\tSERIAL\tSOURCE\tLAST REFRESH\tNEXT CHECK\tEXPIRES IN\tLAST ERROR")
	for _, r := range rows {
		serial := "-"
		if r.Served {
			serial = fmt.Sprint(r.Serial)
		}
		source := r.Source
		if r.FromDisk {
			source += " (disk)"
		}
		if source == "" {
			source = "-"
		}
		next, expires := "-", "-"
		if r.Kind == "secondary" {
			next = until(r.NextCheck, now)
			if r.Served {
				expires = expireIn(r.ExpireAt, now)
			}
		}
		lastErr := r.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		name := r.Name
		switch {
		case r.Runtime:
			name += " [run-time]"
		case r.Catalog != "":
			name += " [catalog " + r.Catalog + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, r.State, serial, source, ago(r.LastRefresh, now), next, expires, lastErr)
	}
	tw.Flush()
	if len(rows) == 1 && rows[0].Counters != nil {
		c := rows[0].Counters
		fmt.Fprintf(w, "\nsince start: %d SOA queries, %d IXFR, %d AXFR, %d up to date, %d failed checks, %d NOTIFY accepted, %d refused\n",
			c.SOAQueries, c.Incremental, c.Full, c.UpToDate, c.Failures, c.Notifies, c.NotifyDenied)
	}
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(t)) + " ago"
}

func until(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if !t.After(now) {
		return "now"
	}
	return "in " + shortDuration(t.Sub(now))
}

func expireIn(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if !t.After(now) {
		return "expired"
	}
	return shortDuration(t.Sub(now))
}

// shortDuration writes d to the second, with at most two units: 45s, 3m12s,
// 2h5m, 13d23h.
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	days, h, m := s/86400, s%86400/3600, s%3600/60
	s %= 60
	var b strings.Builder
	switch {
	case days > 0:
		fmt.Fprintf(&b, "%dd%dh", days, h)
	case h > 0:
		fmt.Fprintf(&b, "%dh%dm", h, m)
	case m > 0:
		fmt.Fprintf(&b, "%dm%ds", m, s)
	default:
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}
