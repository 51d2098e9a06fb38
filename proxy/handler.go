package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gunicorn-proxy/gunicorn-proxy/internal/ascii"
	"github.com/valyala/fasthttp"
)

// exchange is the per-request state of one round trip to the app, pooled
// so that a request in steady state allocates nothing.
type exchange struct {
	reqHeader fasthttp.RequestHeader // what the app receives, head only
	reqBody   spool                  // the client's body, complete
	resp      *fasthttp.Response     // the app's answer, head only
	respBody  spool                  // the app's body, complete
	// streamed is set when the app's answer is relayed as it comes
	// (X-Accel-Buffering: no, text/event-stream) instead of buffered.
	streamed *streamedBody
	// upgrade is set for a WebSocket handshake; tunnel, once the app has
	// agreed (101), is the connection to the app to join to the client's.
	upgrade      bool
	upgradeValue []byte // the client's Upgrade header
	tunnel       *appTunnel
	filtered     spool       // the body a ResponseFilter made of a spooled respBody
	filterOut    spoolWriter // writes to filtered

	fields     []headerField // the client's header lines, in order
	xffValues  [][]byte      // values of its X-Forwarded-For lines
	connTokens [][]byte      // names its Connection header declared hop-by-hop
	xff        []byte        // the X-Forwarded-For sent to the app
	realIP     []byte        // the real client address (into xff or the conn)
	target     []byte        // a rewritten request-target, when needed
	// iov is the request as one writev: head and in-memory body.
	iov      net.Buffers
	iovArray [2][]byte
}

var exchangePool = sync.Pool{New: func() any { return &exchange{resp: new(fasthttp.Response)} }}

// maxPooledBody is the largest in-memory body buffer kept for the next
// request; bigger ones are left to the garbage collector.
const maxPooledBody = 1 << 20

func acquireExchange() *exchange {
	ex := exchangePool.Get().(*exchange)
	// Raw mode: the app gets the header lines as the client wrote them, in
	// order, with no header fasthttp would add or rewrite on its own.
	ex.reqHeader.DisableSpecialHeader()
	ex.reqHeader.DisableNormalizing()
	return ex
}

func releaseExchange(ex *exchange) {
	ex.reqHeader.Reset()
	ex.resp.Reset()
	if ex.streamed != nil {
		ex.streamed.Close() // the handler failed before handing it over
		ex.streamed = nil
	}
	if ex.tunnel != nil {
		ex.tunnel.close()
		ex.tunnel = nil
	}
	ex.upgrade, ex.upgradeValue = false, nil
	ex.reqBody.reset()
	ex.respBody.reset()
	ex.filtered.reset()
	for _, b := range []*spool{&ex.reqBody, &ex.respBody, &ex.filtered} {
		if cap(b.mem) > maxPooledBody {
			b.mem = nil
		}
	}
	clear(ex.fields)
	clear(ex.xffValues)
	clear(ex.connTokens)
	clear(ex.iovArray[:])
	ex.realIP = nil
	ex.fields, ex.xffValues, ex.connTokens = ex.fields[:0], ex.xffValues[:0], ex.connTokens[:0]
	exchangePool.Put(ex)
}

// handle is the request path: read the whole request, forward it, read the
// whole answer, and only then let fasthttp write it to the client.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	cc := clientConnOf(ctx) // never nil: Serve wraps every connection
	start := cc.requestStart()
	ex := acquireExchange()
	upstreamTime := time.Duration(-1)
	s.stats.inFlight.Add(1)
	defer func() {
		s.stats.inFlight.Add(-1)
		if p := recover(); p != nil {
			s.errlog.logf(logInternal, "panic serving %s %q: %v\n%s", ctx.Method(), ctx.Request.Header.RequestURI(), p, debug.Stack())
			s.fail(ctx, fmt.Errorf("panic: %v", p))
			setOperatorHeaders(&ctx.Response, s.cfg.ResponseHeaders)
		}
		s.finish(ctx, cc, start, ex.realIP, upstreamTime, ex.reqBody.size)
		releaseExchange(ex)
	}()

	var err error
	if upstreamTime, err = s.forward(ctx, cc, ex); err != nil {
		s.fail(ctx, err)
	}
	setOperatorHeaders(&ctx.Response, s.cfg.ResponseHeaders)
}

