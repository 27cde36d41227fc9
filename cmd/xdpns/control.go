package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/xfr"
)

// The control protocol: the client connects to the unix socket, writes one
// JSON request on one line, reads one JSON response on one line, and the
// server closes the connection. Only root and the configured group can
// connect (the socket is 0660 in a 0750 directory), and the server checks
// the client's credentials again (SO_PEERCRED, see authorize), so a socket
// whose mode or directory was loosened still refuses everyone else.

// Control commands.
const (
	ctlStatus     = "status"
	ctlRefresh    = "refresh"
	ctlRetransfer = "retransfer"
	ctlReload     = "reload"
	ctlXDPStats   = "xdp-stats"
	ctlXDPDetach  = "xdp-detach"
)

type ctlRequest struct {
	Command string `json:"command"`
	Zone    string `json:"zone,omitempty"`
	// Add is the zone of zone-add (runtime.go).
	Add *zoneAddArgs `json:"add,omitempty"`
}

type ctlResponse struct {
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Message string    `json:"message,omitempty"`
	Details []string  `json:"details,omitempty"` // e.g. every error of a reload
	Now     time.Time `json:"now"`               // the server's clock, for relative times
	Zones   []zoneRow `json:"zones,omitempty"`
	// XDP and Server answer xdp-stats.
	XDP    *xdpStatus      `json:"xdp,omitempty"`
	Server *serverCounters `json:"server,omitempty"`
	RRL    *rrlCounters    `json:"rrl,omitempty"` // xdp-stats, with server.rrl (rrl.go)
}

