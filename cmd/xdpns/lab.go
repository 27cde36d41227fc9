package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xdpns/xdpns/loader/nsrun"
	"golang.org/x/sys/unix"
)

// vethLab is a server and a client network namespace joined by a veth
// pair (docs: DESIGN.md "Test lab"), for the demo and the tests: addresses
// from 198.18.0.0/15 and 2001:2::/48, no default route, and a pass-all
// XDP program on the client end (native XDP_TX on veth needs a program on
// the peer, and a veth without one can wedge). Both namespaces are named
// (/run/netns) so that programs run inside through nsenter, which keeps
// /sys (and bpffs) as it is, unlike `ip netns exec`. Close deletes them;
// the interfaces and the XDP programs on them go with them.
type vethLab struct {
	ServerNS, ClientNS string // names under /run/netns
	ServerIf, ClientIf string
	Server4, Client4   netip.Addr
	Server6, Client6   netip.Addr

	server, client netns.NsHandle
	pass           *ebpf.Program
	clientLink     link.Link
}

// Lab addresses (the benchmarking ranges).
var (
	labServer4 = netip.MustParseAddr("198.18.0.1")
	labClient4 = netip.MustParseAddr("198.18.0.2")
	labServer6 = netip.MustParseAddr("2001:2::1")
	labClient6 = netip.MustParseAddr("2001:2::2")
)

// xdpPass is XDP_PASS.
const xdpPass = 2

// newVethLab builds a lab whose namespace names start with prefix. On
// error nothing is left behind. Labs of the same prefix left by a process
// that no longer runs (killed before it could clean up) are removed first.
func newVethLab(prefix string) (l *vethLab, err error) {
	removeStaleLabs(prefix)
	id := fmt.Sprintf("%d-%x", os.Getpid(), rand.Uint32()&0xffffff)
	l = &vethLab{
		ServerNS: prefix + "-s-" + id, ClientNS: prefix + "-c-" + id,
		ServerIf: "xs0", ClientIf: "xc0",
		Server4: labServer4, Client4: labClient4, Server6: labServer6, Client6: labClient6,
		server: -1, client: -1,
	}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	nss, err := nsrun.NewNamed(l.ServerNS, l.ClientNS)
	l.server, l.client = nss[0], nss[1]
	if err != nil {
		return l, err
	}
	hs, err := netlink.NewHandleAt(l.server)
	if err != nil {
		return l, err
	}
	defer hs.Close()
	hc, err := netlink.NewHandleAt(l.client)
	if err != nil {
		return l, err
	}
	defer hc.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.ServerIf}, PeerName: l.ClientIf, PeerNamespace: netlink.NsFd(int(l.client))}
	if err := hs.LinkAdd(veth); err != nil {
		return l, fmt.Errorf("add veth: %w", err)
	}
	for _, side := range []struct {
		h      *netlink.Handle
		ifname string
		a4, a6 netip.Addr
	}{{hs, l.ServerIf, l.Server4, l.Server6}, {hc, l.ClientIf, l.Client4, l.Client6}} {
		lk, err := side.h.LinkByName(side.ifname)
		if err != nil {
			return l, err
		}
		for _, a := range []struct {
			ip   netip.Addr
			bits int
		}{{side.a4, 24}, {side.a6, 64}} {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.ip.AsSlice(), Mask: net.CIDRMask(a.bits, a.ip.BitLen())}, Flags: unix.IFA_F_NODAD}
			if err := side.h.AddrAdd(lk, addr); err != nil {
				return l, fmt.Errorf("address %s on %s: %w", a.ip, side.ifname, err)
			}
		}
		if err := side.h.LinkSetUp(lk); err != nil {
			return l, err
		}
		if lo, err := side.h.LinkByName("lo"); err == nil {
			if err := side.h.LinkSetUp(lo); err != nil {
				return l, err
			}
		}
	}
	l.pass, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		return l, fmt.Errorf("pass-all xdp program: %w", err)
	}
	err = l.InClient(func() error {
		iface, err := net.InterfaceByName(l.ClientIf)
		if err != nil {
			return err
		}
		l.clientLink, err = link.AttachXDP(link.XDPOptions{Program: l.pass, Interface: iface.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("pass-all xdp on the client end: %w", err)
		}
		return nil
	})
	return l, err
}

// Close removes the namespaces (and with them the veth pair and every XDP
// program attached to it).
func (l *vethLab) Close() error {
	if l.clientLink != nil {
		l.clientLink.Close()
	}
	if l.pass != nil {
		l.pass.Close()
	}
	var errs []error
	for _, ns := range []struct {
		h    netns.NsHandle
		name string
	}{{l.server, l.ServerNS}, {l.client, l.ClientNS}} {
		if ns.h >= 0 {
			ns.h.Close()
			if err := netns.DeleteNamed(ns.name); err != nil {
				errs = append(errs, fmt.Errorf("delete network namespace %s: %w", ns.name, err))
			}
		}
	}
	l.server, l.client = -1, -1
	return errors.Join(errs...)
}

// removeStaleLabs deletes the namespaces PREFIX-{s,c}-PID-ID whose PID is
// not a running process.
func removeStaleLabs(prefix string) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	re := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `-[sc]-(\d+)-[0-9a-f]+$`)
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		_ = netns.DeleteNamed(e.Name())
	}
}

// InServer and InClient run f inside the server or client namespace.
func (l *vethLab) InServer(f func() error) error { return nsrun.In(l.server, f) }
func (l *vethLab) InClient(f func() error) error { return nsrun.In(l.client, f) }

// DialClient opens a connection from the client namespace.
func (l *vethLab) DialClient(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.InClient(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// DialServer opens a connection from the server namespace (to a server on
// its loopback, such as the demo's named).
func (l *vethLab) DialServer(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.InServer(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// nsArgs returns the program and arguments that run name inside the
// named network namespace: nsenter, which execs it (the pid is the
// program's) and keeps the mount namespace, so /sys/fs/bpf and unix
// sockets are shared.
func nsArgs(ns, name string, args ...string) (string, []string, error) {
	nsenter, err := lookPath("nsenter")
	if err != nil {
		return "", nil, fmt.Errorf("%w (Debian package util-linux)", err)
	}
	bin, err := lookPath(name)
	if err != nil {
		bin = name
	}
	return nsenter, append([]string{"--net=/run/netns/" + ns, "--", bin}, args...), nil
}

// labTimeout bounds one exchange with a server in the lab.
const labTimeout = 2 * time.Second

// selfEnv is added to the environment of this program started again (the
// demo's serve); tests set it so that the test binary runs xdpns.
var selfEnv []string

// selfPath is this program's executable.
func selfPath() (string, error) { return os.Executable() }
