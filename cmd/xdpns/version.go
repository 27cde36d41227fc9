package main

import (
	"context"
	"runtime"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

func versionString() string {
	ver, rev := buildInfo()
	s := "xdpns " + ver
	if rev != "" {
		s += " (" + rev + ")"
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// buildInfo is the version and the VCS revision the binary was built from
// (12 hex digits, "-dirty" when built from a modified tree).
func buildInfo() (ver, rev string) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				rev = kv.Value
			case "vcs.modified":
				dirty = kv.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
	}
	return version, rev
}

func cmdVersion(_ context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "version", "")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	e.printf("%s\n", versionString())
	return exitOK
}
