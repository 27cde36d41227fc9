package loader

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// Mode is how the program is attached to an interface.
type Mode int

const (
	// ModeAuto tries native, then generic.
	ModeAuto Mode = iota
	// ModeNative runs in the driver (XDP_FLAGS_DRV_MODE).
	ModeNative
	// ModeGeneric runs after the skb is built (XDP_FLAGS_SKB_MODE): slower,
	// works on every interface.
	ModeGeneric
)

var modeNames = map[Mode]string{ModeAuto: "auto", ModeNative: "native", ModeGeneric: "generic"}

func (m Mode) String() string { return modeNames[m] }

// ParseMode reads "auto", "native" or "generic".
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if n == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("xdp mode %q: want auto, native or generic", s)
}

// ErrNotPermitted: the process may not load or attach XDP programs (no
// CAP_BPF/CAP_NET_ADMIN/CAP_PERFMON, e.g. in a container). Callers log it and serve from
// userspace alone: the same answers, slower.
var ErrNotPermitted = errors.New("xdp not permitted")

func permission(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", ErrNotPermitted, err)
	}
	return err
}

// Attach attaches the program to the interface ifname and returns the link
// and the mode that took. Without PinPath, closing the link detaches. With
// it, the link is pinned and outlives the process (RemovePins detaches);
// a link already pinned for ifname is taken over and given this program,
// in the mode it was attached in, unless mode asks for another one: then it
// is detached and the program attached anew.
func (x *XDP) Attach(ifname string, mode Mode) (link.Link, Mode, error) {
	if x.cfg.PinPath != "" {
		return x.attachPinned(ifname, mode)
	}
	return x.attach(ifname, mode)
}

func (x *XDP) attach(ifname string, mode Mode) (link.Link, Mode, error) {
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, mode, fmt.Errorf("attach xdp to %s: %w", ifname, err)
	}
	attach := func(m Mode) (link.Link, error) {
		flags := link.XDPDriverMode
		if m == ModeGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: x.objs.XdpnsAnswer, Interface: iface.Index, Flags: flags})
		if err != nil {
			return nil, fmt.Errorf("attach xdp (%s) to %s: %w", m, ifname, permission(err))
		}
		return l, nil
	}
	if mode != ModeAuto {
		l, err := attach(mode)
		return l, mode, err
	}
	l, err := attach(ModeNative)
	if err == nil {
		return l, ModeNative, nil
	}
	if errors.Is(err, ErrNotPermitted) {
		return nil, ModeNative, err
	}
	l, gerr := attach(ModeGeneric)
	if gerr != nil {
		return nil, ModeGeneric, errors.Join(err, gerr)
	}
	return l, ModeGeneric, nil
}

// AttachedMode reads from the kernel how an XDP program is attached to
// ifname: ModeNative or ModeGeneric (offloaded counts as native), or an
// error when none is.
func AttachedMode(ifname string) (Mode, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return ModeAuto, fmt.Errorf("xdp mode of %s: %w", ifname, err)
	}
	x := l.Attrs().Xdp
	switch {
	case x == nil || !x.Attached:
		return ModeAuto, fmt.Errorf("xdp mode of %s: no program attached", ifname)
	case x.AttachMode == nl.XDP_ATTACHED_SKB:
		return ModeGeneric, nil
	}
	return ModeNative, nil
}
