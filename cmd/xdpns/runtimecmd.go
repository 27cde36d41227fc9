package main

import (
	"context"
	"strings"
	"time"
)

// cmdZoneAddRemove runs `xdpns zone add NAME --primary ADDR[,ADDR] ...` and
// `xdpns zone remove NAME` (runtime.go).
func cmdZoneAddRemove(ctx context.Context, e *env, sub string, args []string) int {
	synopsis := "[-s SOCKET | -c FILE] NAME"
	if sub == "add" {
		synopsis += " --primary ADDR[,ADDR] [--key K] [--notify ADDR,... [--notify-key K]] [--allow-notify PREFIX,...] [--allow-transfer PREFIX,...] [--transfer-key K,...] [--axfr-only]"
	}
	fs := newFlagSet(e, "zone "+sub, synopsis)
	sock := fs.String("s", "", "control `socket` (default: control.socket of the configuration)")
	cfgPath := configFlag(fs)
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	var a zoneAddArgs
	var primaries, allowNotify, allowTransfer, transferKeys, notify string
	wait := 10 * time.Second
	if sub == "add" {
		fs.StringVar(&primaries, "primary", "", "primaries, `IP[:PORT],...` (port 53 by default), tried in order")
		fs.StringVar(&a.Key, "key", "", "TSIG `key` (a name from the configuration's keys) signing the exchanges with every primary")
		fs.StringVar(&allowNotify, "allow-notify", "", "NOTIFY sources besides the primaries, `PREFIX,...`")
		fs.BoolVar(&a.AXFROnly, "axfr-only", false, "never ask for IXFR")
		fs.StringVar(&allowTransfer, "allow-transfer", "", "who may transfer the zone from us, `PREFIX,...`")
		fs.StringVar(&transferKeys, "transfer-key", "", "keys a transfer from us must be signed with, `K,...`")
		fs.StringVar(&notify, "notify", "", "send NOTIFY to `IP[:PORT],...` when the zone changes")
		fs.StringVar(&a.NotifyKey, "notify-key", "", "TSIG `key` signing those NOTIFYs")
		fs.DurationVar(&wait, "wait", wait, "wait up to this long for the first transfer (0: do not wait)")
	}
	pos, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 || (sub == "add" && primaries == "") {
		fs.Usage()
		return exitUsage
	}
	list := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	a.Primaries, a.AllowNotify, a.AllowTransfer, a.TransferKeys, a.Notify =
		list(primaries), list(allowNotify), list(allowTransfer), list(transferKeys), list(notify)
	a.WaitMS = int(wait / time.Millisecond)
	path, err := socketPath(fs, *sock, *cfgPath)
	if err != nil {
		printErrors(e, err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req := ctlRequest{Command: ctlZoneRemove, Zone: pos[0]}
	if sub == "add" {
		req = ctlRequest{Command: ctlZoneAdd, Zone: pos[0], Add: &a}
	}
	resp, _, err := controlCall(ctx, path, req)
	if err != nil {
		e.errorf("xdpns zone %s: %v\n", sub, err)
		return exitFail
	}
	printResponse(e, sub, resp)
	if !resp.OK {
		return exitFail
	}
	return exitOK
}
