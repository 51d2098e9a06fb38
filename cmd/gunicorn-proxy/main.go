// Command gunicorn-proxy is a reverse proxy to put in front of gunicorn (or
// any HTTP app server) with one line:
//
//	gunicorn-proxy app:8080
//
// It is configured by environment variables (see --help), a drop-in for the
// luhn/gunicorn-proxy image. This package alone knows about the environment,
// signals and exit codes; the request path is package proxy.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/gunicorn-proxy/gunicorn-proxy/admin"
	"github.com/gunicorn-proxy/gunicorn-proxy/compress"
	"github.com/gunicorn-proxy/gunicorn-proxy/logsink"
	"github.com/gunicorn-proxy/gunicorn-proxy/metrics"
	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
	"github.com/gunicorn-proxy/gunicorn-proxy/ratelimit"
	"github.com/gunicorn-proxy/gunicorn-proxy/tlsgen"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes: 1 when the proxy cannot run (no server argument, the address
// is taken), 2 when the configuration is wrong.
const (
	exitFailure = 1
	exitConfig  = 2
)

func main() {
	// A log reader that goes away (LOG=stdout into a dead pipe) must cost
	// log lines, counted as dropped, not the process: without this, Go
	// exits on a write to a broken stdout.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	var positional []string
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			printHelp(stdout)
			return 0
		case "-version", "--version":
			fmt.Fprintln(stdout, "gunicorn-proxy", version)
			return 0
		}
		positional = append(positional, a)
	}
	if len(positional) > 0 && positional[0] == "healthcheck" {
		// Not a server: one always has a port (app:8080).
		return healthcheck(positional[1:], environ, stdout, stderr)
	}
	if len(positional) == 0 {
		fmt.Fprintln(stderr, "The server argument must be set.")
		return exitFailure
	}
	if len(positional) > 1 {
		fmt.Fprintf(stderr, "gunicorn-proxy: expected one server argument, got %d: %s\n", len(positional), strings.Join(positional, " "))
		return exitConfig
	}
	upstream, err := parseUpstream(positional[0])
	if err != nil {
		fmt.Fprintln(stderr, "gunicorn-proxy:", err)
		return exitConfig
	}
	cfg := loadConfigOrSay(environ, stderr, "gunicorn-proxy:")
	if cfg == nil {
		return exitConfig
	}

	p, code := assemble(cfg, upstream, envMap(environ), stderr)
	if p == nil {
		return code
	}
	return p.runUntilSignal()
}

// process is the running proxy with what its signals act on.
type process struct {
	server        *proxy.Server
	listener      net.Listener
	accessLog     *logsink.Sink        // nil without LOG
	certs         *tlsgen.KeyPairStore // nil without SSL_KEY
	admin         *admin.Server        // nil without ADMIN_LISTEN
	adminListener net.Listener
	shutdown      time.Duration
	stderr        io.Writer
	status        string // the STATUS= line systemd shows while serving
}

func envMap(environ []string) map[string]string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