// zoneRow is one zone in `xdpns zone status`.
type zoneRow struct {
	Name string `json:"name"`
	// Kind is "file" or "secondary".
	Kind string `json:"kind"`
	// State is "file" for a file zone that is served, "failed" for one that
	// never loaded, or the xfr state: loading, ok, retrying, expired.
	State string `json:"state"`
	// Serial is meaningful when Served.
	Serial uint32 `json:"serial"`
	Served bool   `json:"served"`
	// Source is the primary of the last transfer, or the zone file.
	Source      string    `json:"source,omitempty"`
	FromDisk    bool      `json:"from_disk,omitempty"`
	LastRefresh time.Time `json:"last_refresh,omitzero"` // file zones: when loaded
	NextCheck   time.Time `json:"next_check,omitzero"`
	ExpireAt    time.Time `json:"expire_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Counters    *counters `json:"counters,omitempty"`
	// Runtime: added by `xdpns zone add` (or Owner), not in the YAML.
	Runtime bool   `json:"runtime,omitempty"`
	Owner   string `json:"owner,omitempty"`
	// Catalog is the consumed catalog that lists the zone (a member);
	// Template the template its settings come from ("" for the catalog's
	// own).
	Catalog  string `json:"catalog,omitempty"`
	Template string `json:"template,omitempty"`
}

// counters mirrors xfr.Counters with stable JSON names.
type counters struct {
	SOAQueries   uint64 `json:"soa_queries"`
	Incremental  uint64 `json:"ixfr"`
	Full         uint64 `json:"axfr"`
	UpToDate     uint64 `json:"up_to_date"`
	Failures     uint64 `json:"failures"`
	Notifies     uint64 `json:"notifies"`
	NotifyDenied uint64 `json:"notifies_refused"`
}

// controlServer serves the control socket for a daemon.
type controlServer struct {
	d    *daemon
	log  *slog.Logger
	ln   *net.UnixListener
	path string
	fi   os.FileInfo // the socket file we created, to remove only ours
	wg   sync.WaitGroup
	// Who may use the socket besides root: the server's own user, and the
	// members of control.group (gid -1: none configured).
	selfUID int
	gid     int
	group   string
	// procDir is /proc (tests point it elsewhere).
	procDir string
}

// startControl creates the socket (see listenControl) and serves it.
func startControl(d *daemon, c config.Control, log *slog.Logger) (*controlServer, error) {
	gid := -1
	if c.Group != "" {
		g, err := lookupGroup(c.Group)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: control.group: %w", d.cfgPath, c.GroupLine, err)
		}
		gid = g
	}
	ln, fi, err := listenControl(c.Socket, gid)
	if err != nil {
		return nil, err
	}
	s := &controlServer{d: d, log: log, ln: ln, path: c.Socket, fi: fi,
		selfUID: os.Geteuid(), gid: gid, group: c.Group, procDir: "/proc"}
	s.wg.Add(1)
	go s.serve()
	log.Info("control socket", "path", c.Socket, "group", c.Group)
	return s, nil
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", name, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("group %q: gid %q", name, g.Gid)
	}
	return gid, nil
}

// listenControl creates the socket at path, mode 0660, owned by us and by
// group gid (-1: our group). Its directory is created 0750 (same group)
// when missing. The socket is made under a temporary name and renamed into
// place once its mode and owner are set, so it is never reachable with
// looser permissions. A socket a live process still answers on is not
// taken over; a stale one is replaced.
func listenControl(path string, gid int) (*net.UnixListener, os.FileInfo, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, nil, fmt.Errorf("control socket directory: %w", err)
		}
		if err := os.Chmod(dir, 0o750); err != nil { // MkdirAll is subject to the umask
			return nil, nil, fmt.Errorf("control socket directory: %w", err)
		}
		if gid >= 0 {
			if err := os.Chown(dir, os.Geteuid(), gid); err != nil {
				return nil, nil, fmt.Errorf("control socket directory: %w", err)
			}
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, nil, fmt.Errorf("control socket %s: another process is serving it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
		}
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".xdpns-%d.sock", os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // it is renamed; Close removes it by its final name
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(tmp, 0o660); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, os.Geteuid(), gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, fi, nil
}

// Close stops accepting, waits for requests in progress and removes the
// socket file if it is still ours.
func (s *controlServer) Close() {
	s.ln.Close()
	s.wg.Wait()
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.fi) {
		os.Remove(s.path)
	}
}

func (s *controlServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept", "err", err)
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// Bounds on one control exchange.
const (
	ctlReadTimeout  = 10 * time.Second
	ctlWriteTimeout = 10 * time.Second
	ctlMaxRequest   = 4096
)

func (s *controlServer) handle(c *net.UnixConn) {
	defer c.Close()
	log := s.log
	cred, credErr := peerCred(c)
	var authErr error
	if credErr == nil {
		log = log.With("uid", cred.Uid, "pid", cred.Pid)
		authErr = s.authorize(cred)
	}
	_ = c.SetReadDeadline(time.Now().Add(ctlReadTimeout))
	// The request is read even from a client about to be refused, so that
	// it is not cut off while writing and gets the reason.
	line, err := bufio.NewReaderSize(c, ctlMaxRequest).ReadSlice('\n')
	var resp ctlResponse
	var req ctlRequest
	switch {
	case credErr != nil:
		resp.Error = "permission denied: the server cannot read the client's credentials: " + credErr.Error()
		log.Warn("control refused", "reason", "no peer credentials", "err", credErr)
	case authErr != nil:
		resp.Error = authErr.Error()
		_ = json.Unmarshal(line, &req)
		log.Warn("control refused", "gid", cred.Gid, "command", req.Command, "zone", req.Zone,
			"reason", "not root, the server's user or in control.group", "group", s.group)
	case err != nil:
		resp.Error = "bad request: " + err.Error()
	case json.Unmarshal(line, &req) != nil:
		resp.Error = "bad request: not JSON"
	default:
		lvl := slog.LevelInfo
		if req.Command == ctlXDPStats {
			lvl = slog.LevelDebug // polled by scripts
		}
		log.Log(context.Background(), lvl, "control", "command", req.Command, "zone", req.Zone)
		resp = s.d.control(req)
	}
	resp.Now = time.Now()
	out, _ := json.Marshal(resp)
	_ = c.SetWriteDeadline(time.Now().Add(ctlWriteTimeout))
	_, _ = c.Write(append(out, '\n'))
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil {
		return nil, err
	}
	return cred, cerr
}

// authorize decides whether the client with these credentials (its
// effective uid and gid when it connected) may use the socket: root, the
// server's own user, and the members of control.group, by their primary
// group or by a supplementary one (read from /proc/PID/status, trusted only
// while that process still has the uid that connected). Everyone else gets
// an error that says who may.
func (s *controlServer) authorize(cred *unix.Ucred) error {
	if cred.Uid == 0 || int(cred.Uid) == s.selfUID {
		return nil
	}
	if s.gid >= 0 {
		if int(cred.Gid) == s.gid {
			return nil
		}
		if groups, err := procGroups(s.procDir, cred.Pid, cred.Uid); err == nil && slices.Contains(groups, uint32(s.gid)) {
			return nil
		}
	}
	who := fmt.Sprintf("uid %d", cred.Uid)
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		who += " (" + u.Username + ")"
	}
	allowed := "root"
	if s.selfUID != 0 {
		allowed += fmt.Sprintf(", the server's user (uid %d)", s.selfUID)
	}
	if s.gid >= 0 {
		return fmt.Errorf("permission denied: %s is not allowed on this control socket; only %s and members of group %s (gid %d) are",
			who, allowed, s.group, s.gid)
	}
	return fmt.Errorf("permission denied: %s is not allowed on this control socket; only %s is (set control.group to let a group in)",
		who, allowed)
}

// procGroups reads the supplementary groups of process pid from
// proc/PID/status, provided its effective uid is uid (the pid could have
// been reused by another user's process since it connected).
func procGroups(proc string, pid int32, uid uint32) ([]uint32, error) {
	if pid <= 0 {
		return nil, errors.New("no pid (another pid namespace?)")
	}
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(int(pid)), "status"))
	if err != nil {
		return nil, err
	}
	var groups []uint32
	uidOK := false
	for _, l := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		switch key {
		case "Uid": // real, effective, saved, filesystem
			uidOK = len(f) >= 2 && f[1] == strconv.FormatUint(uint64(uid), 10)
		case "Groups":
			for _, g := range f {
				n, err := strconv.ParseUint(g, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("pid %d: Groups: %q", pid, val)
				}
				groups = append(groups, uint32(n))
			}
		}
	}
	if !uidOK {
		return nil, fmt.Errorf("pid %d no longer runs as uid %d", pid, uid)
	}
	return groups, nil
}

// control runs one request.
func (d *daemon) control(req ctlRequest) ctlResponse {
	name := ""
	if req.Zone != "" {
		name = dns.CanonicalName(req.Zone)
	}
	fail := func(format string, args ...any) ctlResponse {
		return ctlResponse{Error: fmt.Sprintf(format, args...)}
	}
	switch req.Command {
	case ctlStatus:
		rows := d.status(name)
		if name != "" && len(rows) == 0 {
			return fail("zone %s is not configured", name)
		}
		return ctlResponse{OK: true, Zones: rows}
	case ctlRefresh, ctlRetransfer:
		if name == "" {
			return fail("%s needs a zone name", req.Command)
		}
		mgr := d.manager()
		var err error
		if req.Command == ctlRefresh {
			err = mgr.Refresh(name)
		} else {
			err = mgr.Retransfer(name)
		}
		if errors.Is(err, xfr.ErrUnknownZone) {
			d.mu.Lock()
			fz := d.files[name]
			d.mu.Unlock()
			if fz != nil {
				return fail("zone %s is served from a file (%s); use `xdpns zone reload` after changing it", name, fz.conf.File)
			}
			return fail("zone %s is not configured", name)
		}
		if err != nil {
			return fail("%v", err)
		}
		what := "SOA check"
		if req.Command == ctlRetransfer {
			what = "full transfer (AXFR)"
		}
		return ctlResponse{OK: true, Message: fmt.Sprintf("%s of %s started; see `xdpns zone status %s`", what, name, name)}
	case ctlReload:
		res, err := d.reload()
		if err != nil {
			return ctlResponse{Error: err.Error(), Details: res.Errors}
		}
		msg := fmt.Sprintf("reloaded: %d zones, %d files loaded, %d failed", res.Zones, res.Loaded, res.Failed)
		switch {
		case res.Restarted:
			msg += "; secondary zones restarted with the new settings"
		case res.Added+res.Removed+res.Changed > 0:
			msg += fmt.Sprintf("; secondary zones: %d added, %d removed, %d changed, the others untouched", res.Added, res.Removed, res.Changed)
		}
		return ctlResponse{OK: res.Failed == 0 && !res.RuntimeBroken, Message: msg, Details: res.Errors}
	case ctlXDPStats:
		st, sc := d.xdpStatus(), d.serverCounters()
		return ctlResponse{OK: true, XDP: &st, Server: &sc, RRL: d.rrlCounters()}
	case ctlCookieRotate:
		return d.rotateCookie()
	case ctlZoneAdd:
		return d.controlAdd(name, req.Add)
	case ctlZoneRemove:
		return d.controlRemove(name)
	case ctlXDPDetach:
		if d.xdp == nil {
			msg := fmt.Sprintf("XDP is %s in this serve (%s)", d.xdpOff.State, d.xdpOff.Reason)
			if pin := d.started.XDP.Pin; pin != "" {
				if err := loader.RemovePins(pin); err != nil {
					return fail("%s; remove pins under %s: %v", msg, pin, err)
				}
				msg += "; pins under " + pin + " removed"
			}
			return ctlResponse{OK: true, Message: msg}
		}
		msg, err := d.xdp.detach()
		if err != nil {
			return fail("%v", err)
		}
		return ctlResponse{OK: true, Message: msg}
	}
	return fail("unknown command %q (want %s, %s, %s, %s, %s, %s, %s, %s or %s)", req.Command,
		ctlStatus, ctlRefresh, ctlRetransfer, ctlReload, ctlXDPStats, ctlXDPDetach, ctlCookieRotate, ctlZoneAdd, ctlZoneRemove)
}

// status lists the configured zones (or the one named), in configuration
// order, then the run-time zones, then the catalog members (by name).
func (d *daemon) status(name string) []zoneRow {
	d.mu.Lock()
	cfg, files, mgr := d.cfg, d.files, d.sec
	d.mu.Unlock()
	var rows []zoneRow
	for _, cz := range d.withMembers(d.effective(cfg)).Zones {
		if name != "" && cz.Name != name {
			continue
		}
		if !cz.Secondary() {
			row := zoneRow{Name: cz.Name, Kind: "file", State: "failed", Source: cz.File}
			if fz := files[cz.Name]; fz != nil {
				row.LastError = fz.lastErr
				if fz.served != nil {
					row.State, row.Served, row.Serial, row.LastRefresh = "file", true, fz.served.Zone.Serial(), fz.loaded
				}
			}
			rows = append(rows, row)
			continue
		}
		st, err := mgr.ZoneStatus(cz.Name)
		if err != nil {
			continue // a reload is replacing the Manager
		}
		c := st.Counters
		owner, runtime := d.isRuntime(cz.Name)
		rows = append(rows, zoneRow{
			Runtime: runtime, Owner: owner, Catalog: cz.MemberOf, Template: cz.Template,
			Name: st.Name, Kind: "secondary", State: string(st.State),
			Serial: st.Serial, Served: st.State != xfr.StateLoading,
			Source: st.Source, FromDisk: st.FromDisk,
			LastRefresh: st.LastRefresh, NextCheck: st.NextCheck, ExpireAt: st.ExpireAt,
			LastError: st.LastError,
			Counters: &counters{
				SOAQueries: c.SOAQueries, Incremental: c.Incremental, Full: c.Full, UpToDate: c.UpToDate,
				Failures: c.Failures, Notifies: c.Notifies, NotifyDenied: c.NotifyDenied,
			},
		})
	}
	return rows
}