// forward sends the request to the app and puts its answer in ctx.Response.
// It returns how long the app took, negative if it was never reached.
func (s *Server) forward(ctx *fasthttp.RequestCtx, cc *clientConn, ex *exchange) (time.Duration, error) {
	in := &ctx.Request.Header
	if s.takeOversized(in) {
		return -1, s.unreadBody(ctx, errBodyTooLarge)
	}
	if in.IsConnect() {
		return -1, errMethodNotAllowed
	}
	if !in.IsHTTP11() && !bytes.Equal(in.Protocol(), http10) {
		return -1, errHTTPVersion
	}
	target, clientHost, ok := requestTarget(in, ex)
	if !ok {
		return -1, errBadTarget
	}
	host := clientHost
	if len(host) == 0 {
		if in.IsHTTP11() {
			return -1, errNoHost // RFC 9112 §3.2
		}
		host = s.upstreamHost
	}

	out := &ex.reqHeader
	out.SetMethodBytes(in.Method())
	out.SetRequestURIBytes(target)
	out.AddBytesKV(hdrHost, host)
	if err := copyRequestHeaders(in, out, cc.peerTrusted, ex); err != nil {
		return -1, err
	}
	if ex.upgrade = isWebSocketHandshake(in, ex); ex.upgrade {
		// The one time Upgrade crosses: Connection and Upgrade are hop-by-
		// hop, so the proxy asks the app itself.
		out.AddBytesKV(hdrConnection, valueUpgrade)
		out.AddBytesKV(hdrUpgrade, valueWebSocket)
	}
	ex.xff, ex.realIP = forwardedFor(ex.xff, ex.xffValues, cc, s.trusted)
	if s.cfg.Limiter != nil {
		if err := s.limit(ctx, ex.realIP); err != nil {
			return -1, err
		}
	}

	if err := s.readBody(ctx, &ex.reqBody); err != nil {
		return -1, err
	}
	if len(ex.xff) > 0 {
		out.AddBytesKV(hdrXForwardedFor, ex.xff)
	}
	if len(ex.realIP) > 0 {
		out.AddBytesKV(hdrXRealIP, ex.realIP)
	}
	proto := s.forcedProto
	if proto == nil {
		proto = schemeHTTP
		if ctx.IsTLS() {
			proto = schemeHTTPS
		}
	}
	out.AddBytesKV(hdrXForwardedProto, proto)
	if len(clientHost) > 0 {
		out.AddBytesKV(hdrXForwardedHost, clientHost)
	}
	out.AddBytesKV(hdrXForwardedPort, forwardedPort(clientHost, bytes.Equal(proto, schemeHTTPS)))

	sent := time.Now()
	err := s.app.roundTrip(ex)
	took := time.Since(sent)
	if err != nil {
		var spoolErr *spoolError
		if errors.As(err, &spoolErr) {
			return took, &statusError{status: fasthttp.StatusInternalServerError, cause: "spooling the answer", err: err}
		}
		se, kind := upstreamError(err)
		s.stats.upstream[kind].Add(1)
		if kind == upstreamRefused {
			took = -1 // never reached the app
		}
		return took, se
	}
	ex.filterOut = spoolWriter{s: &ex.filtered, cfg: &s.spoolCfg}
	copyResponse(&ctx.Response, ex, s.cfg.ResponseHeaders, in, s.cfg.Compressor)
	switch {
	case ex.tunnel != nil:
		// The app switched to WebSocket: fasthttp writes the 101, then
		// hands over the client's connection.
		ctx.Response.Header.SetBytesKV(hdrConnection, valueUpgrade)
		ctx.Response.Header.SetBytesKV(hdrUpgrade, valueWebSocket)
		t := ex.tunnel
		ex.tunnel = nil
		ctx.Hijack(func(c net.Conn) { s.runTunnel(c, t) })
	case ex.streamed != nil:
		ctx.Response.SetBodyStream(ex.streamed, -1)
		ex.streamed = nil
	}
	return took, nil
}

