// Package metrics serves a Prometheus registry over HTTP: what
// client_golang's promhttp does not decide for a daemon, the listener
// (tcp4 or tcp6 as the address is), the server's timeouts, the page at /
// and logging collect errors. The format, the registry and the handler
// are client_golang's.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// errorLog is promhttp's error logger on log.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("metrics not collected", "err", fmt.Sprint(v...)) }

// Handler serves g in the text format (gzipped when the client accepts
// it, as Prometheus does). A collect error is answered 500, so that it
// is seen, not scraped as a partial page, and logged to log.
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      errorLog{log},
		ErrorHandling: promhttp.HTTPErrorOnError,
	})
}

// Path is where Server serves the registry.
const Path = "/metrics"

// Server is the HTTP endpoint: the registry at /metrics, a line naming it
// at /, 404 elsewhere.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Timeouts of the endpoint: a scraper that stalls does not hold a
// connection for long.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = time.Minute
)

// Listen binds addr (TCP, e.g. "127.0.0.1:9153") and serves g on it until
// Close. log receives collect errors and the server's own (nil: none).
func Listen(addr string, g prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// tcp4 or tcp6 as the address is, as the DNS listeners bind: [::] is
	// IPv6 only, never 0.0.0.0 too.
	network := "tcp"
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		network = "tcp6"
		if ap.Addr().Unmap().Is4() {
			network = "tcp4"
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(g, log))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "xdpns: metrics at "+Path+"\n")
	})
	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address listened on (with the port chosen, for port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the address of the metrics page.
func (s *Server) URL() string { return fmt.Sprintf("http://%s%s", s.ln.Addr(), Path) }

// Close stops listening and waits (briefly) for scrapes in progress.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
