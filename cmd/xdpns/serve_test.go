package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/xdpns/xdpns/userspace/testenv"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort returns a loopback port free for both UDP and TCP at the time of
// the call, drawn below the ephemeral range (testenv.FreePort). A port from
// the ephemeral range, as binding port 0 gives, can be taken by any client
// socket of a test running in parallel before serve binds it; serve then
// exits with "address already in use" after its transfers began (seen in
// CI on TestServeManyZones).
func freePort(t *testing.T) int {
	t.Helper()
	return testenv.FreePort(t)
}

func zoneText(origin string, serial int, addr string) string {
	return "$ORIGIN " + origin + "\n$TTL 300\n@ SOA ns1 hostmaster " + strconv.Itoa(serial) +
		" 7200 3600 1209600 300\n@ NS ns1\nns1 A 203.0.113.1\nwww A " + addr + "\n"
}

// serveHarness runs `xdpns serve` in-process with signals delivered by the
// test.
type serveHarness struct {
	t      *testing.T
	addr   string
	sigs   chan<- os.Signal
	done   chan int
	stderr *syncBuffer
}

func startServe(t *testing.T, config string, port int) *serveHarness {
	t.Helper()
	got := make(chan chan<- os.Signal, 1)
	h := &serveHarness{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		done: make(chan int, 1), stderr: &syncBuffer{}}
	e := &env{stdout: &syncBuffer{}, stderr: h.stderr, args: []string{"serve", "-c", config},
		notify: func(c chan<- os.Signal, _ ...os.Signal) { got <- c }}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- run(ctx, e) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	select {
	case h.sigs = <-got:
	case code := <-h.done:
		h.done <- code
		t.Fatalf("serve exited %d before subscribing to signals:\n%s", code, h.stderr)
	}
	return h
}

func (h *serveHarness) query(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, h.addr)
	return r, err
}

// waitAnswer polls until name A is answered with want (bounded).
func (h *serveHarness) waitAnswer(name, want string) {
	h.t.Helper()
	var last string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.running()
		r, err := h.query(name, dns.TypeA)
		switch {
		case err != nil:
			last = err.Error()
		case len(r.Answer) == 1:
			last = r.Answer[0].(*dns.A).A.String()
			if last == want {
				return
			}
		default:
			last = dns.RcodeToString[r.Rcode]
		}
	}
	h.t.Fatalf("%s A: last answer %q, want %s\nlog:\n%s", name, last, want, lastLines(h.stderr.String(), 200))
}

// running fails the test at once when serve has exited: waiting out a
// bound for an answer or a log line that can no longer come hides why.
// The last lines of the log come first, ahead of whatever the test's
// cleanups print.
func (h *serveHarness) running() {
	h.t.Helper()
	select {
	case code := <-h.done:
		h.done <- code
		h.t.Fatalf("serve exited %d:\n%s", code, lastLines(h.stderr.String(), 30))
	default:
	}
}

