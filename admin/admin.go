// Package admin is the proxy's admin listener (ADMIN_LISTEN): a small
// net/http server, apart from the request path, that answers
//
//   - /healthz: 200 while the process serves (liveness);
//   - /readyz: 200 when the app accepts a connection and the proxy is not
//     shutting down, 503 otherwise (readiness);
//   - /metrics: Prometheus text format.
//
// It never forwards anything to the app, so probes and scrapes neither
// show in the access log nor take a gunicorn worker.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Config is what the endpoints report on.
type Config struct {
	// Ready says whether the app can be reached; nil means always.
	Ready func(ctx context.Context) error
	// Metrics writes the Prometheus exposition; nil answers /metrics 404.
	Metrics interface{ WritePrometheus(w io.Writer) }
	// ErrorLog receives the server's own errors (a client that vanished
	// mid-scrape); nil discards them.
	ErrorLog io.Writer
}

// Server is the admin listener.
type Server struct {
	cfg      Config
	http     http.Server
	draining atomic.Bool
}

// New builds the server; Serve starts it.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Metrics != nil {
		mux.HandleFunc("GET /metrics", s.metrics)
	}
	errlog := cfg.ErrorLog
	if errlog == nil {
		errlog = io.Discard
	}
	s.http = http.Server{
		Handler: mux,
		// Probes and scrapes are small; whoever holds a connection open
		// without sending gets nothing.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(errlog, "gunicorn-proxy: ADMIN_LISTEN: ", 0),
	}
	return s
}

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Drain makes /readyz answer 503 from now on, so that load balancers and
// Kubernetes stop sending new clients while the proxy finishes the
// requests in flight. /healthz stays 200: the process is still fine.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops the listener and waits for the answers being written.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		text(w, http.StatusServiceUnavailable, "shutting down\n")
		return
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			text(w, http.StatusServiceUnavailable, fmt.Sprintf("app unreachable: %v\n", err))
			return
		}
	}
	text(w, http.StatusOK, "ok\n")
}

func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.cfg.Metrics.WritePrometheus(w)
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body) //nolint:errcheck // the prober may be gone
}

// DialCheck is a Ready function that connects to the app and hangs up, within
// timeout: the app is ready when its listener accepts. It deliberately sends
// no request: a probe every few seconds would otherwise take a gunicorn sync
// worker each time, fill the app's access log, and depend on a route the
// app may not have.
func DialCheck(network, address string, timeout time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
