package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"

	"github.com/xdpns/xdpns/loader/nsrun"
	"golang.org/x/sys/unix"
)

// Veth is the lab of DESIGN.md ("Facts measured on this machine kind"): a
// server and a client network namespace joined by one veth pair, tuned so
// that a benchmark on a 2-vCPU machine is fair:
//
//   - threaded NAPI on both ends, GRO on (it turns on veth's NAPI, which
//     native XDP needs anyway), TSO off: the packet work of each end runs
//     in a kernel thread of its own that can be pinned and measured,
//     instead of in softirq time charged to whoever was running;
//   - addresses from 198.18.0.0/15 and 2001:2::/48, no default route,
//     static neighbour entries (no ARP or ND during a run);
//   - a pass-all XDP program on the client end whenever the load generator
//     does not have its own there: without one, a veth pair can wedge after
//     the server end's XDP_TX.
//
// Both namespaces are named (/run/netns) so that programs run inside with
// nsenter, which keeps /sys and bpffs as they are (ip netns exec remounts
// /sys). Close deletes the namespaces, and the interfaces and any XDP
// program on them go with them; stop the processes running inside first.
type Veth struct {
	ServerNS, ClientNS   string // names under /run/netns
	ServerIf, ClientIf   string // unique on the machine (NAPI threads are named after them)
	Server4, Client4     netip.Addr
	Server6, Client6     netip.Addr
	ServerMAC, ClientMAC net.HardwareAddr

	server, client netns.NsHandle
	pass           *ebpf.Program
}

// Lab addresses (the benchmarking ranges); every Veth uses the same ones,
// each in its own namespaces.
var (
	VethServer4 = netip.MustParseAddr("198.18.0.1")
	VethClient4 = netip.MustParseAddr("198.18.0.2")
	VethServer6 = netip.MustParseAddr("2001:2::1")
	VethClient6 = netip.MustParseAddr("2001:2::2")
)

// xdpPass is XDP_PASS.
const xdpPass = 2

// maxPrefix keeps "napi/" + interface name + "-" within the 15 characters
// of a kernel thread's name, so that the NAPI threads of an interface can
// be told from another's by name.
const maxPrefix = 4

// NewVeth builds a lab. prefix (at most 4 characters, e.g. "xl0") starts the
// namespace and interface names, followed by a random id. On error nothing
// is left behind.
func NewVeth(prefix string) (v *Veth, err error) {
	if len(prefix) > maxPrefix || prefix == "" {
		return nil, fmt.Errorf("veth prefix %q: 1 to %d characters", prefix, maxPrefix)
	}
	id := fmt.Sprintf("%04x", rand.Uint32()&0xffff)
	v = &Veth{
		ServerNS: fmt.Sprintf("xdpns-%s-%s-s-%d", prefix, id, os.Getpid()),
		ClientNS: fmt.Sprintf("xdpns-%s-%s-c-%d", prefix, id, os.Getpid()),
		ServerIf: prefix + "s" + id, ClientIf: prefix + "c" + id,
		Server4: VethServer4, Client4: VethClient4, Server6: VethServer6, Client6: VethClient6,
		server: -1, client: -1,
	}
	defer func() {
		if err != nil {
			v.Close()
			v = nil
		}
	}()
	nss, err := nsrun.NewNamed(v.ServerNS, v.ClientNS)
	v.server, v.client = nss[0], nss[1]
	if err != nil {
		return v, err
	}
	if err := v.build(); err != nil {
		return v, err
	}
	if err := v.tune(); err != nil {
		return v, err
	}
	v.pass, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "xdplab_pass",
		Type:         ebpf.XDP,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		return v, fmt.Errorf("pass-all XDP program: %w", err)
	}
	return v, v.ClientPass(true)
}

