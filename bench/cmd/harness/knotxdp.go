package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// afXDPRefused says why Knot's XDP (knotd's `xdp: listen` and kxdpgun)
// cannot run on this kernel, "" when it can. Both load libknot's XDP
// program, which calls bpf_xdp_adjust_meta; some kernels refuse that
// helper to every XDP program ("program of this type cannot use helper
// bpf_xdp_adjust_meta#54", seen on 6.18.44-fc-v1300), and then every
// knot-xdp setup and kxdpgun run would fail. The probe loads the smallest
// program that calls the helper, so the harness finds out before it
// builds a lab. xdpns's own program does not use the helper.
func afXDPRefused() string {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R2, -4), // R1 is the context already
			asm.FnXdpAdjustMeta.Call(),
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		return fmt.Sprintf("this kernel refuses bpf_xdp_adjust_meta to XDP programs, which Knot's XDP program calls (%v)", err)
	}
	p.Close()
	return ""
}

// withoutAFXDP changes o for a kernel where Knot's XDP cannot run: the
// knot-xdp server becomes knot-udp (dropped if knot-udp is already in the
// list, so Knot is still measured, over sockets), and kxdpgun's runs are
// made with dnsperf (o.noAFXDP, read by o.loads). It returns the note
// for the report.
func (o *options) withoutAFXDP(why string) string {
	o.noAFXDP = why
	var srv []string
	for _, n := range o.serverList() {
		if n == "knot-xdp" {
			n = "knot-udp"
		}
		if !slices.Contains(srv, n) {
			srv = append(srv, n)
		}
	}
	o.servers = strings.Join(srv, ",")
	return "no AF_XDP: " + why + "; knot-xdp is replaced by knot-udp and kxdpgun by dnsperf (one thread: saturation figures are dnsperf's ceiling, not the server's)"
}

// loads is loadsFor for o: kxdpgun's runs become dnsperf's when Knot's XDP
// cannot run here.
func (o *options) loads(sc string) []load {
	lds := loadsFor(o.mode, sc)
	if o.noAFXDP == "" {
		return lds
	}
	var out []load
	for _, ld := range lds {
		if ld.gen == genKxdpgun {
			ld.gen = genDnsperf
		}
		if !slices.Contains(out, ld) {
			out = append(out, ld)
		}
	}
	return out
}
