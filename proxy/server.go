package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config is everything the proxy needs, already parsed and validated.
type Config struct {
	Upstream Upstream

	// MaxConnections is the number of client connections served at once;
	// one more gets a 503 and is closed.
	MaxConnections int
	// MaxBodySize is the largest request body in bytes; 0 means no limit.
	MaxBodySize int64

	// TLS, when set, makes the listener speak HTTPS.
	TLS *tls.Config
	// Scheme, when set, is sent as X-Forwarded-Proto whatever the listener.
	Scheme string
	// TrustedProxies are the peers whose X-Forwarded-For is kept.
	TrustedProxies TrustedProxies
	// ResponseHeaders are set on every response (HEADER_*).
	ResponseHeaders []Header

	ClientHeaderTimeout time.Duration // whole request header
	ClientBodyTimeout   time.Duration // between two reads of the body
	KeepaliveTimeout    time.Duration // idle client connection
	SendTimeout         time.Duration // between two writes to the client
	ProxyConnectTimeout time.Duration // connecting to the app
	ProxyReadTimeout    time.Duration // between two reads from (or writes to) the app
	// WebSocketIdleTimeout ends a WebSocket silent in both directions.
	WebSocketIdleTimeout time.Duration

	// Limiter, when set, rate-limits requests by real client address; a
	// refused request gets RateLimitStatus (503 when zero, as nginx).
	Limiter         Limiter
	RateLimitStatus int
	// Compressor, when set, may transform the app's answers (compression).
	Compressor ResponseFilter

	// BufferDir is where bodies over BufferMemory bytes are spooled
	// (BUFFER_DIR, BUFFER_MEMORY); "" is the OS temporary directory.
	BufferDir    string
	BufferMemory int

	// AccessLog receives one record per request; nil disables it.
	AccessLog AccessLogger
	// ErrorLog receives the causes of errors, rate-limited; nil is stderr.
	ErrorLog io.Writer
}

// Server is the reverse proxy: a fasthttp.Server in front, a
// fasthttp.HostClient behind.
type Server struct {
	cfg     Config
	http    fasthttp.Server
	app     *upstream
	trusted TrustedProxies
	errlog  *errorLog

	// forcedProto is SCHEME as bytes, nil when the listener decides.
	forcedProto []byte
	// upstreamHost is the Host sent for a request that has none (HTTP/1.0),
	// as nginx sends $proxy_host.
	upstreamHost []byte
	// overloadResponse is the whole 503 sent over MAX_CONNECTIONS.
	overloadResponse []byte
	overloaded       atomic.Uint64
	rateLimited      *statusError
	spoolCfg         spoolConfig
	stats            struct {
		open, inFlight, tunnels  atomic.Int64
		upstream                 [numUpstreamKinds]atomic.Uint64
		rateRefused, rateDelayed atomic.Uint64
	}
	// oversized marks requests whose declared body is over MAX_BODY_SIZE,
	// by header, from headerReceived to the handler (see there).
	oversized sync.Map
}

// DefaultBufferMemory is how much of one body is kept in memory before the
// rest goes to a file (BUFFER_MEMORY).
const DefaultBufferMemory = 64 << 10

// clientReadBufferSize bounds the request line plus headers: a 16 KiB
// cookie (they happen) and 8 KiB of everything else. nginx accepts 4×8 KiB
// but no line over 8 KiB. Because the proxy streams request bodies,
// fasthttp keeps this buffer for the connection's whole life, idle too
// (what it costs in RSS is the pages a connection has touched), so its size
// is what a thousand slow uploads cost.
const clientReadBufferSize = 24 << 10

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Upstream.Address == "" {
		return nil, errors.New("proxy: no upstream")
	}
	if cfg.MaxConnections <= 0 {
		return nil, errors.New("proxy: MaxConnections must be positive")
	}
	s := &Server{
		cfg:     cfg,
		trusted: cfg.TrustedProxies,
		errlog:  newErrorLog(cfg.ErrorLog),
	}
	if cfg.Scheme != "" {
		s.forcedProto = []byte(cfg.Scheme)
	}
	if cfg.Upstream.Network == "unix" {
		s.upstreamHost = []byte("localhost")
	} else {
		s.upstreamHost = []byte(cfg.Upstream.Address)
	}
	s.overloadResponse = s.buildOverloadResponse()
	status := cfg.RateLimitStatus
	if status == 0 {
		status = fasthttp.StatusServiceUnavailable
	}
	s.rateLimited = &statusError{status: status, cause: "over RATE_LIMIT"}
	if s.cfg.BufferDir == "" {
		s.cfg.BufferDir = os.TempDir()
	}
	if s.cfg.BufferMemory <= 0 {
		s.cfg.BufferMemory = DefaultBufferMemory
	}
	s.spoolCfg = spoolConfig{dir: s.cfg.BufferDir, memory: s.cfg.BufferMemory, copyBuffers: &clientCopyBufferPool}
	s.app = newUpstream(&s.cfg)

	s.http = fasthttp.Server{
		Handler:        s.handle,
		ErrorHandler:   s.handleParseError,
		ExpectHandler:  s.handleExpect,
		HeaderReceived: s.headerReceived,
		Logger:         s.errlog,
		Concurrency:    cfg.MaxConnections,
		ReadBufferSize: clientReadBufferSize,
		ReadTimeout:    cfg.ClientHeaderTimeout,
		IdleTimeout:    cfg.KeepaliveTimeout,
		// MAX_BODY_SIZE is enforced in readBody, which reads the body from
		// fasthttp's stream with a deadline per read. fasthttp prefetches
		// up to MaxRequestBodySize bytes before the handler runs, under a
		// single deadline; a limit of one byte keeps that prefetch to the
		// first byte, so CLIENT_BODY_TIMEOUT stays a gap between reads.
		MaxRequestBodySize:            1,
		StreamRequestBody:             true,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		ReduceMemoryUsage:             true,
		CloseOnShutdown:               true,
		SecureErrorLogMessage:         true,
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. The listener is wrapped so
// every connection gets the proxy's accounting and timeouts, and TLS.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(&listener{Listener: ln, srv: s})
}