// requestTarget returns the request-target to send to the app and the host
// the client asked for. Origin-form ("/path?q") passes byte for byte.
// Absolute-form ("http://host/path"), which RFC 9112 §3.2.2 obliges a server
// to accept, is turned into origin-form, and its authority replaces Host.
// Asterisk-form is only for OPTIONS; authority-form only for CONNECT, which
// is refused before this.
func requestTarget(in *fasthttp.RequestHeader, ex *exchange) (target, host []byte, ok bool) {
	raw := in.RequestURI()
	switch {
	case len(raw) > 0 && raw[0] == '/':
		return raw, in.Host(), true
	case len(raw) == 1 && raw[0] == '*':
		return raw, in.Host(), in.IsOptions()
	}
	var rest []byte
	switch {
	case len(raw) > 7 && ascii.EqualFold(raw[:7], "http://"):
		rest = raw[7:]
	case len(raw) > 8 && ascii.EqualFold(raw[:8], "https://"):
		rest = raw[8:]
	default:
		return nil, nil, false
	}
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	host, path := rest[:end], rest[end:]
	if len(host) == 0 || bytes.IndexByte(host, '@') >= 0 {
		return nil, nil, false // userinfo in a request-target is a phishing tool
	}
	if len(path) == 0 || path[0] != '/' {
		ex.target = append(append(ex.target[:0], '/'), path...)
		path = ex.target
	}
	return path, host, true
}

// copyRequestHeaders copies the client's header lines to the app's request,
// in order and byte for byte, minus what requestVerdict drops. A line that
// is not a valid field (a bad name, a control byte in the value) fails the
// whole request: a proxy that forwards what it cannot parse is how request
// smuggling works.
func copyRequestHeaders(in, out *fasthttp.RequestHeader, peerTrusted bool, ex *exchange) error {
	var contentLength, transferEncoding int
	for name, value := range in.AllInOrder() {
		if !validFieldName(name) || !validFieldValue(value) {
			return errMalformedHeader
		}
		switch {
		case len(name) == 10 && ascii.EqualFold(name, "Connection"):
			ex.connTokens = connectionTokens(ex.connTokens, value)
		case len(name) == 14 && ascii.EqualFold(name, "Content-Length"):
			contentLength++
		case len(name) == 7 && ascii.EqualFold(name, "Upgrade"):
			ex.upgradeValue = value
		case len(name) == 17 && ascii.EqualFold(name, "Transfer-Encoding"):
			transferEncoding++
			if !ascii.EqualFold(bytes.TrimSpace(value), "chunked") {
				return errTransferCoding
			}
		}
		ex.fields = append(ex.fields, headerField{name: name, value: value})
	}
	// gunicorn refuses more than 100 fields (limit_request_fields); the
	// proxy says so itself rather than passing the app a request it rejects.
	if len(ex.fields) > maxHeaderFields {
		return errTooManyHeaders
	}
	// Two framings for one body is how requests are smuggled past one
	// parser into another (RFC 9112 §6.3): refused, never guessed at.
	if transferEncoding > 0 && contentLength > 0 || transferEncoding > 1 {
		return errFramingConflict
	}
	for _, f := range ex.fields {
		switch requestVerdict(f.name, peerTrusted, ex.connTokens) {
		case keepHeader:
			out.AddBytesKV(f.name, f.value)
		case forwardedForHeader:
			ex.xffValues = append(ex.xffValues, f.value)
		}
	}
	return nil
}

// maxHeaderFields is gunicorn's default limit_request_fields.
const maxHeaderFields = 100