// assemble builds everything from the configuration; on failure it has
// printed why and returns the exit code.
func assemble(cfg *config, upstream proxy.Upstream, vars map[string]string, stderr io.Writer) (*process, int) {
	p := &process{shutdown: time.Duration(cfg.ShutdownTimeout), stderr: stderr}
	pc := proxy.Config{
		Upstream:             upstream,
		MaxConnections:       int(cfg.MaxConnections),
		MaxBodySize:          int64(cfg.MaxBodySize),
		Scheme:               string(cfg.Scheme),
		TrustedProxies:       proxy.TrustedProxies(cfg.TrustedProxies),
		ResponseHeaders:      cfg.Headers,
		ClientHeaderTimeout:  time.Duration(cfg.ClientHeaderTimeout),
		ClientBodyTimeout:    time.Duration(cfg.ClientBodyTimeout),
		KeepaliveTimeout:     time.Duration(cfg.KeepaliveTimeout),
		SendTimeout:          time.Duration(cfg.SendTimeout),
		ProxyConnectTimeout:  time.Duration(cfg.ProxyConnectTimeout),
		ProxyReadTimeout:     time.Duration(cfg.ProxyReadTimeout),
		WebSocketIdleTimeout: time.Duration(cfg.WebSocketIdle),
		BufferDir:            string(cfg.BufferDir),
		BufferMemory:         int(cfg.BufferMemory),
		ErrorLog:             stderr,
	}

	if pc.BufferDir == "" {
		pc.BufferDir = os.TempDir()
		if err := proxy.CheckBufferDir(pc.BufferDir); err != nil {
			fmt.Fprintf(stderr, "gunicorn-proxy: BUFFER_DIR is unset, so %s: expected a directory where the proxy can create files (%v); set BUFFER_DIR to a writable one\n", pc.BufferDir, err)
			return nil, exitConfig
		}
	}

	for _, note := range cfg.notes {
		fmt.Fprintln(stderr, "gunicorn-proxy:", note)
	}
	if cfg.Compress {
		comp, err := compress.New(compress.Config{
			Level:     int(cfg.CompressLevel),
			MinLength: int(cfg.CompressMinLength),
			Types:     cfg.CompressTypes,
		})
		if err != nil {
			fmt.Fprintln(stderr, "gunicorn-proxy:", err)
			return nil, exitConfig
		}
		pc.Compressor = comp
	}
	if cfg.RateLimit != 0 {
		lim, err := ratelimit.New(ratelimit.Config{
			Rate:    ratelimit.Rate(cfg.RateLimit),
			Burst:   int(cfg.RateLimitBurst),
			NoDelay: bool(cfg.RateLimitNoDelay),
			Entries: ratelimit.EntriesForSize(int64(cfg.RateLimitSize)),
		})
		if err != nil {
			fmt.Fprintln(stderr, "gunicorn-proxy:", err)
			return nil, exitConfig
		}
		pc.Limiter = lim
		pc.RateLimitStatus = int(cfg.RateLimitStatus)
		delay := "delayed"
		if cfg.RateLimitNoDelay {
			delay = "at once"
		}
		fmt.Fprintf(stderr, "gunicorn-proxy: RATE_LIMIT=%v per client address, burst %d (%s), over it %d; room for %d addresses\n",
			ratelimit.Rate(cfg.RateLimit), cfg.RateLimitBurst, delay, cfg.RateLimitStatus, ratelimit.EntriesForSize(int64(cfg.RateLimitSize)))
	}

	tlsConfig, err := p.tlsConfig(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "gunicorn-proxy:", err)
		return nil, exitConfig
	}
	pc.TLS = tlsConfig

	if cfg.Log != "" {
		sink, err := logsink.Open(cfg.Log, logsink.Options{Report: stderr})
		if err != nil {
			fmt.Fprintf(stderr, "gunicorn-proxy: LOG=%q: %v\n", cfg.Log, err)
			return nil, exitConfig
		}
		p.accessLog = sink
		pc.AccessLog = sink
	}

	var counters *metrics.Metrics
	if cfg.AdminListen.address != "" {
		src := metrics.Sources{Proxy: func() proxy.Stats { return p.server.Stats() }}
		if p.accessLog != nil {
			src.LogDropped = p.accessLog.Dropped
		}
		counters = metrics.New(version, src)
		if pc.AccessLog != nil {
			pc.AccessLog = proxy.AccessLoggers{p.accessLog, counters}
		} else {
			pc.AccessLog = counters
		}
	}

	p.server, err = proxy.New(pc)
	if err != nil {
		fmt.Fprintln(stderr, "gunicorn-proxy:", err)
		p.closeLog()
		return nil, exitConfig
	}

	if cfg.PprofListen != "" {
		if err := servePprof(cfg.PprofListen); err != nil {
			fmt.Fprintf(stderr, "gunicorn-proxy: PPROF_LISTEN=%q: expected an address to listen on (%v)\n", cfg.PprofListen, err)
			p.closeLog()
			return nil, exitConfig
		}
	}

	where, code := p.openListeners(cfg, vars)
	if code != 0 {
		p.closeLog()
		return nil, code
	}
	if counters != nil {
		addr := cfg.AdminListen
		p.adminListener, err = listen(addr)
		if err != nil {
			fmt.Fprintf(stderr, "gunicorn-proxy: cannot listen on ADMIN_LISTEN=%s: %v\n", addr, err)
			p.listener.Close()
			p.closeLog()
			return nil, exitFailure
		}
		p.admin = admin.New(admin.Config{
			Ready:    admin.DialCheck(upstream.Network, upstream.Address, time.Duration(cfg.ProxyConnectTimeout)),
			Metrics:  counters,
			ErrorLog: stderr,
		})
		fmt.Fprintf(stderr, "gunicorn-proxy: admin listener on %s: /healthz, /readyz, /metrics\n", addr)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	p.status = fmt.Sprintf("listening on %s (%s), forwarding to %s", where, scheme, upstream)
	fmt.Fprintf(stderr, "gunicorn-proxy %s: %s\n", version, p.status)
	return p, 0
}

