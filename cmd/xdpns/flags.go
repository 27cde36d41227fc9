package main

import (
	"errors"
	"flag"
)

// defaultConfig is where serve and check look without -c.
const defaultConfig = "/etc/xdpns/xdpns.yaml"

func newFlagSet(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		e.errorf("usage: xdpns %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// configFlag adds -c (and its long form -config).
func configFlag(fs *flag.FlagSet) *string {
	p := fs.String("c", defaultConfig, "configuration `file`")
	fs.StringVar(p, "config", defaultConfig, "configuration `file` (same as -c)")
	return p
}

// parseFlags parses args; ok is false when the command must stop with code
// (help asked: 0; bad flags or stray arguments: 2).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}