// lastLines is the end of s: at most n lines.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"[...]"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func (h *serveHarness) waitLog(s string) {
	h.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(h.stderr.String(), s) {
			return
		}
		h.running()
	}
	h.t.Fatalf("log never said %q:\n%s", s, lastLines(h.stderr.String(), 200))
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	listen := "server:\n  listen: [\"127.0.0.1:" + strconv.Itoa(port) + "\"]\n  udp-sockets: 1\n" +
		"control:\n  socket: " + filepath.Join(dir, "control.sock") + "\n"
	writeFile(t, dir, "a.zone", zoneText("a.example.", 1, "203.0.113.10"))
	writeFile(t, dir, "b.zone", zoneText("b.example.", 1, "203.0.113.20"))
	cfg := writeFile(t, dir, "xdpns.yaml", listen+`zones:
  - {name: a.example., file: a.zone}
  - {name: broken.example., file: missing.zone}
`)
	h := startServe(t, cfg, port)
	h.waitAnswer("www.a.example.", "203.0.113.10")
	h.waitLog(`msg="load failed; zone not served" component=zone zone=broken.example.`)
	if r, err := h.query("www.b.example.", dns.TypeA); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("b.example. before reload: %v %v", r, err)
	}

	// SIGHUP: a.example. changes, b.example. is added.
	writeFile(t, dir, "a.zone", zoneText("a.example.", 2, "203.0.113.11"))
	writeFile(t, dir, "xdpns.yaml", listen+`zones:
  - {name: a.example., file: a.zone}
  - {name: b.example., file: b.zone}
`)
	h.sigs <- syscall.SIGHUP
	h.waitAnswer("www.a.example.", "203.0.113.11")
	h.waitAnswer("www.b.example.", "203.0.113.20")

	// SIGHUP with a broken a.example.: the old version keeps serving.
	writeFile(t, dir, "a.zone", "$ORIGIN a.example.\n@ SOA broken\n")
	h.sigs <- syscall.SIGHUP
	h.waitLog(`msg="reload failed; the old version keeps serving" component=zone zone=a.example.`)
	h.waitAnswer("www.a.example.", "203.0.113.11")

	// SIGHUP with a broken configuration changes nothing.
	writeFile(t, dir, "xdpns.yaml", listen+"zones: [{name: a.example., file: a.zone, bogus: 1}]\n")
	h.sigs <- syscall.SIGHUP
	h.waitLog("reload aborted; nothing changed")
	h.waitAnswer("www.b.example.", "203.0.113.20")

	h.sigs <- syscall.SIGTERM
	select {
	case code := <-h.done:
		h.done <- code
		if code != exitOK {
			t.Errorf("exit %d after SIGTERM:\n%s", code, h.stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
	if _, err := h.query("www.a.example.", dns.TypeA); err == nil {
		t.Error("still answering after SIGTERM")
	}
}

func TestServeNoZones(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "xdpns.yaml", "server:\n  listen: [\"127.0.0.1:"+strconv.Itoa(freePort(t))+"\"]\nzones:\n  - {name: a.example., file: missing.zone}\n")
	code, _, stderr := runCmd(t, "serve", "-c", cfg)
	if code != exitFail || !strings.Contains(stderr, "no zone loaded; not serving") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestServeBadConfig(t *testing.T) {
	code, _, stderr := runCmd(t, "serve", "-c", "testdata/bad-config.yaml")
	if code != exitFail || !strings.Contains(stderr, "testdata/bad-config.yaml:4: server.udp-payload") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// stop sends SIGTERM and waits for serve to exit 0.
func (h *serveHarness) stop() {
	h.t.Helper()
	h.sigs <- syscall.SIGTERM
	select {
	case code := <-h.done:
		h.done <- code
		if code != exitOK {
			h.t.Errorf("exit %d after SIGTERM:\n%s", code, h.stderr)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("serve did not stop after SIGTERM:\n%s", h.stderr)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// TestServeLargeFileZone: a file zone at or above publishFirst names is
// answered by the engine as soon as it is parsed and compiled meanwhile
// (starting with a million-name zone does not wait for its answers).
func TestServeLargeFileZone(t *testing.T) {
	old := publishFirst
	publishFirst = 1 // every zone, however small
	t.Cleanup(func() { publishFirst = old })
	dir := t.TempDir()
	port := freePort(t)
	writeFile(t, dir, "a.zone", zoneText("a.example.", 1, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", "server:\n  listen: [\"127.0.0.1:"+strconv.Itoa(port)+"\"]\n  udp-sockets: 1\n"+
		"control:\n  socket: "+filepath.Join(dir, "control.sock")+"\nzones:\n  - {name: a.example., file: a.zone}\n")
	h := startServe(t, cfg, port)
	h.waitLog("compiled=false")
	h.waitAnswer("www.a.example.", "203.0.113.10")
	h.waitLog(`msg="answers compiled" component=zone zone=a.example. serial=1`)
	h.waitAnswer("www.a.example.", "203.0.113.10")
	// A reload serves the new version at once, compiled afterwards.
	writeFile(t, dir, "a.zone", zoneText("a.example.", 2, "203.0.113.11"))
	h.sigs <- syscall.SIGHUP
	h.waitAnswer("www.a.example.", "203.0.113.11")
	h.waitLog(`msg="answers compiled" component=zone zone=a.example. serial=2`)
}
