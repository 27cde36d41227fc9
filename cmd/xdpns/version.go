package main

import (
	"context"
	"runtime"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

func versionString() string {
	s := "xdpns " + version
	rev, dirty := "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				rev = kv.Value
			case "vcs.modified":
				dirty = kv.Value == "true"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		s += " (" + rev
		if dirty {
			s += "-dirty"
		}
		s += ")"
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func cmdVersion(_ context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "version", "")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	e.printf("%s\n", versionString())
	return exitOK
}
