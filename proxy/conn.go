package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// listener wraps the client-facing listener so that every accepted
// connection becomes a *clientConn: the place where per-connection facts
// (the peer's address and trust) are computed once, where send timeouts are
// enforced between writes, and where the access-log record of a request is
// completed once its last byte has been written.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// fasthttp's Concurrency counts the connections it is serving; a
		// WebSocket it has handed over no longer counts there, but it does
		// here, so MAX_CONNECTIONS bounds the sockets the proxy holds.
		if l.srv.stats.open.Load() >= int64(l.srv.cfg.MaxConnections) {
			l.srv.refuse(c)
			continue
		}
		return l.wrap(c), nil
	}
}

func (l *listener) wrap(c net.Conn) net.Conn {
	cc := l.srv.newClientConn(c)
	if l.srv.cfg.TLS == nil {
		cc.plaintext = true
		return cc
	}
	return &tlsConn{Conn: tls.Server(cc, l.srv.cfg.TLS), cc: cc}
}

// tlsConn is the TLS connection fasthttp serves, with our clientConn
// beneath it. It shows the clientConn the plaintext (clientConn itself only
// sees TLS records), and keeps the Handshake and ConnectionState methods by
// which fasthttp tells a TLS connection.
type tlsConn struct {
	*tls.Conn
	cc *clientConn
}

func (t *tlsConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.cc.observe(p[:n])
	return n, err
}

// clientConn is one client connection. fasthttp serves a connection on a
// single goroutine, so apart from Close (which Shutdown may call from
// elsewhere) every method runs on that goroutine.
type clientConn struct {
	net.Conn
	srv *Server

	peer        netip.Addr // invalid for a unix-socket peer
	peerTrusted bool
	peerText    []byte // peer as text, for X-Forwarded-For

	// served is set by the first Read: fasthttp reads before it ever writes
	// on a connection it serves, so a write before any read is the 503 it
	// sends when MAX_CONNECTIONS is reached (see Write).
	served atomic.Bool
	// silent makes the connection drop what is written to it: set when a
	// client that never sent a byte times out, which nginx answers with a
	// plain close rather than a 408.
	silent      bool
	refusedOnce atomic.Bool
	// linger is set when the connection ends with a request body unread.
	linger bool
	// resetOnClose is set when the client stopped reading (SEND_TIMEOUT).
	resetOnClose bool
	closed       atomic.Bool
	// written counts bytes written since the last response was finished.
	written atomic.Int64
	// chunk is ReadFrom's reader, kept here so a sendfile costs no allocation.
	chunk io.LimitedReader
	// sock reads and writes the socket without waking the runtime's
	// sysmon thread at every request (see rawSocket).
	sock rawSocket
	// writeBy and bodyReadBy pace SEND_TIMEOUT and CLIENT_BODY_TIMEOUT.
	writeBy    gapDeadline
	bodyReadBy gapDeadline
	// plaintext is set when the connection carries no TLS: Read then sees
	// the HTTP bytes itself; on a TLS connection tlsConn shows them.
	plaintext bool
	// bytesRead counts HTTP bytes read since the last response was
	// finished, so that an idle timeout can be told from a slow request.
	bytesRead int64
	// lineDone is set once the current request line is complete, to tell
	// a request line too long (414) from a header too large (431).
	lineDone bool
	// start is when the first byte of the current request was read.
	start time.Time

	// pending is the access-log record of the request whose response is
	// being written. It is finished when that response is out: on the next
	// read, the next request, or Close. The atomic makes a Close from
	// Shutdown's goroutine safe.
	pending atomic.Pointer[pendingRecord]
}

func (s *Server) newClientConn(c net.Conn) *clientConn {
	cc := &clientConn{Conn: c, srv: s}
	cc.sock.init(c)
	s.stats.open.Add(1)
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			cc.peer = ip.Unmap()
			cc.peerTrusted = s.trusted.Contains(cc.peer)
			cc.peerText = cc.peer.AppendTo(nil)
		}
	case *net.UnixAddr:
		// A peer on a unix socket is a local process that was allowed to
		// open the socket: trusted, with no address of its own to add.
		cc.peerTrusted = true
	}
	return cc
}