// build makes the pair, addresses, neighbours and routes.
func (v *Veth) build() error {
	hs, err := netlink.NewHandleAt(v.server)
	if err != nil {
		return err
	}
	defer hs.Close()
	hc, err := netlink.NewHandleAt(v.client)
	if err != nil {
		return err
	}
	defer hc.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.ServerIf}, PeerName: v.ClientIf, PeerNamespace: netlink.NsFd(int(v.client))}
	if err := hs.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", v.ServerIf, err)
	}
	type side struct {
		h      *netlink.Handle
		ifname string
		a4, a6 netip.Addr
		mac    *net.HardwareAddr
	}
	sides := []side{{hs, v.ServerIf, v.Server4, v.Server6, &v.ServerMAC}, {hc, v.ClientIf, v.Client4, v.Client6, &v.ClientMAC}}
	for _, s := range sides {
		lk, err := s.h.LinkByName(s.ifname)
		if err != nil {
			return err
		}
		*s.mac = lk.Attrs().HardwareAddr
		for _, a := range []struct {
			ip   netip.Addr
			bits int
		}{{s.a4, 24}, {s.a6, 64}} {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.ip.AsSlice(), Mask: net.CIDRMask(a.bits, a.ip.BitLen())}, Flags: unix.IFA_F_NODAD}
			if err := s.h.AddrAdd(lk, addr); err != nil {
				return fmt.Errorf("address %s on %s: %w", a.ip, s.ifname, err)
			}
		}
		if err := s.h.LinkSetUp(lk); err != nil {
			return err
		}
		if lo, err := s.h.LinkByName("lo"); err == nil {
			if err := s.h.LinkSetUp(lo); err != nil {
				return err
			}
		}
	}
	// Each end knows the other's MAC for good.
	for i, s := range sides {
		peer := sides[1-i]
		lk, err := s.h.LinkByName(s.ifname)
		if err != nil {
			return err
		}
		for _, ip := range []netip.Addr{peer.a4, peer.a6} {
			fam := netlink.FAMILY_V4
			if ip.Is6() {
				fam = netlink.FAMILY_V6
			}
			n := &netlink.Neigh{LinkIndex: lk.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: *peer.mac}
			if err := s.h.NeighSet(n); err != nil {
				return fmt.Errorf("neighbour %s on %s: %w", ip, s.ifname, err)
			}
		}
	}
	return nil
}

