package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/config"
)

// xdpCommands are the subcommands of `xdpns xdp`.
var xdpCommands = []struct {
	name, summary string
}{
	{"stats", "XDP state and counters (answered, passed by reason) and the server's socket counters"},
	{"detach", "take XDP off every interface and remove its pins (also with serve stopped)"},
}

func xdpUsage(e *env) {
	e.errorf("usage: xdpns xdp <command> [-s SOCKET | -c FILE]\n\ncommands:\n")
	for _, c := range xdpCommands {
		e.errorf("  %-7s %s\n", c.name, c.summary)
	}
	e.errorf("\nstats talks to a running `xdpns serve` over its control socket; detach\ndoes too when serve runs, and otherwise removes the pins of xdp.pin itself.\n")
}

// cmdXDP runs `xdpns xdp stats|detach`.
func cmdXDP(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		xdpUsage(e)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "help", "-h", "-help", "--help":
		xdpUsage(e)
		return exitOK
	case "stats":
		return xdpStats(ctx, e, args)
	case "detach":
		return xdpDetach(ctx, e, args)
	}
	e.errorf("xdpns xdp: unknown command %q\n\n", sub)
	xdpUsage(e)
	return exitUsage
}

func xdpStats(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "xdp stats", "[-s SOCKET | -c FILE] [-json]")
	sock := fs.String("s", "", "control `socket` (default: control.socket of the configuration)")
	cfgPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	path, err := socketPath(fs, *sock, *cfgPath)
	if err != nil {
		printErrors(e, err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, raw, err := controlCall(ctx, path, ctlRequest{Command: ctlXDPStats})
	if err != nil {
		e.errorf("xdpns xdp stats: %v\n", err)
		return exitFail
	}
	if !resp.OK || resp.XDP == nil {
		printResponse(e, "", resp)
		if resp.Error == "" {
			e.errorf("error: no XDP status in the answer (an older serve?)\n")
		}
		return exitFail
	}
	if *asJSON {
		e.printf("%s", raw)
		return exitOK
	}
	printXDPStats(e.stdout, *resp.XDP, resp.Server)
	printRRL(e.stdout, resp.RRL)
	return exitOK
}

// printXDPStats writes the state, the verdict counters that are not zero
// and the server's socket counters.
func printXDPStats(w io.Writer, st xdpStatus, srv *serverCounters) {
	fmt.Fprintf(w, "XDP: %s", st.State)
	if len(st.Interfaces) > 0 {
		var ifs []string
		for _, i := range st.Interfaces {
			ifs = append(ifs, i.Name+" ("+i.Mode+")")
		}
		fmt.Fprintf(w, " to %s", strings.Join(ifs, ", "))
	}
	if st.Reason != "" {
		fmt.Fprintf(w, ": %s", st.Reason)
	}
	fmt.Fprintln(w)
	if st.Pin != "" {
		adopted := ""
		if st.Adopted {
			adopted = " (adopted at start)"
		}
		fmt.Fprintf(w, "pinned at %s%s\n", st.Pin, adopted)
	}
	fmt.Fprintf(w, "zones: %d in XDP of %d served; %d loads, %d updates, %d failures\n", st.Zones, st.Served, st.Loads, st.Updates, st.Failures)
	if st.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", st.LastError)
	}
	if st.Counters != nil {
		fmt.Fprintf(w, "%-24s %12d\n", "answered in XDP", st.Answered)
		for _, n := range loader.StatNames() {
			if v := st.Counters[n]; v > 0 && strings.HasPrefix(n, "tx__") {
				fmt.Fprintf(w, "  %-22s %12d\n", n, v)
			}
		}
		fmt.Fprintf(w, "%-24s %12d\n", "passed to the kernel", st.Passed)
		for _, n := range loader.StatNames() {
			if v := st.Counters[n]; v > 0 && !strings.HasPrefix(n, "tx__") {
				fmt.Fprintf(w, "  %-22s %12d\n", n, v)
			}
		}
	}
	if srv != nil {
		fmt.Fprintf(w, "server sockets: %d UDP queries, %d UDP responses; %d TCP queries on %d connections (%d refused)\n",
			srv.UDPQueries, srv.UDPResponses, srv.TCPQueries, srv.TCPConns, srv.TCPRefused)
	}
}

// xdpDetach asks a running serve to detach (it also removes the pins);
// with none running, removes the pins of xdp.pin (or -pin) itself, which
// detaches the pinned links. Then it checks that no configured interface
// still has an XDP program.
func xdpDetach(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "xdp detach", "[-s SOCKET | -c FILE] [-pin DIR]")
	sock := fs.String("s", "", "control `socket` (default: control.socket of the configuration)")
	cfgPath := configFlag(fs)
	pin := fs.String("pin", "", "pinned objects' `directory` (default: xdp.pin of the configuration)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	// The configuration, when there is one: pin path, interfaces, socket.
	var cfg *config.Config
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "c" || f.Name == "config" })
	if _, err := os.Stat(*cfgPath); explicit || err == nil {
		c, err := config.Load(*cfgPath)
		if err != nil {
			printErrors(e, err)
			return exitFail
		}
		cfg = c
	}
	if *pin == "" && cfg != nil {
		*pin = cfg.XDP.Pin
	}
	path := *sock
	if path == "" {
		path = config.DefaultControlSocket
		if cfg != nil {
			path = cfg.Control.Socket
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	code := exitOK
	resp, _, err := controlCall(ctx, path, ctlRequest{Command: ctlXDPDetach})
	switch {
	case path == "" || err != nil:
		// No serve: the pinned links are all that can be attached.
		if *pin == "" {
			e.printf("no serve answered on the control socket and no pin directory is configured: nothing to detach (without xdp.pin, XDP goes away with serve)\n")
			break
		}
		if _, err := os.Stat(*pin); errors.Is(err, os.ErrNotExist) {
			e.printf("no serve answered on the control socket; nothing pinned under %s\n", *pin)
			break
		}
		if err := loader.RemovePins(*pin); err != nil {
			e.errorf("xdpns xdp detach: %v\n", err)
			return exitFail
		}
		e.printf("no serve answered on the control socket; pinned XDP links and maps under %s removed\n", *pin)
	case !resp.OK:
		printResponse(e, "", resp)
		code = exitFail
	default:
		e.printf("%s\n", resp.Message)
	}
	if cfg != nil {
		for _, ifname := range cfg.XDP.Interfaces {
			on, err := xdpAttachedTo(ifname)
			if err != nil || !on {
				continue
			}
			e.errorf("warning: %s still has an XDP program attached (another program? `ip link set dev %s xdp off` removes any)\n", ifname, ifname)
			code = exitFail
		}
	}
	return code
}