// clientConnOf finds our connection under fasthttp's view of it: the conn
// itself, or the TLS connection wrapped around it.
func clientConnOf(ctx *fasthttp.RequestCtx) *clientConn {
	switch c := ctx.Conn().(type) {
	case *clientConn:
		return c
	case *tlsConn:
		return c.cc
	}
	return nil
}

func (c *clientConn) Read(p []byte) (int, error) {
	if !c.served.Load() {
		c.served.Store(true)
	}
	// A read on the connection means the previous response has been handed
	// to the kernel in full: fasthttp flushes before it waits for more.
	c.finishPending()
	n, err := c.sock.Read(p)
	if c.plaintext {
		c.observe(p[:n])
	}
	return n, err
}

// observe notes the HTTP bytes of a request as they arrive.
func (c *clientConn) observe(b []byte) {
	if len(b) == 0 {
		return
	}
	if c.bytesRead == 0 {
		c.start = time.Now()
	}
	c.bytesRead += int64(len(b))
	if !c.lineDone && bytes.IndexByte(b, '\n') >= 0 {
		c.lineDone = true
	}
}

// maxWriteChunk bounds one write so that SEND_TIMEOUT is a limit on the gap
// between two successful writes (as nginx's send_timeout), not on the whole
// response: a 32 MiB body to a slow but live mobile client must not be cut.
const maxWriteChunk = 64 << 10

func (c *clientConn) Write(p []byte) (int, error) {
	if !c.served.Load() {
		// fasthttp answers a connection over Server.Concurrency without
		// reading it; send our own 503, which carries the HEADER_* headers.
		c.setWriteDeadline()
		c.Conn.Write(c.srv.overloadResponse) //nolint:errcheck // closed right after
		return len(p), nil
	}
	if c.silent {
		return len(p), nil
	}
	written := 0
	for written < len(p) {
		chunk := p[written:]
		if len(chunk) > maxWriteChunk {
			chunk = chunk[:maxWriteChunk]
		}
		c.setWriteDeadline()
		n, err := c.sock.Write(chunk)
		written += n
		c.written.Add(int64(n))
		if err != nil {
			c.noteWriteError(err)
			return written, err
		}
	}
	return written, nil
}

// maxSendfileChunk bounds one sendfile(2) of a spooled body, for the same
// reason as maxWriteChunk: SEND_TIMEOUT is the longest a chunk may take.
const maxSendfileChunk = 256 << 10

// ReadFrom is how fasthttp writes a spooled response body: from its file
// straight to the socket with sendfile(2), a chunk at a time. fasthttp
// hands over the file inside an io.LimitedReader (the advertised size);
// anything else is copied through a buffer.
func (c *clientConn) ReadFrom(r io.Reader) (int64, error) {
	lr, isLimited := r.(*io.LimitedReader)
	rf, canSendfile := c.Conn.(io.ReaderFrom)
	if isLimited {
		_, isFile := lr.R.(*os.File)
		canSendfile = canSendfile && isFile
	}
	if !isLimited || !canSendfile || c.silent || !c.served.Load() {
		return io.Copy(writerOnly{c}, r)
	}
	var total int64
	for lr.N > 0 {
		c.chunk = io.LimitedReader{R: lr.R, N: min(lr.N, maxSendfileChunk)}
		c.setWriteDeadline()
		n, err := rf.ReadFrom(&c.chunk)
		total += n
		lr.N -= n
		c.written.Add(n)
		if err != nil {
			c.noteWriteError(err)
			return total, err
		}
		if n == 0 {
			return total, io.ErrUnexpectedEOF
		}
	}
	return total, nil
}

// writerOnly hides ReadFrom, so io.Copy falls back to Write.
type writerOnly struct{ io.Writer }

