package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/testenv"
)

// unitFile is the example systemd unit whose capabilities the tests below
// check: enough for port 53 and XDP, and each of them needed.
const unitFile = "../../docs/xdpns.service"

// pinCap is what the unit's xdp.pin block adds: adopting pinned maps opens
// them by ID (BPF_MAP_GET_FD_BY_ID), which needs CAP_SYS_ADMIN.
const pinCap = "CAP_SYS_ADMIN"

// capBits are the capabilities the unit may name, by bit number.
var capBits = map[string]int{
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_ADMIN":        unix.CAP_NET_ADMIN,
	"CAP_NET_RAW":          unix.CAP_NET_RAW,
	"CAP_SYS_ADMIN":        unix.CAP_SYS_ADMIN,
	"CAP_SYS_RESOURCE":     unix.CAP_SYS_RESOURCE,
	"CAP_IPC_LOCK":         unix.CAP_IPC_LOCK,
	"CAP_DAC_OVERRIDE":     unix.CAP_DAC_OVERRIDE,
	"CAP_PERFMON":          unix.CAP_PERFMON,
	"CAP_BPF":              unix.CAP_BPF,
}

// unitCaps reads the capabilities of the unit's (uncommented)
// AmbientCapabilities= lines, and checks CapabilityBoundingSet= is the same
// set: with User=, the ambient set is what serve gets.
func unitCaps(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sets := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if key = strings.TrimSpace(key); !ok || (key != "AmbientCapabilities" && key != "CapabilityBoundingSet") {
			continue
		}
		for _, c := range strings.Fields(val) {
			if _, known := capBits[c]; !known {
				t.Fatalf("%s: %s=%s: %q is not in capBits (a ~ list, or a capability to add there)", unitFile, key, val, c)
			}
			sets[key] = append(sets[key], c)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	amb, bnd := sets["AmbientCapabilities"], sets["CapabilityBoundingSet"]
	slices.Sort(amb)
	slices.Sort(bnd)
	if len(amb) == 0 || !slices.Equal(amb, bnd) {
		t.Fatalf("%s: AmbientCapabilities %q and CapabilityBoundingSet %q should be the same set", unitFile, amb, bnd)
	}
	return amb
}

// capsTest is an xdpTest whose serve runs as user nobody with given
// capabilities only, as systemd runs it with the unit's User= and
// AmbientCapabilities=. Its directory (configuration, zones, control
// socket, the binary) is one nobody can use.
type capsTest struct {
	*xdpTest
	bin      string // the test binary, copied where nobody may run it
	uid, gid int    // nobody
}

func newCapsTest(t *testing.T) *capsTest {
	t.Helper()
	x := newXDPTest(t)
	testenv.RequireBinary(t, "setpriv")
	testenv.RequireBinary(t, "dig")
	uid, gid := userIDs(t, "nobody")
	// A directory of our own (t.TempDir is 0700 root), where nobody
	// creates the control socket.
	dir := openTempDir(t, "xdpns-caps-")
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	x.dir, x.cfg, x.sock = dir, filepath.Join(dir, "xdpns.yaml"), filepath.Join(dir, "ctl.sock")
	return &capsTest{xdpTest: x, bin: copySelf(t, dir), uid: uid, gid: gid}
}

// start runs serve in the server namespace as nobody with exactly caps:
// inheritable, ambient and bounding set, and no_new_privs (the unit's
// NoNewPrivileges=yes). envRunMain goes through env: t.Setenv is not for
// parallel tests.
func (c *capsTest) start(caps []string) *testenv.Process {
	c.t.Helper()
	set := "-all"
	for _, cp := range caps {
		set += ",+" + strings.ToLower(strings.TrimPrefix(cp, "CAP_"))
	}
	return testenv.StartProcess(c.t, "nsenter", "--net=/run/netns/"+c.lab.ServerNS, "--",
		"env", envRunMain+"=1",
		"setpriv", fmt.Sprintf("--reuid=%d", c.uid), fmt.Sprintf("--regid=%d", c.gid), "--clear-groups", "--no-new-privs",
		"--inh-caps="+set, "--ambient-caps="+set, "--bounding-set="+set, "--",
		c.bin, "serve", "-c", c.cfg)
}

// outcome waits until serve has exited or answers on its control socket
// (opened after XDP is attached or given up), and returns its XDP status
// (nil when it exited).
func (c *capsTest) outcome(p *testenv.Process) *ctlResponse {
	c.t.Helper()
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.Exited():
			return nil
		default:
		}
		r, err := c.stats()
		if err == nil {
			return &r
		}
		last = err
	}
	c.t.Fatalf("serve neither exited nor answered: %v", last)
	return nil
}

