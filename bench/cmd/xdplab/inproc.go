package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cilium/ebpf/link"

	"github.com/xdpns/xdpns/loader"
	"github.com/xdpns/xdpns/userspace/responder"
	dnsserver "github.com/xdpns/xdpns/userspace/server"
	"github.com/xdpns/xdpns/userspace/zone"
)

// inprocCommand is the first argument that makes this program the xdpns
// server itself (see serveInproc); the benchmark runs it in the server's
// namespace when the xdpns binary does not attach XDP on its own.
const inprocCommand = "serve-inproc"

// serveInproc is what `xdpns serve` does with an xdp section, wired from
// the packages directly: the zone loaded, the Go responder and server on
// the listen addresses (the fallback for whatever XDP passes), the loader
// filled from the same zone and attached to the interface; until SIGTERM
// or SIGINT, then everything detached and closed. It runs inside the
// server's network namespace.
func serveInproc(args []string) error {
	fs := flag.NewFlagSet(inprocCommand, flag.ContinueOnError)
	zoneFile := fs.String("zone", "", "zone file")
	origin := fs.String("origin", "", "zone origin")
	listen := fs.String("listen", "", "addresses to serve, comma-separated (host:port)")
	iface := fs.String("iface", "", "interface to attach XDP to; empty: userspace only")
	mode := fs.String("mode", "native", "XDP mode: native, generic or auto")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	z, _, err := zone.Load(*zoneFile, *origin, zone.LoadOptions{})
	if err != nil {
		return err
	}
	r := responder.New(responder.Config{})
	r.SetZones([]*zone.Zone{z})
	addrs := strings.Split(*listen, ",")
	srv := dnsserver.New(dnsserver.Config{Listen: addrs}, r, log)
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	if *iface != "" {
		m, err := loader.ParseMode(*mode)
		if err != nil {
			return err
		}
		var service []netip.Addr
		var port uint16
		for _, a := range addrs {
			ap, err := netip.ParseAddrPort(a)
			if err != nil {
				return err
			}
			service, port = append(service, ap.Addr()), ap.Port()
		}
		x, err := loader.New(loader.Config{Port: port, ServiceAddrs: service})
		if err != nil {
			return err
		}
		defer x.Close()
		if _, err := x.LoadZones(z); err != nil {
			return err
		}
		var l link.Link
		l, got, err := x.Attach(*iface, m)
		if err != nil {
			return err
		}
		defer l.Close()
		log.Info("XDP attached", "interface", *iface, "mode", got)
	}
	log.Info("serving", "zone", *origin, "listen", addrs)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

// runInproc runs serveInproc when os.Args asks for it and reports whether
// it did (main and TestMain call it first).
func runInproc() bool {
	if len(os.Args) < 2 || os.Args[1] != inprocCommand {
		return false
	}
	if err := serveInproc(os.Args[2:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", inprocCommand, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}