// noteWriteError remembers a client that stopped reading past SEND_TIMEOUT:
// its connection is reset rather than closed, since a plain close would
// leave the kernel trickling the megabytes still queued to a reader that
// wants them slowly (nginx's reset_timedout_connection).
func (c *clientConn) noteWriteError(err error) {
	if isTimeout(err) && !c.resetOnClose {
		c.resetOnClose = true
		c.srv.errlog.logf(logSendTimeout, "client %s stopped reading for SEND_TIMEOUT=%v: connection reset", c.RemoteAddr(), c.srv.cfg.SendTimeout)
	}
}

func (c *clientConn) setWriteDeadline() {
	if timeout := c.srv.cfg.SendTimeout; timeout > 0 {
		if d, ok := c.writeBy.next(timeout); ok {
			c.Conn.SetWriteDeadline(d) //nolint:errcheck // a dead conn fails the write anyway
		}
	}
}

func (c *clientConn) Close() error {
	if !c.served.Load() && !c.refusedOnce.Swap(true) {
		// Closed without ever being read: refused over MAX_CONNECTIONS.
		// (A TLS connection gets no 503 from fasthttp, only the close.)
		c.srv.refused(c)
	}
	if !c.closed.Swap(true) {
		c.srv.stats.open.Add(-1)
	}
	c.finishPending()
	if c.resetOnClose {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			tc.SetLinger(0) //nolint:errcheck // best effort: a close still ends it
		}
	} else if c.linger {
		c.linger = false
		c.drainBeforeClose()
	}
	return c.Conn.Close()
}

// Bounds of the lingering close (nginx's lingering_close, lingering_time).
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)

// drainBeforeClose ends a connection whose client may still be sending a
// body the proxy refused. Closing a socket with unread bytes in it makes
// the kernel answer with a reset, and a reset can destroy the answer — the
// 413 — before the client has read it. So the proxy says it is done writing
// (FIN), then reads and discards for a short while, as nginx does.
func (c *clientConn) drainBeforeClose() {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return // no half-close (a unix or in-memory conn): close at once
	}
	c.Conn.SetReadDeadline(time.Now().Add(lingerTime))       //nolint:errcheck // best effort
	io.Copy(io.Discard, io.LimitReader(c.Conn, lingerBytes)) //nolint:errcheck // best effort
}

// requestStart is when the current request's first byte was read; a
// pipelined request whose bytes came with the previous one starts now.
func (c *clientConn) requestStart() time.Time {
	if c.bytesRead == 0 || c.start.IsZero() {
		c.start = time.Now()
	}
	return c.start
}

// pendingRecord is an AccessRecord that owns its bytes: the request it
// describes may be overwritten by the next pipelined request before the
// response has been written.
type pendingRecord struct {
	rec    AccessRecord
	ip     []byte
	method []byte
	uri    []byte
}

var pendingPool = sync.Pool{New: func() any { return new(pendingRecord) }}

// setPending hands the finished request's record to the connection, which
// logs it once the response is written.
func (c *clientConn) setPending(rec *AccessRecord) {
	p := pendingPool.Get().(*pendingRecord)
	p.ip = append(p.ip[:0], rec.ClientIP...)
	p.method = append(p.method[:0], rec.Method...)
	p.uri = append(p.uri[:0], rec.URI...)
	p.rec = *rec
	p.rec.ClientIP, p.rec.Method, p.rec.URI = p.ip, p.method, p.uri
	if old := c.pending.Swap(p); old != nil {
		// A pipelined request finished before the previous response reached
		// the socket; log the earlier one now rather than lose it.
		c.srv.emit(old)
	}
}

// requestDone marks the end of a request: the next byte read starts the
// next one.
func (c *clientConn) requestDone() {
	c.bytesRead = 0
	c.lineDone = false
}

func (c *clientConn) finishPending() {
	written := c.written.Swap(0)
	if p := c.pending.Swap(nil); p != nil {
		p.rec.ResponseSize = written
		c.srv.emit(p)
	}
}

func (s *Server) emit(p *pendingRecord) {
	p.rec.End = time.Now()
	s.cfg.AccessLog.Log(&p.rec)
	const maxPooledURI = 4 << 10
	if cap(p.uri) <= maxPooledURI {
		pendingPool.Put(p)
	}
}
