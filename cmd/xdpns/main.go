// Command xdpns is the xdpns DNS server: one binary whose subcommands check a
// configuration, serve zones (from files and as a secondary), control a
// running server, and run a self-contained demo.
//
// Each subcommand lives in its own file and takes an *env carrying the
// arguments, the output streams and signal delivery, so tests drive the whole
// command in-process through run.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// env is everything a subcommand may touch of the outside world.
type env struct {
	stdout, stderr io.Writer
	args           []string // after the program name
	// notify subscribes c to signals. Nil means the process's signals
	// (signal.Notify); tests set it to send signals without raising them.
	notify func(c chan<- os.Signal, sig ...os.Signal)
}

// signals returns a channel receiving sig and a function that unsubscribes.
func (e *env) signals(sig ...os.Signal) (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 1)
	if e.notify != nil {
		e.notify(c, sig...)
		return c, func() {}
	}
	signal.Notify(c, sig...)
	return c, func() { signal.Stop(c) }
}

func (e *env) printf(format string, args ...any) { fmt.Fprintf(e.stdout, format, args...) }

func (e *env) errorf(format string, args ...any) { fmt.Fprintf(e.stderr, format, args...) }

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and found a problem
	exitUsage = 2 // bad command line
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

func commands() []command {
	return []command{
		{"check", "validate a configuration and every zone it names", cmdCheck},
		{"serve", "serve the configured zones on UDP and TCP", cmdServe},
		{"zone", "zone status|refresh|retransfer|reload of a running serve", cmdZone},
		{"xdp", "xdp stats|detach: the XDP fast path of serve", cmdXDP},
		{"cookie", "cookie rotate: a new DNS cookie secret for a running serve", cmdCookie},
		{"demo", "a secondary of a loopback primary, answering, taking a change", cmdDemo},
		{"version", "print the version", cmdVersion},
	}
}

func usage(e *env) {
	e.errorf("usage: xdpns <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		e.errorf("  %-8s %s\n", c.name, c.summary)
	}
	e.errorf("\nRun 'xdpns <command> -h' for the command's flags.\n")
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, e *env) int {
	if len(e.args) == 0 {
		usage(e)
		return exitUsage
	}
	name, args := e.args[0], e.args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(e)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, e, args)
		}
	}
	e.errorf("xdpns: unknown command %q\n\n", name)
	usage(e)
	return exitUsage
}

func main() {
	os.Exit(run(context.Background(), &env{stdout: os.Stdout, stderr: os.Stderr, args: os.Args[1:]}))
}