// Shutdown stops accepting, lets requests in flight finish and closes idle
// connections; it returns ctx's error if that takes too long.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.ShutdownWithContext(ctx)
	s.app.pool.CloseIdleConnections()
	return err
}

// Refused counts the connections turned away over MAX_CONNECTIONS.
func (s *Server) Refused() uint64 { return s.overloaded.Load() }

// refuse turns a connection away at accept: a 503 on plain HTTP (a TLS
// client would need a handshake first, so it only sees the close).
func (s *Server) refuse(c net.Conn) {
	if s.cfg.TLS == nil {
		c.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck // best effort
		c.Write(s.overloadResponse)                     //nolint:errcheck // closed next
	}
	c.Close()
	s.overloaded.Add(1)
	s.errlog.logf(logOverload, "MAX_CONNECTIONS=%d reached: refused a connection from %s (%d refused so far)",
		s.cfg.MaxConnections, c.RemoteAddr(), s.overloaded.Load())
}

func (s *Server) refused(c *clientConn) {
	s.overloaded.Add(1)
	s.errlog.logf(logOverload, "MAX_CONNECTIONS=%d reached: refused a connection from %s (%d refused so far)",
		s.cfg.MaxConnections, c.RemoteAddr(), s.overloaded.Load())
}

func (s *Server) buildOverloadResponse() []byte {
	var r fasthttp.Response
	r.Header.DisableNormalizing()
	r.Header.SetNoDefaultContentType(true)
	r.SetStatusCode(fasthttp.StatusServiceUnavailable)
	r.Header.SetContentType("text/plain; charset=utf-8")
	r.Header.SetConnectionClose()
	setOperatorHeaders(&r, s.cfg.ResponseHeaders)
	r.SetBodyRaw(statusPage(fasthttp.StatusServiceUnavailable))
	return []byte(r.String())
}

// headerReceived runs once the request header is parsed, before fasthttp
// reads any of the body. It gives the prefetch the body timeout, and it
// refuses a declared Content-Length over MAX_BODY_SIZE right here, as nginx
// does, without waiting for a byte of the body: the declared length becomes
// 0, so fasthttp reads nothing, and the handler, finding the mark, answers
// 413 and closes the connection. fasthttp gives this hook only the header,
// hence the mark keyed by it; every path that follows takes it back.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if n := h.ContentLength(); s.cfg.MaxBodySize > 0 && int64(n) > s.cfg.MaxBodySize {
		s.oversized.Store(h, n)
		h.SetContentLength(0)
	}
	return fasthttp.RequestConfig{ReadTimeout: s.cfg.ClientBodyTimeout}
}

// takeOversized reports (once) whether headerReceived marked h.
func (s *Server) takeOversized(h *fasthttp.RequestHeader) bool {
	if h.ContentLength() != 0 {
		return false
	}
	_, marked := s.oversized.LoadAndDelete(h)
	return marked
}

// fail answers the request with the proxy's own page for err.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	// The plain assertion first: errors.As needs a pointer that escapes,
	// an allocation per refusal, and a flood of refusals is the case that
	// must cost least.
	se, ok := err.(*statusError)
	if !ok {
		var wrapped *statusError
		if errors.As(err, &wrapped) {
			se = wrapped
		} else {
			se = &statusError{status: fasthttp.StatusInternalServerError, cause: "internal error", err: err}
		}
	}
	kind := logClient
	switch {
	case se == s.rateLimited:
		// Refusals have their own line: a flood of them must not hide
		// the app's failures, nor cost an allocation each.
		kind = logRateLimited
	case se.status >= 500:
		kind = logUpstream
	}
	if now, suppressed, ok := s.errlog.admit(kind); ok {
		s.errlog.write(now, suppressed, "%d %s %q from %s: %v", se.status, ctx.Method(), ctx.Request.Header.RequestURI(), ctx.RemoteAddr(), se)
	}

	ctx.Response.Reset()
	ctx.Response.Header.DisableNormalizing()
	ctx.SetStatusCode(se.status)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyRaw(statusPage(se.status))
	if cc := clientConnOf(ctx); cc != nil && cc.linger {
		// A body was left unread (over the limit, or a refusal before
		// a body too large for fasthttp to drain): the connection ends,
		// after a lingering drain (see clientConn).
		ctx.SetConnectionClose()
		return
	}
	switch se.status {
	case fasthttp.StatusBadGateway, fasthttp.StatusServiceUnavailable, fasthttp.StatusGatewayTimeout:
		// The app failed, not the client: its connection stays usable
		// (fasthttp drains or closes what is left of an unread body).
		// So does a client refused over RATE_LIMIT with a 503.
	default:
		// After a bad request the position in the byte stream is uncertain
		// (an unread or partial body), so the connection ends here.
		ctx.SetConnectionClose()
	}
}