var http10 = []byte("HTTP/1.0")

// finish closes the books on a request: its access-log record waits on the
// connection until the response has been written.
func (s *Server) finish(ctx *fasthttp.RequestCtx, cc *clientConn, start time.Time, clientIP []byte, upstreamTime time.Duration, bodyLen int64) {
	if s.cfg.AccessLog != nil {
		in := &ctx.Request.Header
		if len(clientIP) == 0 {
			clientIP = cc.peerText
		}
		if len(clientIP) == 0 {
			clientIP = unixPeer
		}
		rec := AccessRecord{
			ClientIP:     clientIP,
			Method:       in.Method(),
			URI:          in.RequestURI(),
			Status:       ctx.Response.StatusCode(),
			Start:        start,
			UpstreamTime: upstreamTime,
			RequestSize:  requestSize(in, bodyLen),
		}
		cc.setPending(&rec)
	}
	cc.requestDone()
}

// unixPeer is how a unix-socket client appears in the log, as in nginx.
var unixPeer = []byte("unix:")

// requestSize is the request line, header and body as received, in bytes
// (the body counted decoded, without chunk framing).
func requestSize(in *fasthttp.RequestHeader, bodyLen int64) int64 {
	line := len(in.Method()) + 1 + len(in.RequestURI()) + 1 + len(in.Protocol()) + 2
	return int64(line+len(in.RawHeaders())) + bodyLen
}

// handleParseError answers a request fasthttp could not read.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	s.takeOversized(&ctx.Request.Header)
	cc := clientConnOf(ctx)
	if cc != nil && cc.bytesRead == 0 && isTimeout(err) {
		// A connection that never sent a byte (a browser's preconnect, a
		// port scan) is closed without an answer, as nginx does.
		cc.silent = true
		return
	}
	se := clientError(err)
	if se.status == fasthttp.StatusRequestHeaderFieldsTooLarge && cc != nil && !cc.lineDone {
		se = errURITooLong
	}
	s.fail(ctx, se)
	setOperatorHeaders(&ctx.Response, s.cfg.ResponseHeaders)
	if cc != nil {
		s.finish(ctx, cc, cc.requestStart(), nil, -1, 0)
	}
}

// handleExpect refuses a body over the limit before the client sends it:
// the client waits for "100 Continue" and gets the 413 instead.
func (s *Server) handleExpect(ctx *fasthttp.RequestCtx) int {
	if !s.takeOversized(&ctx.Request.Header) {
		return fasthttp.StatusContinue
	}
	s.fail(ctx, s.unreadBody(ctx, errBodyTooLarge))
	setOperatorHeaders(&ctx.Response, s.cfg.ResponseHeaders)
	if cc := clientConnOf(ctx); cc != nil {
		s.finish(ctx, cc, cc.requestStart(), nil, -1, 0)
	}
	return fasthttp.StatusRequestEntityTooLarge
}

// maxDiscardedBody is what fasthttp drains of a body the handler left
// unread before it gives up on the connection (its maxUnreadStreamBodySize).
const maxDiscardedBody = 256 << 10

// limit applies the rate limit to the real client: a request over it waits
// its turn (nginx's limit_req burst) or is refused with RATE_LIMIT_STATUS.
func (s *Server) limit(ctx *fasthttp.RequestCtx, key []byte) error {
	wait, ok := s.cfg.Limiter.Limit(key)
	if !ok {
		s.stats.rateRefused.Add(1)
		// The body is never read. fasthttp discards up to 256 KiB of it
		// after the answer to keep the connection; a chunked or larger
		// body ends the connection instead, after a lingering drain so
		// the client reads the refusal rather than a reset.
		if n := ctx.Request.Header.ContentLength(); n == -1 || n > maxDiscardedBody {
			return s.unreadBody(ctx, s.rateLimited)
		}
		return s.rateLimited
	}
	if wait > 0 {
		s.stats.rateDelayed.Add(1)
		time.Sleep(wait)
	}
	return nil
}
