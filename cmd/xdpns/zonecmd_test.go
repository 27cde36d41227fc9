package main

import (
	"encoding/json"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// zoneStatusJSON runs `xdpns zone status -json` and decodes the answer.
func zoneStatusJSON(t *testing.T, sock string, name string) ctlResponse {
	t.Helper()
	args := []string{"zone", "status", "-json", "-s", sock}
	if name != "" {
		args = append(args, name)
	}
	code, stdout, stderr := runCmd(t, args...)
	var resp ctlResponse
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("zone status -json: exit %d, %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	return resp
}

func TestZoneCommandsFileZones(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	sock := filepath.Join(dir, "run", "control.sock")
	writeFile(t, dir, "a.zone", zoneText("a.example.", 7, "203.0.113.10"))
	conf := "server:\n  listen: [\"127.0.0.1:" + strconv.Itoa(port) + "\"]\n  udp-sockets: 1\n" +
		"control:\n  socket: run/control.sock\n" +
		"zones:\n  - {name: a.example., file: a.zone}\n  - {name: broken.example., file: missing.zone}\n"
	cfg := writeFile(t, dir, "xdpns.yaml", conf)
	h := startServe(t, cfg, port)
	h.waitAnswer("www.a.example.", "203.0.113.10")
	h.waitLog("msg=serving ") // the control socket opens after the listeners

	// The socket and its directory.
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	if di, err := os.Stat(filepath.Dir(sock)); err != nil || di.Mode().Perm() != 0o750 {
		t.Errorf("socket directory: %v %v, want 0750", di.Mode(), err)
	}

	// status: by -s, and by -c (the configuration's socket).
	for _, args := range [][]string{{"-s", sock}, {"-c", cfg}, {"a.example", "-c", cfg}} {
		code, stdout, stderr := runCmd(t, append([]string{"zone", "status"}, args...)...)
		if code != exitOK || !strings.Contains(stdout, "ZONE") || !strings.Contains(stdout, "a.example.") {
			t.Errorf("zone status %q: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	code, stdout, _ := runCmd(t, "zone", "status", "-s", sock)
	lines := strings.Split(stdout, "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "ZONE") ||
		!regexpMatch(`^a\.example\.\s+file\s+7\s+\S+/a\.zone\s+\d+s ago\s+-\s+-\s+-$`, lines[1]) ||
		!regexpMatch(`^broken\.example\.\s+failed\s+-\s+\S+/missing\.zone\s+-\s+-\s+-\s+.*no such file`, lines[2]) {
		t.Errorf("zone status: exit %d\n%s", code, stdout)
	}

	resp := zoneStatusJSON(t, sock, "A.EXAMPLE")
	if !resp.OK || len(resp.Zones) != 1 || resp.Zones[0].Kind != "file" || resp.Zones[0].Serial != 7 || !resp.Zones[0].Served {
		t.Errorf("status a.example: %+v", resp)
	}

	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"status", "nope.example."}, exitFail, "", "error: zone nope.example. is not configured"},
		{[]string{"refresh", "a.example."}, exitFail, "", "error: zone a.example. is served from a file (" + dir + "/a.zone); use `xdpns zone reload`"},
		{[]string{"retransfer", "nope.example."}, exitFail, "", "error: zone nope.example. is not configured"},
		{[]string{"reload"}, exitFail, "reloaded: 2 zones, 1 files loaded, 1 failed", "missing.zone: no such file or directory"},
	} {
		code, stdout, stderr := runCmd(t, append(append([]string{"zone"}, tc.args...), "-s", sock)...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("zone %q: exit %d\nstdout: %s\nstderr: %s\nwant exit %d, %q, %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}

	// reload picks up a changed zone file and a fixed configuration.
	writeFile(t, dir, "a.zone", zoneText("a.example.", 8, "203.0.113.11"))
	writeFile(t, dir, "xdpns.yaml", strings.Replace(conf, "  - {name: broken.example., file: missing.zone}\n", "", 1))
	if code, stdout, stderr := runCmd(t, "zone", "reload", "-s", sock); code != exitOK || !strings.Contains(stdout, "reloaded: 1 zones, 1 files loaded, 0 failed") {
		t.Errorf("zone reload: exit %d\n%s%s", code, stdout, stderr)
	}
	h.waitAnswer("www.a.example.", "203.0.113.11")
	// A configuration with errors: nothing changes, the errors are shown.
	writeFile(t, dir, "xdpns.yaml", conf+"bogus: 1\n")
	code, _, stderr := runCmd(t, "zone", "reload", "-s", sock)
	if code != exitFail || !strings.Contains(stderr, "error: configuration has errors; nothing changed") ||
		!strings.Contains(stderr, `xdpns.yaml:9: unknown key "bogus" at the top level`) {
		t.Errorf("zone reload of a bad configuration: exit %d\n%s", code, stderr)
	}

	// A second server cannot take over a live socket.
	port2 := freePort(t)
	cfg2 := writeFile(t, dir, "second.yaml", strings.Replace(conf, strconv.Itoa(port), strconv.Itoa(port2), 1))
	h2 := startServe(t, cfg2, port2)
	h2.waitLog("control socket not available")
	h2.waitLog("another process is serving it")

	// After a stop the socket is gone.
	h.stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after stop: %v", err)
	}
	code, _, stderr = runCmd(t, "zone", "status", "-s", sock)
	if code != exitFail || !strings.Contains(stderr, "is `xdpns serve` running with this control socket?") {
		t.Errorf("status without a server: exit %d, %s", code, stderr)
	}
}

func TestZoneUsage(t *testing.T) {
	dir := t.TempDir()
	off := writeFile(t, dir, "off.yaml", "control: {socket: \"\"}\n")
	bad := writeFile(t, dir, "bad.yaml", "control: {sock: x}\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"zone"}, exitUsage, "usage: xdpns zone <command>"},
		{[]string{"zone", "help"}, exitOK, "retransfer"},
		{[]string{"zone", "frob"}, exitUsage, `unknown command "frob"`},
		{[]string{"zone", "refresh"}, exitUsage, "usage: xdpns zone refresh [-s SOCKET | -c FILE] NAME"},
		{[]string{"zone", "retransfer", "a.", "b."}, exitUsage, "usage: xdpns zone retransfer"},
		{[]string{"zone", "reload", "a."}, exitUsage, "usage: xdpns zone reload"},
		{[]string{"zone", "status", "a.", "b."}, exitUsage, "usage: xdpns zone status"},
		{[]string{"zone", "status", "-x"}, exitUsage, "flag provided but not defined: -x"},
		{[]string{"zone", "reload", "-json"}, exitUsage, "flag provided but not defined: -json"},
		{[]string{"zone", "status", "-c", off}, exitFail, "the control socket is off"},
		{[]string{"zone", "status", "-c", bad}, exitFail, `bad.yaml:1: unknown key "sock" in control`},
		{[]string{"zone", "status", "-c", filepath.Join(dir, "none.yaml")}, exitFail, "no such file"},
		{[]string{"zone", "status", "-s", filepath.Join(dir, "none.sock")}, exitFail, "is `xdpns serve` running"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("xdpns %q: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestListenControl(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "x.sock")

	// Not a socket: refused, left alone.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(path), "x.sock", "data")
	if _, _, err := listenControl(path, -1); err == nil || !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Errorf("over a file: %v", err)
	}
	os.Remove(path)

	// A stale socket (nobody listening) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, fi, err := listenControl(path, -1)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("mode %v", fi.Mode())
	}
	// No temporary name left behind.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want the socket alone", len(ents))
	}
	// A live one is not taken over.
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if _, _, err := listenControl(path, -1); err == nil || !strings.Contains(err.Error(), "another process is serving it") {
		t.Errorf("over a live socket: %v", err)
	}
}

// TestControlGroup checks the socket and its directory belong to the
// configured group (needs root to chown).
func TestControlGroup(t *testing.T) {
	testenv.RequireRoot(t)
	var g *user.Group
	for _, name := range []string{"daemon", "nogroup", "adm", "users"} {
		if gg, err := user.LookupGroup(name); err == nil && gg.Gid != "0" {
			g = gg
			break
		}
	}
	if g == nil {
		t.Skip("no non-root group to test with")
	}
	gid, _ := strconv.Atoi(g.Gid)
	path := filepath.Join(t.TempDir(), "run", "c.sock")
	ln, _, err := listenControl(path, gid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Gid) != gid || int(st.Uid) != os.Geteuid() {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, os.Geteuid(), gid)
		}
	}
	if _, err := lookupGroup("no-such-group-xdpns"); err == nil {
		t.Error("unknown group accepted")
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 400 * time.Millisecond: "0s", 45 * time.Second: "45s", 192 * time.Second: "3m12s",
		2*time.Hour + 5*time.Minute + 3*time.Second: "2h5m", 14 * 24 * time.Hour: "14d0h", -time.Second: "0s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
	now := time.Now()
	if until(now.Add(-time.Second), now) != "now" || expireIn(now.Add(-time.Second), now) != "expired" || ago(time.Time{}, now) != "-" {
		t.Error("relative times")
	}
}