// tune sets GRO on and TSO off on both ends, then threaded NAPI.
func (v *Veth) tune() error {
	for _, e := range []struct {
		ns     netns.NsHandle
		ifname string
	}{{v.server, v.ServerIf}, {v.client, v.ClientIf}} {
		err := nsrun.In(e.ns, func() error {
			if err := setOffload(e.ifname, ethtoolSTSO, false); err != nil {
				return fmt.Errorf("TSO off on %s: %w", e.ifname, err)
			}
			if err := setOffload(e.ifname, ethtoolSGRO, true); err != nil {
				return fmt.Errorf("GRO on on %s: %w", e.ifname, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// /sys/class/net shows the namespace of whoever mounted /sys: ip netns
	// exec mounts the namespace's own.
	for _, e := range []struct{ ns, ifname string }{{v.ServerNS, v.ServerIf}, {v.ClientNS, v.ClientIf}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, "sh", "-c",
			fmt.Sprintf("echo 1 > /sys/class/net/%s/threaded", e.ifname)).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("threaded NAPI on %s: %v: %s", e.ifname, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// Close deletes the namespaces, and with them the veth pair and every XDP
// program attached to it. Safe to call more than once.
func (v *Veth) Close() error {
	if v.pass != nil {
		v.pass.Close()
		v.pass = nil
	}
	var errs []error
	for _, ns := range []struct {
		h    *netns.NsHandle
		name string
	}{{&v.server, v.ServerNS}, {&v.client, v.ClientNS}} {
		if *ns.h >= 0 {
			ns.h.Close()
			if err := netns.DeleteNamed(ns.name); err != nil {
				errs = append(errs, fmt.Errorf("delete network namespace %s: %w", ns.name, err))
			}
			*ns.h = -1
		}
	}
	return errors.Join(errs...)
}

// ClientPass attaches (on) or detaches the pass-all program on the client
// end, in native mode through netlink (not a bpf_link): a load generator
// that brings its own program (kxdpgun) replaces it, and attaching it
// again afterwards replaces whatever the generator left behind.
func (v *Veth) ClientPass(on bool) error {
	return nsrun.In(v.client, func() error {
		lk, err := netlink.LinkByName(v.ClientIf)
		if err != nil {
			return err
		}
		fd := -1
		if on {
			fd = v.pass.FD()
		}
		if err := netlink.LinkSetXdpFdWithFlags(lk, fd, nl.XDP_FLAGS_DRV_MODE); err != nil {
			return fmt.Errorf("pass-all XDP on %s (%v): %w", v.ClientIf, on, err)
		}
		return nil
	})
}

// ServerXDP reports the XDP program on the server end: its id and the mode
// ("native", "generic", or "" when there is none).
func (v *Veth) ServerXDP() (id uint32, mode string, err error) {
	err = nsrun.In(v.server, func() error {
		lk, err := netlink.LinkByName(v.ServerIf)
		if err != nil {
			return err
		}
		x := lk.Attrs().Xdp
		if x == nil || !x.Attached {
			return nil
		}
		id = x.ProgId
		switch x.AttachMode {
		case nl.XDP_ATTACHED_DRV:
			mode = "native"
		case nl.XDP_ATTACHED_SKB:
			mode = "generic"
		default:
			mode = fmt.Sprintf("mode %d", x.AttachMode)
		}
		return nil
	})
	return id, mode, err
}

// InServer and InClient run f on a locked thread inside the namespace.
// Sockets made there belong to it and may be used from any thread
// afterwards.
func (v *Veth) InServer(f func() error) error { return nsrun.In(v.server, f) }
func (v *Veth) InClient(f func() error) error { return nsrun.In(v.client, f) }

// ServerArgv and ClientArgv prefix argv with nsenter into the namespace.
// nsenter execs the program, so the pid started is the program's (put
// taskset in front, it execs too).
func (v *Veth) ServerArgv(argv ...string) []string { return nsenter(v.ServerNS, argv) }
func (v *Veth) ClientArgv(argv ...string) []string { return nsenter(v.ClientNS, argv) }

func nsenter(ns string, argv []string) []string {
	return append([]string{"nsenter", "--net=/run/netns/" + ns}, argv...)
}

// NAPIThreads returns the pids of the threaded-NAPI kernel threads of the
// server end and of the client end ("napi/IFNAME-ID"). veth has one NAPI
// per receive queue: one here.
func (v *Veth) NAPIThreads() (server, client []int, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue
		}
		comm := strings.TrimSpace(string(b))
		switch {
		case strings.HasPrefix(comm, "napi/"+v.ServerIf+"-"):
			server = append(server, pid)
		case strings.HasPrefix(comm, "napi/"+v.ClientIf+"-"):
			client = append(client, pid)
		}
	}
	if len(server) == 0 || len(client) == 0 {
		return server, client, fmt.Errorf("no threaded NAPI kernel thread for %s or %s (server %v, client %v)", v.ServerIf, v.ClientIf, server, client)
	}
	return server, client, nil
}

// PinNAPI pins the server end's NAPI threads to serverCPU and the client
// end's to clientCPU (-1: leave as is), and returns their pids. The threads
// live as long as NAPI is on (GRO keeps it on while XDP programs come and
// go), but call it before every measurement: it is cheap.
func (v *Veth) PinNAPI(serverCPU, clientCPU int) (server, client []int, err error) {
	server, client, err = v.NAPIThreads()
	if err != nil {
		return nil, nil, err
	}
	for _, g := range []struct {
		pids []int
		cpu  int
	}{{server, serverCPU}, {client, clientCPU}} {
		if g.cpu < 0 {
			continue
		}
		var set unix.CPUSet
		set.Set(g.cpu)
		for _, pid := range g.pids {
			if err := unix.SchedSetaffinity(pid, &set); err != nil {
				return nil, nil, fmt.Errorf("pin NAPI thread %d to CPU %d: %w", pid, g.cpu, err)
			}
		}
	}
	return server, client, nil
}

// AddClientAddr gives the client end a further IPv4 address a (/32), and
// the server end a route to it over the pair with a static neighbour
// entry, so that a generator can send from another client network (an
// RRL budget is per /24) and the server's kernel can answer it too, not
// only its XDP program (which swaps the addresses).
func (v *Veth) AddClientAddr(a netip.Addr) error {
	if !a.Is4() {
		return fmt.Errorf("client address %s: IPv4 only", a)
	}
	hs, err := netlink.NewHandleAt(v.server)
	if err != nil {
		return err
	}
	defer hs.Close()
	hc, err := netlink.NewHandleAt(v.client)
	if err != nil {
		return err
	}
	defer hc.Close()
	cl, err := hc.LinkByName(v.ClientIf)
	if err != nil {
		return err
	}
	host := &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}
	if err := hc.AddrAdd(cl, &netlink.Addr{IPNet: host}); err != nil {
		return fmt.Errorf("address %s on %s: %w", a, v.ClientIf, err)
	}
	sl, err := hs.LinkByName(v.ServerIf)
	if err != nil {
		return err
	}
	if err := hs.RouteAdd(&netlink.Route{LinkIndex: sl.Attrs().Index, Dst: host, Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("route to %s on %s: %w", a, v.ServerIf, err)
	}
	n := &netlink.Neigh{LinkIndex: sl.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, IP: a.AsSlice(), HardwareAddr: v.ClientMAC}
	if err := hs.NeighSet(n); err != nil {
		return fmt.Errorf("neighbour %s on %s: %w", a, v.ServerIf, err)
	}
	return nil
}
