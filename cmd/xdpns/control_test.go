package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// TestControlAuthorize is the decision on a client's credentials: root, the
// server's user and control.group members (primary group, or supplementary
// from /proc/PID/status while that pid still runs as the uid that
// connected) may; nobody else, with a message that says who may.
func TestControlAuthorize(t *testing.T) {
	proc := t.TempDir()
	status := func(pid int, uid uint32, groups string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(proc, strconv.Itoa(pid)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(proc, strconv.Itoa(pid)), "status", fmt.Sprintf(
			"Name:\txdpns\nPid:\t%d\nUid:\t%d\t%d\t%[2]d\t%[3]d\nGid:\t100\t100\t100\t100\nGroups:\t%s\n", pid, uid+1, uid, groups))
	}
	status(10, 1001, "100 4242 27")       // in the group by a supplementary group
	status(11, 1001, "100 27")            // not in it
	status(12, 2002, "4242")              // pid reused by another user since it connected
	status(13, 1001, "")                  // no supplementary groups
	status(14, 1001, "100 notanumber 27") // unreadable

	grp := &controlServer{selfUID: 500, gid: 4242, group: "xdpns", procDir: proc}
	noGrp := &controlServer{selfUID: 500, gid: -1, procDir: proc}
	rootSrv := &controlServer{selfUID: 0, gid: -1, procDir: proc}
	for _, tc := range []struct {
		name string
		s    *controlServer
		cred unix.Ucred
		want string // "" allowed, else part of the refusal
	}{
		{"root", grp, unix.Ucred{Pid: 99, Uid: 0, Gid: 0}, ""},
		{"root, no group configured", noGrp, unix.Ucred{Pid: 99, Uid: 0, Gid: 0}, ""},
		{"the server's own user", grp, unix.Ucred{Pid: 99, Uid: 500, Gid: 500}, ""},
		{"the server's own user, no group", noGrp, unix.Ucred{Pid: 99, Uid: 500, Gid: 500}, ""},
		{"primary group", grp, unix.Ucred{Pid: 99, Uid: 1001, Gid: 4242}, ""},
		{"supplementary group", grp, unix.Ucred{Pid: 10, Uid: 1001, Gid: 100}, ""},
		{"other groups", grp, unix.Ucred{Pid: 11, Uid: 1001, Gid: 100},
			"permission denied: uid 1001 is not allowed on this control socket; only root, the server's user (uid 500) and members of group xdpns (gid 4242) are"},
		{"pid reused by another uid", grp, unix.Ucred{Pid: 12, Uid: 1001, Gid: 100}, "members of group xdpns"},
		{"no supplementary groups", grp, unix.Ucred{Pid: 13, Uid: 1001, Gid: 100}, "permission denied"},
		{"bad status file", grp, unix.Ucred{Pid: 14, Uid: 1001, Gid: 100}, "permission denied"},
		{"process gone", grp, unix.Ucred{Pid: 15, Uid: 1001, Gid: 100}, "permission denied"},
		{"pid 0 (other pid namespace)", grp, unix.Ucred{Pid: 0, Uid: 1001, Gid: 100}, "permission denied"},
		{"group member, no group configured", noGrp, unix.Ucred{Pid: 10, Uid: 1001, Gid: 4242},
			"only root, the server's user (uid 500) is (set control.group to let a group in)"},
		{"server runs as root", rootSrv, unix.Ucred{Pid: 10, Uid: 1001, Gid: 4242},
			"only root is (set control.group"},
	} {
		err := tc.s.authorize(&tc.cred)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := procGroups(proc, 10, 1001); err != nil {
		t.Errorf("procGroups: %v", err)
	}
	// The real /proc: our own groups.
	groups, err := procGroups("/proc", int32(os.Getpid()), uint32(os.Geteuid()))
	if want, _ := os.Getgroups(); err != nil || len(groups) != len(want) {
		t.Errorf("procGroups of ourselves: %v %v, want %v", groups, err, want)
	}
}

// TestControlPeerCred runs `xdpns zone status` as user nobody against a
// running serve: refused by the socket's mode; refused by the server's
// SO_PEERCRED check once the socket is made world-writable, with a clear
// message and a log line; allowed when nobody is in control.group, by its
// primary group or by a supplementary one.
func TestControlPeerCred(t *testing.T) {
	testenv.RequireRoot(t)
	uid, ngid := userIDs(t, "nobody")
	// control.group: a group nobody is not in.
	var g *user.Group
	for _, name := range []string{"daemon", "bin", "sys", "adm", "users"} {
		if gg, err := user.LookupGroup(name); err == nil && gg.Gid != "0" && gg.Gid != strconv.Itoa(ngid) {
			g = gg
			break
		}
	}
	if g == nil {
		t.Fatal("no group to test control.group with (looked for daemon, bin, sys, adm, users)")
	}
	gid, _ := strconv.Atoi(g.Gid)

	// nobody must reach the binary and the socket: a directory of our own
	// under /tmp, 0755 (t.TempDir is 0700).
	dir := openTempDir(t, "xdpns-ctl-")
	bin := copySelf(t, dir)
	sock := filepath.Join(dir, "control.sock")
	port := freePort(t)
	writeFile(t, dir, "a.zone", zoneText("a.example.", 3, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(
		"server:\n  listen: [\"127.0.0.1:%d\"]\n  udp-sockets: 1\ncontrol:\n  socket: %s\n  group: %s\nzones:\n  - {name: a.example., file: a.zone}\n",
		port, sock, g.Name))
	h := startServe(t, cfg, port)
	h.waitAnswer("www.a.example.", "203.0.113.10")
	h.waitLog("control socket")

	// status runs the client as uid with gid and supplementary groups.
	status := func(gid int, groups ...uint32) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, "zone", "status", "-s", sock, "a.example.")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), envRunMain+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("run %s as uid %d: %v", bin, uid, err)
			}
			code = ee.ExitCode()
		}
		return code, out.String(), errb.String()
	}

	// The socket is root:group 0660: nobody cannot even connect.
	code, _, stderr := status(ngid)
	if code != exitFail || !strings.Contains(stderr, "permission denied (the control socket is for root and control.group only)") {
		t.Errorf("nobody on the 0660 socket: exit %d\n%s", code, stderr)
	}

	// Loosened by hand: the server refuses nobody itself.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := status(ngid)
	want := fmt.Sprintf("error: permission denied: uid %d (nobody) is not allowed on this control socket; only root and members of group %s (gid %d) are", uid, g.Name, gid)
	if code != exitFail || !strings.Contains(stderr, want) || strings.Contains(stdout, "a.example.") {
		t.Errorf("nobody on a 0666 socket: exit %d\nstdout: %s\nstderr: %s\nwant %q", code, stdout, stderr, want)
	}
	h.waitLog(fmt.Sprintf(`level=WARN msg="control refused" component=control uid=%d pid=`, uid))
	h.waitLog(fmt.Sprintf(`gid=%d command=status zone=a.example. reason="not root, the server's user or in control.group" group=%s`, ngid, g.Name))
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}

	// In the group: by the primary group, by a supplementary one.
	for _, c := range []struct {
		what   string
		gid    int
		groups []uint32
	}{{"primary group", gid, nil}, {"supplementary group", ngid, []uint32{uint32(gid)}}} {
		code, stdout, stderr := status(c.gid, c.groups...)
		if code != exitOK || !regexpMatch(`(?m)^a\.example\.\s+file\s+3\s`, stdout) {
			t.Errorf("nobody in %s by its %s: exit %d\nstdout: %s\nstderr: %s", g.Name, c.what, code, stdout, stderr)
		}
	}
	if strings.Count(h.stderr.String(), `msg="control refused"`) != 1 {
		t.Errorf("refusals logged, want 1:\n%s", h.stderr)
	}
}

