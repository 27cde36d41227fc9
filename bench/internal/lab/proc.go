// Package lab holds what the benchmark programs under bench/cmd share:
// reference servers run as child processes (started in their own process
// group, pinned to a CPU, stopped by pid), free loopback ports, the
// generated zone, statistics, facts about the machine and processes read
// from /proc (CPU idle time, per-thread run times), and the veth lab: a
// server and a client network namespace joined by a veth pair (Veth).
//
// Everything here talks only to 127.0.0.1, to addresses inside the network
// namespaces it creates, and to processes it started.
package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Proc is a server under test, running as a child process.
type Proc struct {
	Name string
	Port int       // where it serves DNS on 127.0.0.1
	Cmd  *exec.Cmd // started; its pid is the server's (taskset execs it)
	Log  string    // file holding its stdout and stderr
	done chan struct{}
}

// Addr is the server's address, 127.0.0.1:Port.
func (p *Proc) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// Pid is the server's process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Output returns what the process has written so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Pinned prefixes argv with taskset when it is there and cpu >= 0. taskset
// execs the program, so the pid started is the program's.
func Pinned(cpu int, argv []string) []string {
	if cpu < 0 {
		return argv
	}
	if ts, err := exec.LookPath("taskset"); err == nil {
		return append([]string{ts, "-c", strconv.Itoa(cpu)}, argv...)
	}
	return argv
}

// OnEveryCPU prefixes argv with taskset for every CPU when it is there:
// a child inherits its parent's affinity, and the harness pins itself to
// the generators' CPU.
func OnEveryCPU(argv []string) []string {
	if ts, err := exec.LookPath("taskset"); err == nil {
		return append([]string{ts, "-c", "0-" + strconv.Itoa(runtime.NumCPU()-1)}, argv...)
	}
	return argv
}

// Launch starts argv in its own process group, output to dir/name.log.
func Launch(name, dir string, env []string, argv []string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// Stop sends SIGTERM to the server, then, after a grace period, SIGKILL to
// the process group created for it. It returns when the server has exited
// and so has every other process of its group (NSD's children leave a
// little after their parent; they get SIGKILL after the same grace). Safe to
// call more than once.
func (p *Proc) Stop() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(p.Pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.done
		}
	}
	// Bounded: a zombie nobody reaps would keep the group alive forever.
	killAt, giveUp := time.Now().Add(stopGrace), time.Now().Add(2*stopGrace)
	killed := false
	for syscall.Kill(-p.Pid(), 0) == nil && time.Now().Before(giveUp) {
		if !killed && time.Now().After(killAt) {
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			killed = true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopGrace is how long a server and its children get to exit after
// SIGTERM.
const stopGrace = 5 * time.Second

// Exited returns an error with the server's output when it has exited.
func (p *Proc) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %s", p.Name, strings.TrimSpace(p.Output()))
	default:
		return nil
	}
}

// WaitReady polls the server's SOA for origin until it answers
// authoritatively, the server exits, ctx is done or timeout passes.
func (p *Proc) WaitReady(ctx context.Context, origin string, timeout time.Duration) error {
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err := p.Exited(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var r *dns.Msg
		r, _, err = c.Exchange(new(dns.Msg).SetQuestion(origin, dns.TypeSOA), p.Addr())
		if err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("SOA: %s", dns.RcodeToString[r.Rcode])
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", p.Name, timeout, err)
}

// FreePort returns a loopback port free for UDP and TCP, below the
// ephemeral range so the load generator's and clients' own sockets never
// take it.
func FreePort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp4", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no free port")
}

// LookSbin finds a program in PATH or in /usr/sbin and /sbin, which a
// non-root PATH often lacks.
func LookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (run .ci/deps.sh as root)", name)
}
