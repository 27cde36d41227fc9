package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/xdpns/xdpns/userspace/config"
)

// envRunMain makes the test binary run xdpns instead of the tests: tests
// and the demo start `xdpns serve` as a process in a network namespace
// this way (selfEnv).
const envRunMain = "XDPNS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Exit(run(context.Background(), &env{stdout: os.Stdout, stderr: os.Stderr, args: os.Args[1:]}))
	}
	selfEnv = []string{envRunMain + "=1"}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs xdpns with args in-process and returns the exit code and
// outputs.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = run(context.Background(), &env{stdout: &out, stderr: &errb, args: args})
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "usage: xdpns <command>"},
		{[]string{"help"}, exitOK, "serve"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"check", "-x"}, exitUsage, "flag provided but not defined: -x"},
		{[]string{"check", "-h"}, exitOK, "usage: xdpns check [-c FILE]"},
		{[]string{"check", "-c", "a", "stray"}, exitUsage, "usage: xdpns check"},
		{[]string{"version", "extra"}, exitUsage, "usage: xdpns version"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("xdpns %q: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCmd(t, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "xdpns dev") || !strings.Contains(stdout, "go1.") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

func TestLoggerFormats(t *testing.T) {
	var b bytes.Buffer
	component(newLogger(&b, config.Log{Level: slog.LevelWarn, Format: "json"}), "zone").Info("hidden")
	component(newLogger(&b, config.Log{Level: slog.LevelWarn, Format: "json"}), "zone").Warn("shown", "zone", "a.example.")
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown","component":"zone","zone":"a.example."`) {
		t.Errorf("json log: %s", got)
	}
	b.Reset()
	component(newLogger(&b, config.Log{Format: "text"}), "serve").Info("hello")
	if got := b.String(); !strings.Contains(got, "level=INFO msg=hello component=serve") {
		t.Errorf("text log: %s", got)
	}
}