// serveAttached starts serve with caps and waits for XDP attached with
// one zone.
func (c *capsTest) serveAttached(caps []string) (*testenv.Process, ctlResponse) {
	c.t.Helper()
	p := c.start(caps)
	var st ctlResponse
	p.WaitFor(c.t, 10*time.Second, func() error {
		var err error
		if st, err = c.stats(); err != nil {
			return err
		}
		if st.XDP.State != "attached" || st.XDP.Zones != 1 {
			return fmt.Errorf("xdp %s (%s) with %d zones, want attached with 1", st.XDP.State, st.XDP.Reason, st.XDP.Zones)
		}
		return nil
	})
	return p, st
}

// checkCreds checks serve's uid and capability sets in /proc.
func (c *capsTest) checkCreds(pid int, caps []string) {
	c.t.Helper()
	var want uint64
	for _, cp := range caps {
		want |= 1 << capBits[cp]
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		c.t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	if uid := fmt.Sprint(c.uid); strings.Join(strings.Fields(got["Uid"]), " ") != strings.Repeat(uid+" ", 3)+uid {
		c.t.Errorf("serve's Uid: %q, want %s everywhere", got["Uid"], uid)
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapAmb", "CapBnd"} {
		if v, err := strconv.ParseUint(got[k], 16, 64); err != nil || v != want {
			c.t.Errorf("serve's %s: %s, want %016x (%s)", k, got[k], want, strings.Join(caps, " "))
		}
	}
	if got["NoNewPrivs"] != "1" {
		c.t.Errorf("serve's NoNewPrivs: %q", got["NoNewPrivs"])
	}
}

const capsZone = "  - {name: example.com., file: example.com.zone}\n"

// TestServeCaps: serve as an unprivileged user with the capabilities of
// docs/xdpns.service: it binds port 53, attaches XDP (native, on the veth
// lab), answers from XDP over IPv4 and IPv6, reloads on SIGHUP into new
// maps (map-in-map), and detaches at stop. Without any one of them it
// either cannot bind port 53 (exits) or falls back to userspace with the
// "not permitted" message; a capability whose absence changes nothing is
// not minimal and fails the test. With xdp.pin (the unit's commented
// block): the pins are made and used with the same set, but adopting them
// at the next start needs CAP_SYS_ADMIN.
func TestServeCaps(t *testing.T) {
	testenv.RequireRoot(t)
	caps := unitCaps(t)
	t.Logf("%s: %s", unitFile, strings.Join(caps, " "))

	t.Run("unit", func(t *testing.T) {
		t.Parallel()
		c := newCapsTest(t)
		c.zoneFile("example.com.", 1, "203.0.113.10")
		c.writeConfig("auto", "", capsZone)
		p, st := c.serveAttached(caps)
		c.checkCreds(p.Pid, caps)
		if len(st.XDP.Interfaces) != 1 || st.XDP.Interfaces[0] != (xdpInterface{Name: c.lab.ServerIf, Mode: "native"}) {
			t.Errorf("interfaces %+v, want %s native", st.XDP.Interfaces, c.lab.ServerIf)
		}
		s4, s6 := c.lab.Server4, c.lab.Server6
		c.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
		c.via("dig", s6, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
		c.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "tcp", "+tcp") // port 53 bound

		// SIGHUP (the unit's ExecReload): a new generation of maps.
		c.zoneFile("example.com.", 2, "203.0.113.11")
		if err := syscall.Kill(p.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		c.waitAnswer(s4, "www.example.com.", "203.0.113.11")
		c.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.11"}, "xdp")
		if after := c.mustStats().XDP; after.Loads+after.Updates <= st.XDP.Loads+st.XDP.Updates || after.Failures != 0 {
			t.Errorf("after SIGHUP: %d loads, %d updates, %d failures (before: %d, %d)", after.Loads, after.Updates, after.Failures, st.XDP.Loads, st.XDP.Updates)
		}
		c.stop(p)
		if !strings.Contains(p.Output(), "XDP detached") || c.attached() {
			t.Errorf("XDP not detached at stop:\n%s", p.Output())
		}
	})

	for _, drop := range caps {
		t.Run("without "+drop, func(t *testing.T) {
			t.Parallel()
			c := newCapsTest(t)
			c.zoneFile("example.com.", 1, "203.0.113.10")
			c.writeConfig("auto", "", capsZone)
			set := slices.DeleteFunc(slices.Clone(caps), func(cp string) bool { return cp == drop })
			p := c.start(set)
			st := c.outcome(p)
			switch {
			case st == nil: // exited: port 53
				if !strings.Contains(p.Output(), "bind: permission denied") {
					t.Errorf("serve exited, but not for port 53:\n%s", p.Output())
				}
				t.Logf("without %s: serve exits: bind: permission denied", drop)
				return
			case st.XDP.State == "attached":
				t.Fatalf("%s is not needed: XDP attached and port 53 bound without it; take it out of %s", drop, unitFile)
			case st.XDP.State != "not permitted":
				t.Fatalf("without %s: XDP %s (%s), want not permitted", drop, st.XDP.State, st.XDP.Reason)
			}
			t.Logf("without %s: %s", drop, st.XDP.Reason)
			c.checkCreds(p.Pid, set)
			for _, want := range []string{"XDP is not permitted here", "serving from userspace only"} {
				if !strings.Contains(p.Output(), want) {
					t.Errorf("log lacks %q:\n%s", want, p.Output())
				}
			}
			// Go answers, on port 53.
			c.via("dig", c.lab.Server4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "go")
			if c.attached() {
				t.Error("an XDP program is attached")
			}
			c.stop(p)
		})
	}

	t.Run("pinned", func(t *testing.T) {
		t.Parallel()
		if !strings.Contains(readFile(t, unitFile), "\n#AmbientCapabilities="+pinCap+"\n") {
			t.Fatalf("%s: the xdp.pin block does not add %s", unitFile, pinCap)
		}
		c := newCapsTest(t)
		pin := c.unitPinDir()
		c.zoneFile("example.com.", 1, "203.0.113.10")
		c.writeConfig("auto", pin, capsZone)
		s4 := c.lab.Server4

		// The unit's set pins maps and link.
		p, st := c.serveAttached(caps)
		if st.XDP.Adopted || st.XDP.Pin != pin {
			t.Errorf("first serve: %+v", st.XDP)
		}
		c.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
		c.stop(p)
		if !c.attached() {
			t.Fatal("pinned XDP not left attached")
		}

		// Without CAP_SYS_ADMIN the next serve cannot adopt them: it
		// removes them and starts afresh (XDP off until the zones load).
		p, st = c.serveAttached(caps)
		if st.XDP.Adopted {
			t.Errorf("adopted the pins without %s: drop it from the unit's xdp.pin block", pinCap)
		}
		for _, want := range []string{"XDP pinned by an earlier serve removed", "adopt answer index: operation not permitted"} {
			if !strings.Contains(p.Output(), want) {
				t.Errorf("log lacks %q:\n%s", want, p.Output())
			}
		}
		c.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
		c.stop(p)

		// With it, adopted.
		p, st = c.serveAttached(append(slices.Clone(caps), pinCap))
		if !st.XDP.Adopted || !strings.Contains(p.Output(), "adopted pinned XDP answers") {
			t.Errorf("not adopted with %s: %+v\n%s", pinCap, st.XDP, p.Output())
		}
		c.via("dig", s4, "www.example.com.", "NOERROR", []string{"A 203.0.113.10"}, "xdp")
		c.stop(p)
	})
}

// unitPinDir lays out what the unit's xdp.pin block gives serve, and
// returns the pin directory: a bpffs mounted mode 0700 as systemd mounts
// /sys/fs/bpf (nobody cannot look into it); in it a directory owned by
// nobody (the ExecStartPre=+ install -d); and that directory bound into a
// directory anyone may traverse (TemporaryFileSystem=/sys/fs/bpf and
// BindPaths=/sys/fs/bpf/xdpns). serve pins under DIR/pins there.
func (c *capsTest) unitPinDir() string {
	c.t.Helper()
	base, err := os.MkdirTemp("", "xdpns-caps-bpf-")
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		c.t.Fatal(err)
	}
	bpf, view := filepath.Join(base, "bpffs"), filepath.Join(base, "view")
	own, bound := filepath.Join(bpf, "xdpns"), filepath.Join(view, "xdpns")
	for _, d := range []string{bpf, view, bound} {
		if err := os.Mkdir(d, 0o755); err != nil {
			c.t.Fatal(err)
		}
	}
	pin := filepath.Join(bound, "pins")
	c.t.Cleanup(func() {
		loader.RemovePins(filepath.Join(own, "pins")) // detaches the pinned link
		unix.Unmount(bound, unix.MNT_DETACH)
		unix.Unmount(bpf, unix.MNT_DETACH)
		os.RemoveAll(base)
	})
	if err := unix.Mount("bpf", bpf, "bpf", 0, "mode=0700"); err != nil {
		c.t.Fatalf("mount bpffs: %v", err)
	}
	if err := os.Mkdir(own, 0o700); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chown(own, c.uid, c.gid); err != nil {
		c.t.Fatal(err)
	}
	if err := unix.Mount(own, bound, "", unix.MS_BIND, ""); err != nil {
		c.t.Fatalf("bind %s: %v", own, err)
	}
	return pin
}