// openTempDir returns a new directory under /tmp, mode 0755, removed at
// cleanup: other users (tests run xdpns as nobody) can reach what is in it,
// which t.TempDir (0700) does not allow.
func openTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// userIDs returns the uid and primary gid of a local user.
func userIDs(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// copySelf copies the test binary (which runs xdpns with envRunMain=1) into
// dir, mode 0755, for running it as another user.
func copySelf(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	bin := filepath.Join(dir, "xdpns")
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestControlServerUser runs `xdpns serve` itself as user nobody (no
// control.group): nobody, the server's user, may use the socket; another
// unprivileged user may not, even with the socket made world-writable; root
// may.
func TestControlServerUser(t *testing.T) {
	testenv.RequireRoot(t)
	uid, gid := userIDs(t, "nobody")
	ouid, ogid := userIDs(t, "daemon")

	dir := openTempDir(t, "xdpns-ctl-")
	bin := copySelf(t, dir)
	run := filepath.Join(dir, "run") // the server's, where it creates its socket
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(run, uid, gid); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(run, "control.sock")
	port := freePort(t)
	writeFile(t, dir, "a.zone", zoneText("a.example.", 4, "203.0.113.10"))
	cfg := writeFile(t, dir, "xdpns.yaml", fmt.Sprintf(
		"server:\n  listen: [\"127.0.0.1:%d\"]\n  udp-sockets: 1\ncontrol:\n  socket: %s\nzones:\n  - {name: a.example., file: a.zone}\n", port, sock))

	var serveErr syncBuffer
	serve := exec.Command(bin, "serve", "-c", cfg)
	serve.Dir = dir
	serve.Env = append(os.Environ(), envRunMain+"=1")
	serve.Stdout, serve.Stderr = &serveErr, &serveErr
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = serve.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(serve.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("serve (as nobody) output:\n%s", serveErr.String())
		}
	})
	h := &serveHarness{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stderr: &serveErr}
	h.waitAnswer("www.a.example.", "203.0.113.10")
	h.waitLog("control socket")

	status := func(uid, gid int) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, "zone", "status", "-s", sock, "a.example.")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), envRunMain+"=1")
		if uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("run %s: %v", bin, err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}
	for _, c := range []struct {
		who      string
		uid, gid int
	}{{"nobody (the server's user)", uid, gid}, {"root", 0, 0}} {
		if code, stdout, stderr := status(c.uid, c.gid); code != exitOK || !regexpMatch(`(?m)^a\.example\.\s+file\s+4\s`, stdout) {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", c.who, code, stdout, stderr)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := status(ouid, ogid)
	want := fmt.Sprintf("error: permission denied: uid %d (daemon) is not allowed on this control socket; only root, the server's user (uid %d) is (set control.group to let a group in)", ouid, uid)
	if code != exitFail || !strings.Contains(stderr, want) || stdout != "" {
		t.Errorf("daemon on a 0666 socket: exit %d\nstdout: %s\nstderr: %s\nwant %q", code, stdout, stderr, want)
	}
	h.waitLog(fmt.Sprintf(`msg="control refused" component=control uid=%d`, ouid))
}
