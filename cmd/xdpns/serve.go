package main

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"syscall"

	"github.com/xdpns/xdpns/userspace/config"
	"github.com/xdpns/xdpns/userspace/responder"
	"github.com/xdpns/xdpns/userspace/server"
)

// cmdServe loads the configuration and zones and serves until SIGINT or
// SIGTERM (or ctx is done). SIGHUP reloads the zone list and every zone; a
// zone that fails to reload keeps serving its old version.
func cmdServe(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "serve", "[-c FILE]")
	path := configFlag(fs)
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

	// Subscribe before binding, so a signal during start-up is not lost.
	sigs, stop := e.signals(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	s := &serving{
		cfgPath: *path,
		started: cfg,
		log:     log,
		zlog:    component(root, "zone"),
		zones:   map[string]*servedZone{},
		r: responder.New(responder.Config{
			UDPPayload: cfg.Server.UDPPayload,
			NSID:       cfg.Server.NSID,
			Identity:   cfg.Server.Identity,
			Version:    cfg.Server.Version,
		}),
	}
	s.load(cfg)
	if len(s.zones) == 0 {
		log.Error("no zone loaded; not serving", "configured", len(cfg.Zones))
		return exitFail
	}
	srv := server.New(serverConfig(cfg), s.r, component(root, "server"))
	if err := srv.Start(); err != nil {
		log.Error("start", "err", err)
		return exitFail
	}
	log.Info("serving", "zones", len(s.zones), "listen", srv.Addrs())
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "reason", context.Cause(ctx))
			return closeServer(srv, log)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.reload()
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			return closeServer(srv, log)
		}
	}
}

func closeServer(srv *server.Server, log *slog.Logger) int {
	if err := srv.Close(); err != nil {
		log.Error("close", "err", err)
		return exitFail
	}
	log.Info("stopped")
	return exitOK
}

func serverConfig(cfg *config.Config) server.Config {
	listen := make([]string, len(cfg.Server.Listen))
	for i, ap := range cfg.Server.Listen {
		listen[i] = ap.String()
	}
	return server.Config{
		Listen:         listen,
		UDPSockets:     cfg.Server.UDPSockets,
		TCPIdleTimeout: cfg.Server.TCPIdleTimeout,
		TCPMaxConns:    cfg.Server.TCPMaxConnections,
	}
}

// serving is the state serve keeps between reloads.
type serving struct {
	cfgPath string
	started *config.Config // listener, responder and log settings come from here
	log     *slog.Logger   // component=serve
	zlog    *slog.Logger   // component=zone
	r       *responder.Responder
	zones   map[string]*servedZone // by canonical name
}

type servedZone struct {
	conf   config.Zone
	served *responder.Zone
}

// load reads every zone of cfg and swaps the served set in one step. A zone
// that fails keeps its previous version when there is one; zones no longer
// in cfg stop being served.
func (s *serving) load(cfg *config.Config) (loaded, failed int) {
	next := make(map[string]*servedZone, len(cfg.Zones))
	for _, lz := range loadZones(cfg) {
		zl := s.zlog.With("zone", lz.conf.Name, "file", lz.conf.File)
		for _, w := range lz.warns {
			zl.Warn("zone file", "warning", w.Error())
		}
		if lz.err != nil {
			failed++
			if old := s.zones[lz.conf.Name]; old != nil {
				zl.Error("reload failed; the old version keeps serving", "err", lz.err, "serial", old.served.Zone.Serial())
				next[lz.conf.Name] = old
			} else {
				zl.Error("load failed; zone not served", "err", lz.err)
			}
			continue
		}
		served, err := responder.Compile(lz.zone)
		if err != nil {
			// The responder answers such a zone from the engine alone.
			zl.Warn("compile failed; answering without precomputed answers", "err", err)
			served = &responder.Zone{Zone: lz.zone}
		}
		loaded++
		next[lz.conf.Name] = &servedZone{conf: lz.conf, served: served}
		zl.Info("loaded", "serial", lz.zone.Serial(), "records", len(lz.zone.Records()))
	}
	for name := range s.zones {
		if next[name] == nil {
			s.zlog.Info("removed from the configuration; no longer served", "zone", name)
		}
	}
	list := make([]*responder.Zone, 0, len(next))
	for _, cz := range cfg.Zones { // configuration order, for stable logs
		if sz := next[cz.Name]; sz != nil {
			list = append(list, sz.served)
		}
	}
	s.r.SetServed(list)
	s.zones = next
	return loaded, failed
}

// reload re-reads the configuration and every zone (SIGHUP). A configuration
// that does not parse changes nothing. Listener, responder and log settings
// are read at start only.
func (s *serving) reload() {
	s.log.Info("reloading", "config", s.cfgPath)
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, x := range errs {
				s.log.Error("config", "err", x.Error())
			}
		} else {
			s.log.Error("config", "err", err)
		}
		s.log.Error("reload aborted; nothing changed")
		return
	}
	// allow-include applies to the zones loaded now; the rest needs a restart.
	now, then := cfg.Server, s.started.Server
	now.AllowInclude, then.AllowInclude = false, false
	if !reflect.DeepEqual(now, then) || cfg.Log != s.started.Log {
		s.log.Warn("server and log settings changed; restart to apply them")
	}
	loaded, failed := s.load(cfg)
	s.log.Info("reloaded", "zones", len(s.zones), "loaded", loaded, "failed", failed)
}
