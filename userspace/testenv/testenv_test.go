package testenv

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFreePortBindsUDPAndTCP(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.ListenPacket("udp4", addr)
		if err != nil {
			l.Close()
			t.Fatal(err)
		}
		l.Close()
		u.Close()
	}
}

func TestStartProcessKillsThatPid(t *testing.T) {
	var p *Process
	t.Run("child", func(t *testing.T) {
		p = StartProcess(t, "sh", "-c", "echo started; exec sleep 60")
		p.WaitFor(t, 5*time.Second, func() error {
			if !strings.Contains(p.Output(), "started") {
				return syscall.EAGAIN
			}
			return nil
		})
	})
	// The subtest's cleanup has run: the process is gone and reaped.
	select {
	case <-p.Exited():
	default:
		t.Fatal("process still running after cleanup")
	}
	if err := syscall.Kill(p.Pid, 0); err != syscall.ESRCH {
		t.Fatalf("pid %d still exists: %v", p.Pid, err)
	}
}

func TestStartProcessStubbornChild(t *testing.T) {
	if testing.Short() {
		return
	}
	defer func(g time.Duration) { stopGrace = g }(stopGrace)
	stopGrace = 200 * time.Millisecond
	var p *Process
	t.Run("child", func(t *testing.T) {
		// Ignores SIGTERM and has a child of its own: both must go.
		p = StartProcess(t, "sh", "-c", "trap '' TERM; sleep 60 & echo started; wait")
		p.WaitFor(t, 5*time.Second, func() error {
			if !strings.Contains(p.Output(), "started") {
				return syscall.EAGAIN
			}
			return nil
		})
	})
	// The grandchild was killed too; it is gone once init has reaped it.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-p.Pid, 0) != syscall.ESRCH {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has members", p.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLookPathFindsSbin(t *testing.T) {
	if _, err := LookPath("sh"); err != nil {
		t.Fatal(err)
	}
	if _, err := LookPath("no-such-program-xdpns"); err == nil {
		t.Fatal("found a program that does not exist")
	}
}

// recorder stands in for a *testing.T to see which way a requirement fails.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }

func TestPolicySkipsLocallyFailsInCI(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		RequireBinary(r, "dnsperf-not-installed-xdpns")
		if ci == "" && (r.skipped == "" || r.fatal != "") {
			t.Errorf("CI unset: skipped %q, fatal %q; want a skip", r.skipped, r.fatal)
		}
		if ci != "" && (r.fatal == "" || r.skipped != "") {
			t.Errorf("CI=%s: skipped %q, fatal %q; want a failure", ci, r.skipped, r.fatal)
		}
	}
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	Packages["xdpns-fake"] = "xdpns-fake-pkg"
	defer delete(Packages, "xdpns-fake")
	RequireBinary(r, "xdpns-fake")
	if !strings.Contains(r.skipped, "Debian package xdpns-fake-pkg") {
		t.Errorf("skip message does not name the package: %q", r.skipped)
	}
}