// openListeners takes the sockets systemd passed, if it passed any (socket
// activation: LISTEN is then ignored), or binds LISTEN. It returns what it
// listens on, for the startup line, or a non-zero exit code.
func (p *process) openListeners(cfg *config, vars map[string]string) (string, int) {
	activated, note, err := activatedListeners(vars)
	if note != "" {
		fmt.Fprintln(p.stderr, "gunicorn-proxy:", note)
	}
	if err != nil {
		fmt.Fprintln(p.stderr, "gunicorn-proxy:", err)
		return "", exitFailure
	}
	if len(activated) > 0 {
		if _, set := vars["LISTEN"]; set {
			fmt.Fprintf(p.stderr, "gunicorn-proxy: LISTEN=%s ignored: serving the %d socket(s) systemd passed (LISTEN_FDS)\n", vars["LISTEN"], len(activated))
		} else if _, set := vars["PORT"]; set {
			fmt.Fprintf(p.stderr, "gunicorn-proxy: PORT=%s ignored: serving the %d socket(s) systemd passed (LISTEN_FDS)\n", vars["PORT"], len(activated))
		}
		p.listener = mergeListeners(activated)
		return describeListeners(activated) + " from systemd", 0
	}
	addr := cfg.listenAddress()
	p.listener, err = listen(addr)
	if err != nil {
		fmt.Fprintf(p.stderr, "gunicorn-proxy: cannot listen on %s: %v\n", addr, err)
		return "", exitFailure
	}
	return addr.String(), 0
}

func (a listenAddr) String() string {
	if a.network == "unix" {
		return "unix:" + a.address
	}
	return a.address
}

// listen binds the address; for a unix socket, a stale socket file left by
// a previous run is removed first, as gunicorn does.
func listen(a listenAddr) (net.Listener, error) {
	if a.network == "unix" {
		if fi, err := os.Lstat(a.address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", a.address); err == nil {
				c.Close()
				return nil, fmt.Errorf("another process is listening on %s", a.address)
			}
			os.Remove(a.address)
		}
	}
	return net.Listen(a.network, a.address)
}

// tlsConfig returns the listener's TLS configuration, or nil for plain HTTP.
func (p *process) tlsConfig(cfg *config) (*tls.Config, error) {
	switch {
	case cfg.SSLKey != "":
		var passwords [][]byte
		if cfg.SSLPasswordFile != "" {
			var err error
			if passwords, err = tlsgen.ReadPasswordFile(cfg.SSLPasswordFile); err != nil {
				return nil, fmt.Errorf("SSL_PASSWORD_FILE=%q: %w", cfg.SSLPasswordFile, err)
			}
		}
		store, err := tlsgen.LoadKeyPairStore(cfg.SSLCrt, cfg.SSLKey, passwords)
		if err != nil {
			return nil, fmt.Errorf("SSL_CRT=%q, SSL_KEY=%q: %w", cfg.SSLCrt, cfg.SSLKey, err)
		}
		p.certs = store
		fmt.Fprintf(p.stderr, "gunicorn-proxy: TLS certificate %s\n", tlsgen.Describe(store.Leaf()))
		c := tlsgen.Intermediate()
		c.GetCertificate = store.GetCertificate
		return c, nil
	case bool(cfg.AutoSSL):
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
			hosts = append([]string{h}, hosts...)
		}
		cert, err := tlsgen.SelfSigned(hosts, time.Now())
		if err != nil {
			return nil, fmt.Errorf("AUTO_SSL: %w", err)
		}
		fmt.Fprintf(p.stderr, "gunicorn-proxy: AUTO_SSL self-signed certificate for %s, SHA-256 fingerprint %s\n",
			strings.Join(hosts, ", "), tlsgen.Fingerprint(cert.Leaf))
		c := tlsgen.Intermediate()
		c.Certificates = []tls.Certificate{cert}
		return c, nil
	}
	return nil, nil
}

// runUntilSignal serves until SIGTERM, SIGQUIT or SIGINT, then drains.
// SIGUSR1 reopens the access log (logrotate); SIGHUP reloads the
// certificate (certbot, cert-manager).
func (p *process) runUntilSignal() int {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGHUP)
	defer signal.Stop(signals)

	served := make(chan error, 2)
	go func() { served <- p.server.Serve(p.listener) }()
	if p.admin != nil {
		go func() {
			if err := p.admin.Serve(p.adminListener); err != nil {
				served <- fmt.Errorf("ADMIN_LISTEN: %w", err)
			}
		}()
	}
	// The sockets are bound: connections wait in their backlog from now on,
	// so systemd may start what depends on the proxy.
	p.notify(daemon.SdNotifyReady, p.status)

	for {
		select {
		case err := <-served:
			fmt.Fprintln(p.stderr, "gunicorn-proxy: serving failed:", err)
			p.closeLog()
			return exitFailure
		case sig := <-signals:
			switch sig {
			case syscall.SIGUSR1:
				p.reopenLog()
			case syscall.SIGHUP:
				// With Type=notify-reload, systemd waits for READY=1
				// after RELOADING=1; with Type=notify they do no harm.
				p.notify(reloading(), "SIGHUP: reloading")
				p.reloadCertificate()
				p.notify(daemon.SdNotifyReady, p.status)
			default:
				return p.drain(sig)
			}
		}
	}
}

