package main

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/server"
)

// cmdServe loads the configuration and serves until SIGINT or SIGTERM (or
// ctx is done): zones from files, secondary zones from their primaries, and
// the control socket for `xdpns zone`. SIGHUP reloads the configuration and
// every zone file; a zone that fails to reload keeps serving its old
// version.
func cmdServe(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "serve", "[-c FILE] [-cpuprofile FILE] [-memprofile FILE]")
	path := configFlag(fs)
	// For benchmark runs: the profile covers the whole serve and is written
	// when it stops (go tool pprof FILE).
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the serve to `FILE` (go tool pprof)")
	// The heap profile is of what is live when serve stops (after a GC):
	// what the served zones hold.
	memprofile := fs.String("memprofile", "", "write a heap profile to `FILE` when the serve stops (go tool pprof)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printErrors(e, err)
		return exitFail
	}
	root := newLogger(e.stderr, cfg.Log)
	log := component(root, "serve")
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			log.Error("cpu profile", "err", err)
			return exitFail
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				log.Error("cpu profile", "err", err)
			}
		}()
	}
	// Subscribe before binding, so a signal during start-up is not lost.
	sigs, stop := e.signals(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := startDaemon(ctx, *path, cfg, root, daemonHooks{})
	if err != nil {
		log.Error(err.Error())
		return exitFail
	}
	stopped := func() int {
		// Before Close: the profile shows what the served zones hold.
		if *memprofile != "" {
			if err := writeHeapProfile(*memprofile); err != nil {
				log.Error("heap profile", "err", err)
			}
		}
		return closeDaemon(d)
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "reason", context.Cause(ctx))
			return stopped()
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_, _ = d.reload() // logged
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			return stopped()
		}
	}
}

func closeDaemon(d *daemon) int {
	if err := d.Close(); err != nil {
		d.log.Error("close", "err", err)
		return exitFail
	}
	d.log.Info("stopped")
	return exitOK
}

func serverConfig(cfg *config.Config) server.Config {
	listen := make([]string, len(cfg.Server.Listen))
	for i, ap := range cfg.Server.Listen {
		listen[i] = ap.String()
	}
	sc := server.Config{
		Listen:         listen,
		UDPSockets:     cfg.Server.UDPSockets,
		TCPIdleTimeout: cfg.Server.TCPIdleTimeout,
		TCPMaxConns:    cfg.Server.TCPMaxConnections,
	}
	sc.ListenTLS, sc.TLS = listenTLS(cfg)
	return sc
}

// writeHeapProfile writes the live heap (after a collection) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
