package loader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xdpns/xdpns/loader/nsrun"
	"golang.org/x/sys/unix"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// lab is a server and a client network namespace joined by a veth pair
// (DESIGN.md "Test lab"): addresses from 198.18.0.0/15 and 2001:2::/48, no
// default route, a pass-all XDP program on the client end (native XDP_TX
// on veth needs one on the peer). Both namespaces are named (/run/netns) so
// that tools run inside through nsenter; t.Cleanup deletes them, and the
// interfaces and XDP programs go with them.
type lab struct {
	t                      *testing.T
	server, client         netns.NsHandle
	serverNS, clientNS     string
	serverIf, clientIf     string
	server4, client4       netip.Addr
	server6, client6       netip.Addr
	passProg               *ebpf.Program
	serverLinks, clientLns []link.Link
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	id := fmt.Sprintf("%d-%x", os.Getpid(), rand.Uint32())
	l := &lab{
		t:        t,
		serverNS: "xdpns-s-" + id, clientNS: "xdpns-c-" + id,
		serverIf: "xs0", clientIf: "xc0",
		server4: netip.MustParseAddr("198.18.0.1"), client4: netip.MustParseAddr("198.18.0.2"),
		server6: netip.MustParseAddr("2001:2::1"), client6: netip.MustParseAddr("2001:2::2"),
		server: -1, client: -1,
	}
	t.Cleanup(l.close)
	nss, err := nsrun.NewNamed(l.serverNS, l.clientNS)
	l.server, l.client = nss[0], nss[1]
	if err != nil {
		t.Fatal(err)
	}
	hs, err := netlink.NewHandleAt(l.server)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	hc, err := netlink.NewHandleAt(l.client)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.serverIf}, PeerName: l.clientIf, PeerNamespace: netlink.NsFd(int(l.client))}
	if err := hs.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, side := range []struct {
		h      *netlink.Handle
		ifname string
		a4, a6 netip.Addr
	}{{hs, l.serverIf, l.server4, l.server6}, {hc, l.clientIf, l.client4, l.client6}} {
		lk, err := side.h.LinkByName(side.ifname)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []struct {
			ip   netip.Addr
			bits int
		}{{side.a4, 24}, {side.a6, 64}} {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.ip.AsSlice(), Mask: net.CIDRMask(a.bits, a.ip.BitLen())}, Flags: unix.IFA_F_NODAD}
			if err := side.h.AddrAdd(lk, addr); err != nil {
				t.Fatalf("address %s on %s: %v", a.ip, side.ifname, err)
			}
		}
		if err := side.h.LinkSetUp(lk); err != nil {
			t.Fatal(err)
		}
		lo, err := side.h.LinkByName("lo")
		if err == nil {
			side.h.LinkSetUp(lo)
		}
	}
	l.passProg, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		t.Fatal(err)
	}
	l.inClient(func() error {
		iface, err := net.InterfaceByName(l.clientIf)
		if err != nil {
			return err
		}
		lk, err := link.AttachXDP(link.XDPOptions{Program: l.passProg, Interface: iface.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("pass-all xdp on the client end: %w", err)
		}
		l.clientLns = append(l.clientLns, lk)
		return nil
	})
	return l
}

func (l *lab) close() {
	for _, lk := range append(l.serverLinks, l.clientLns...) {
		lk.Close()
	}
	if l.passProg != nil {
		l.passProg.Close()
	}
	for _, ns := range []struct {
		h    netns.NsHandle
		name string
	}{{l.server, l.serverNS}, {l.client, l.clientNS}} {
		if ns.h >= 0 {
			ns.h.Close()
			if err := netns.DeleteNamed(ns.name); err != nil {
				l.t.Errorf("delete netns %s: %v", ns.name, err)
			}
		}
	}
}

// in runs f on a locked thread inside ns. Sockets and XDP links made there
// belong to ns and may be used from any thread afterwards.
func (l *lab) in(ns netns.NsHandle, f func() error) {
	l.t.Helper()
	err := nsrun.In(ns, f)
	if err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) inServer(f func() error) { l.in(l.server, f) }
func (l *lab) inClient(f func() error) { l.in(l.client, f) }

// attach attaches x to the server end of the veth in mode; the link goes
// away with the lab (or earlier through detach).
func (l *lab) attach(x *XDP, mode Mode) link.Link {
	l.t.Helper()
	var lk link.Link
	l.inServer(func() error {
		var err error
		var got Mode
		lk, got, err = x.Attach(l.serverIf, mode)
		if err == nil && got != mode {
			err = fmt.Errorf("attached in %s mode, want %s", got, mode)
		}
		return err
	})
	l.serverLinks = append(l.serverLinks, lk)
	return lk
}

// clientRun runs a program inside the client namespace (nsenter, which
// keeps /sys as it is, unlike ip netns exec), bounded in time.
func (l *lab) clientRun(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + l.clientNS, name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dial opens a UDP socket in the client namespace to the server's address.
func (l *lab) dial(network string, to netip.AddrPort) net.Conn {
	l.t.Helper()
	var c net.Conn
	l.inClient(func() error {
		var err error
		c, err = net.Dial(network, to.String())
		return err
	})
	l.t.Cleanup(func() { c.Close() })
	return c
}
