package proxy

import (
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// Limiter decides whether a client may send a request now: rate limiting,
// keyed by the real client address (TRUSTED_PROXIES applied). It is asked
// before the request body is read. key must not be retained.
//
// Limit returns how long the request must wait before it is forwarded
// (0: at once) and false when it must be refused instead.
type Limiter interface {
	Limit(key []byte) (wait time.Duration, ok bool)
}

// ResponseFilter may transform the app's answer before the client gets it
// (compression). It runs after the proxy has filtered the app's headers and
// before the HEADER_* headers are set, only on answers that came from the
// app, never on the proxy's own error pages. It must not retain req or resp.
//
// Which method runs depends on where the app's body is.
type ResponseFilter interface {
	// FilterResponse gets an answer whose body is in memory, in resp (or
	// that has none: a HEAD, a 204).
	FilterResponse(req *fasthttp.RequestHeader, resp *fasthttp.Response)

	// FilterStream gets an answer whose body was too large to keep in
	// memory (over BUFFER_MEMORY) and was spooled to a file: resp has the
	// status and headers, and body reads the size bytes of the body. To
	// replace the body, the filter writes the new one to out, which spools
	// it as the app's was (in memory, then in a file), and returns true;
	// the proxy then sends that, with its length. False leaves the body as
	// it is, whatever was written to out (a failed write, say). Either way,
	// the work is done before FilterStream returns, while the client
	// waits: nothing of the filter's is held while a slow client reads.
	FilterStream(req *fasthttp.RequestHeader, resp *fasthttp.Response, body io.Reader, size int64, out io.Writer) bool
}

// Stats are the proxy's running counts, read at any time (for /metrics).
type Stats struct {
	OpenConnections int64  // client connections open now
	InFlight        int64  // requests being served now
	WebSockets      int64  // WebSocket tunnels open now
	Refused         uint64 // connections refused over MAX_CONNECTIONS
	// Failures to get an answer from the app, by kind.
	UpstreamRefused uint64 // could not connect (refused, unreachable, connect timeout)
	UpstreamTimeout uint64 // no answer within PROXY_READ_TIMEOUT
	UpstreamReset   uint64 // closed or reset before a complete answer
	UpstreamInvalid uint64 // answered with something that is not HTTP
	// Requests over RATE_LIMIT: refused, or within the burst and delayed.
	RateLimitRefused uint64
	RateLimitDelayed uint64
}

// Stats returns the current counts.
func (s *Server) Stats() Stats {
	return Stats{
		OpenConnections:  s.stats.open.Load(),
		InFlight:         s.stats.inFlight.Load(),
		WebSockets:       s.stats.tunnels.Load(),
		Refused:          s.overloaded.Load(),
		UpstreamRefused:  s.stats.upstream[upstreamRefused].Load(),
		UpstreamTimeout:  s.stats.upstream[upstreamTimeout].Load(),
		UpstreamReset:    s.stats.upstream[upstreamReset].Load(),
		UpstreamInvalid:  s.stats.upstream[upstreamInvalid].Load(),
		RateLimitRefused: s.stats.rateRefused.Load(),
		RateLimitDelayed: s.stats.rateDelayed.Load(),
	}
}

// AccessLoggers sends each record to every logger in turn: the access log
// and the metrics, say.
type AccessLoggers []AccessLogger

// Log implements AccessLogger.
func (ls AccessLoggers) Log(rec *AccessRecord) {
	for _, l := range ls {
		l.Log(rec)
	}
}
