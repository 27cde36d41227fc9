// Package testenv holds helpers for tests that need more than the Go
// toolchain: root, reference servers from Debian packages, free loopback
// ports and child processes that are always reaped.
//
// The skip policy is the same everywhere: a test whose requirement is missing
// skips with a message that says how to get it, except under CI (CI set in
// the environment), where the same condition fails the test. CI installs
// every requirement (.ci/deps.sh) and runs as root, so a skip there would hide
// a broken set-up.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI: CI is set to anything but
// "", "0" or "false".
func InCI() bool {
	switch strings.ToLower(os.Getenv("CI")) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// unavailable skips t, or fails it under CI.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI is set: CI must provide this, not skip)", msg)
		return
	}
	t.Skip(msg)
}

// RequireRoot skips t unless the process runs as root (fails under CI).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "skipped: needs root (run as root, or in CI)")
	}
}

// Packages maps the programs tests use to the Debian package that ships
// them; .ci/deps.sh installs every one of these.
var Packages = map[string]string{
	"nsd":             "nsd",
	"nsd-checkconf":   "nsd",
	"knotd":           "knot",
	"knotc":           "knot",
	"kdig":            "knot-dnsutils",
	"kxdpgun":         "knot-dnsutils",
	"named":           "bind9",
	"rndc":            "bind9",
	"dig":             "bind9-dnsutils",
	"nsupdate":        "bind9-dnsutils",
	"dnssec-keygen":   "bind9-utils",
	"dnssec-signzone": "bind9-utils",
	"dnsperf":         "dnsperf",
	"ldns-keygen":     "ldnsutils",
	"ldns-signzone":   "ldnsutils",
	"ip":              "iproute2",
	"taskset":         "util-linux",
	"nsenter":         "util-linux",
	"clang-16":        "clang-16",
	"llvm-strip-16":   "llvm-16",
	"ods-signerd":     "opendnssec-signer",
	"ods-hsmutil":     "libhsm-bin",
	"softhsm2-util":   "softhsm2",
}

// sbinDirs are searched after PATH: daemons live in /usr/sbin, which a
// non-root user's PATH often lacks.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// LookPath finds a program in PATH or the sbin directories.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH or %s", name, strings.Join(sbinDirs, ", "))
}

// RequireBinary returns the path of program name, or skips t naming the
// Debian package to install (fails under CI).
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := LookPath(name)
	if err == nil {
		return p
	}
	pkg := Packages[name]
	if pkg == "" {
		unavailable(t, fmt.Sprintf("skipped: needs %s", name))
	} else {
		unavailable(t, fmt.Sprintf("skipped: needs %s (Debian package %s: run .ci/deps.sh as root, or apt-get install %s)", name, pkg, pkg))
	}
	return ""
}

// Port range FreePort draws from: below Linux's ephemeral range
// (32768-60999), so sockets bound to port 0 elsewhere in the test run never
// land on a port handed out here between our check and the peer's bind.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portMu   sync.Mutex
	portUsed = map[int]bool{}
)

// FreePort returns a loopback port on which both a UDP and a TCP socket
// could be bound on 127.0.0.1 just now, for a peer that binds it itself. A
// port is handed out once per test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow)
		if portUsed[p] {
			continue
		}
		if portFree(p) {
			portUsed[p] = true
			return p
		}
	}
	t.Fatal("testenv: no free loopback port found")
	return 0
}

func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// Process is a child started by StartProcess.
type Process struct {
	Cmd *exec.Cmd
	Pid int
	Log string // file holding its stdout and stderr

	done chan struct{} // closed when it has exited and been reaped
	err  error         // Wait's result, valid after done
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err is the process's exit status; valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Output returns what the process has written so far.
func (p *Process) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// stopGrace is how long a process gets to exit after SIGTERM.
var stopGrace = 5 * time.Second

// StartProcess starts name with args, its stdout and stderr going to a log
// file in t.TempDir() that is printed when t fails. In t.Cleanup the process
// gets SIGTERM (daemons such as NSD stop their worker children on it); one
// that has not exited after a grace period gets SIGKILL sent to the process
// group created for it at start, so its workers go too. Then it is reaped.
func StartProcess(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	path, err := LookPath(name)
	if err != nil {
		path = name // let exec report it
	}
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	f.Close() // the child holds its own copy
	p := &Process{Cmd: cmd, Pid: cmd.Process.Pid, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s (pid %d) %s; its output:\n%s", name, p.Pid, exitText(p.err), indent(p.Output()))
		}
	})
	return p
}

// stop ends the process: SIGTERM to its pid, then SIGKILL to its group.
func (p *Process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func exitText(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exited"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	}
	return err.Error()
}

func indent(s string) string {
	if s == "" {
		return "\t(nothing)"
	}
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("\t")
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}

// WaitFor polls ready every 20 ms until it returns nil, the process exits, or
// timeout passes; it fails t with the last error and the process output.
func (p *Process) WaitFor(t testing.TB, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = ready(); err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s (pid %d) %s before it was ready (%v)", p.Cmd.Path, p.Pid, exitText(p.err), err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) not ready after %v: %v", p.Cmd.Path, p.Pid, timeout, err)
		}
	}
}