func (p *process) drain(sig os.Signal) int {
	// First tell systemd and the load balancers: systemd then knows the
	// stop is ours (and that SHUTDOWN_TIMEOUT may pass before we exit), and
	// /readyz turns 503 while the requests in flight finish.
	p.notify(daemon.SdNotifyStopping, fmt.Sprintf("%v: finishing requests in flight", sig))
	if p.admin != nil {
		p.admin.Drain()
	}
	fmt.Fprintf(p.stderr, "gunicorn-proxy: %v: finishing requests in flight (at most %v)\n", sig, p.shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), p.shutdown)
	defer cancel()
	code := 0
	if err := p.server.Shutdown(ctx); err != nil {
		fmt.Fprintf(p.stderr, "gunicorn-proxy: SHUTDOWN_TIMEOUT=%v passed with requests still in flight: %v\n", p.shutdown, err)
		code = exitFailure
	}
	p.closeLog()
	if p.admin != nil {
		// Last, so that /healthz answered for as long as the process served.
		closing, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.admin.Shutdown(closing) //nolint:errcheck // exiting anyway
	}
	return code
}

// logFlushTimeout bounds the final flush of the access log at exit: a
// log target that stopped reading (a stuck pipe) must not keep the
// process alive; what cannot be written is counted as dropped.
const logFlushTimeout = 10 * time.Second

func (p *process) reopenLog() {
	if p.accessLog == nil {
		return
	}
	if err := p.accessLog.Reopen(); err != nil {
		fmt.Fprintln(p.stderr, "gunicorn-proxy: SIGUSR1: reopening the access log failed, still writing to the old file:", err)
		return
	}
	fmt.Fprintln(p.stderr, "gunicorn-proxy: SIGUSR1: access log reopened")
}

func (p *process) reloadCertificate() {
	if p.certs == nil {
		fmt.Fprintln(p.stderr, "gunicorn-proxy: SIGHUP: no SSL_KEY/SSL_CRT to reload")
		return
	}
	if err := p.certs.Reload(); err != nil {
		fmt.Fprintln(p.stderr, "gunicorn-proxy: SIGHUP: new certificate refused, still serving the old one:", err)
		return
	}
	fmt.Fprintf(p.stderr, "gunicorn-proxy: SIGHUP: TLS certificate reloaded: %s\n", tlsgen.Describe(p.certs.Leaf()))
}

func (p *process) closeLog() {
	if p.accessLog == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), logFlushTimeout)
	defer cancel()
	if err := p.accessLog.Shutdown(ctx); err != nil && !errors.Is(err, os.ErrClosed) {
		fmt.Fprintln(p.stderr, "gunicorn-proxy: closing the access log:", err)
	}
}

// printHelp lists every variable with its default, from config's tags.
func printHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: gunicorn-proxy [--help] [--version] SERVER
       gunicorn-proxy healthcheck [--ready]

A reverse proxy for gunicorn and other HTTP app servers. It reads each whole
request before it contacts the app, and the whole answer before it writes to
the client, so the app's workers never wait on a slow client.

SERVER is where the app listens: host:port, http://host:port or unix:/path.

healthcheck asks the running proxy (configured by the same environment) and
exits 0 if it is healthy, 1 if not: GET ADMIN_LISTEN's /healthz (/readyz with
--ready), or without ADMIN_LISTEN, a connection to LISTEN.

Under systemd, the proxy reports READY=1 and STOPPING=1 (Type=notify) and
serves the sockets systemd passes (LISTEN_FDS) instead of binding LISTEN.

Environment variables:
`)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	t := reflect.TypeOf(config{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		def := f.Tag.Get("envDefault")
		if shown := f.Tag.Get("shown"); shown != "" {
			def = shown
		}
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, def, f.Tag.Get("help"))
	}
	fmt.Fprintf(tw, "  %s\t%s\t%s\n", "HEADER_*", "-", "HEADER_STRICT_TRANSPORT_SECURITY=max-age=31536000 sets Strict-Transport-Security: max-age=31536000 on every response")
	tw.Flush()
	fmt.Fprint(w, `
Signals: TERM, QUIT, INT finish requests in flight and exit; USR1 reopens the
access log; HUP reloads SSL_CRT and SSL_KEY without dropping connections.
`)
}

// servePprof serves Go's profiler on its own listener, so `go tool pprof
// http://ADDR/debug/pprof/profile` can see what the proxy spends its time on.
func servePprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go http.Serve(ln, mux) //nolint:errcheck // lives as long as the process
	return nil
}
