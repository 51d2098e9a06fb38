package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Upstream is where the app listens: a TCP host:port or a unix socket path.
type Upstream struct {
	Network string // "tcp" or "unix"
	Address string
}

func (u Upstream) String() string {
	if u.Network == "unix" {
		return "unix:" + u.Address
	}
	return u.Address
}

// upstreamIdleTimeout is how long an idle keep-alive connection to the app
// is kept. It is below gunicorn's default --keep-alive of 2 s on purpose:
// the app closing an idle connection at the moment a request is sent on it
// is the race every keep-alive client loses sometimes, so the proxy lets go
// first. Under steady load connections never sit idle that long.
const upstreamIdleTimeout = time.Second

// Buffer sizes for talking to the app. The read buffer bounds the response
// header; nginx's proxy_buffer_size is 4–8 KiB, but apps set big cookies,
// and the buffer is pooled, only held while a response is read.
const (
	upstreamReadBufferSize  = 32 << 10
	upstreamWriteBufferSize = 16 << 10
)

// maxAttempts bounds how often one request may be sent; see roundTrip for
// when a second attempt is allowed at all.
const maxAttempts = 3

// upstream talks to the app. fasthttp.HostClient is its connection pool —
// dialing, idle timeout, the MAX_CONNECTIONS bound, buffers — and roundTrip
// is the transport: it writes the request head exactly as the handler built
// it, reads the answer into a spool (memory, then disk), and decides alone
// what may be sent again.
type upstream struct {
	pool  *fasthttp.HostClient
	spool spoolConfig
	cfg   *Config
}

func newUpstream(cfg *Config) *upstream {
	return &upstream{
		cfg:   cfg,
		spool: spoolConfig{dir: cfg.BufferDir, memory: cfg.BufferMemory, copyBuffers: &copyBufferPool},
		pool: &fasthttp.HostClient{
			Addr: cfg.Upstream.String(),
			DialTimeout: func(string, time.Duration) (net.Conn, error) {
				return dialUpstream(cfg.Upstream, cfg.ProxyConnectTimeout, cfg.ProxyReadTimeout)
			},
			// Each client connection has at most one request at the app, so
			// there can never be more app connections than client ones.
			MaxConns:            cfg.MaxConnections,
			MaxConnWaitTimeout:  cfg.ProxyConnectTimeout,
			MaxIdleConnDuration: upstreamIdleTimeout,
			// LIFO reuses the warmest connection and lets the others age out.
			ConnPoolStrategy: fasthttp.LIFO,
			ReadBufferSize:   upstreamReadBufferSize,
			WriteBufferSize:  upstreamWriteBufferSize,
		},
	}
}

// dialError marks a failure to connect, which is a 502 and is never retried.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func dialUpstream(u Upstream, connectTimeout, ioTimeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: connectTimeout}
	c, err := d.Dial(u.Network, u.Address)
	if err != nil {
		return nil, &dialError{err: err}
	}
	return newAppConn(c, ioTimeout), nil
}

// appConn is one connection to the app. It applies PROXY_READ_TIMEOUT to
// every read and write (the gap between two of them, as nginx's
// proxy_read_timeout), counts requests so a reused connection can be told
// from a fresh one, and can check whether the app has closed it.
type appConn struct {
	net.Conn
	ioTimeout time.Duration
	requests  int
	// sock reads and writes the socket without waking the runtime's
	// sysmon thread at every request (see rawSocket).
	sock     rawSocket
	probe    func(fd uintptr) bool // bound once, so a probe allocates nothing
	probeErr error
	probeBuf [1]byte
	// received counts bytes read since the current request was sent.
	received int
	readBy   gapDeadline
	writeBy  gapDeadline
}

func newAppConn(c net.Conn, ioTimeout time.Duration) *appConn {
	ac := &appConn{Conn: c, ioTimeout: ioTimeout}
	ac.sock.init(c)
	ac.probe = ac.peek
	return ac
}

func (c *appConn) Read(p []byte) (int, error) {
	if c.ioTimeout > 0 {
		if d, ok := c.readBy.next(c.ioTimeout); ok {
			c.Conn.SetReadDeadline(d) //nolint:errcheck // a dead conn fails the read
		}
	}
	n, err := c.sock.Read(p)
	c.received += n
	return n, err
}

func (c *appConn) Write(p []byte) (int, error) {
	c.armWrite()
	return c.sock.Write(p)
}

// armWrite sets the write deadline for the next write.
func (c *appConn) armWrite() {
	if c.ioTimeout > 0 {
		if d, ok := c.writeBy.next(c.ioTimeout); ok {
			c.Conn.SetWriteDeadline(d) //nolint:errcheck // a dead conn fails the write
		}
	}
}

// closedByApp reports whether an idle pooled connection can no longer carry
// a request: the app closed or reset it, or sent bytes nobody asked for.
// gunicorn's gthread workers close idle connections after --keep-alive
// seconds and every worker's connections die when it restarts; sending a
// request into such a socket would fail it after the fact.
func (c *appConn) closedByApp() bool {
	if c.sock.rc == nil {
		return false
	}
	err := c.sock.rc.Read(c.probe)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The read deadline of the last answer ran out while the
		// connection sat in the pool, which says nothing about the app
		// (PROXY_READ_TIMEOUT may be shorter than the pool keeps a
		// connection). Clear it, for the next Read to arm anew, and look.
		c.Conn.SetReadDeadline(time.Time{}) //nolint:errcheck // a dead conn fails the probe
		c.readBy.forget()
		err = c.sock.rc.Read(c.probe)
	}
	if err != nil {
		return true
	}
	// EAGAIN: nothing to read, the connection is healthy. Anything else is
	// an orderly close (0 bytes), a reset, or a stray byte nobody asked for.
	return c.probeErr != syscall.EAGAIN
}

func (c *appConn) peek(fd uintptr) bool {
	// Raw, as rawSocket's calls: MSG_DONTWAIT never blocks.
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
		uintptr(unsafe.Pointer(&c.probeBuf[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	c.probeErr = nil
	if errno != 0 {
		c.probeErr = errno
	}
	return true // never wait for readability: this is a probe
}

// errStaleConn means a pooled connection was found closed before anything
// was sent on it: always safe to retry.
var errStaleConn = errors.New("pooled connection to the app was closed by the app")

// roundTrip sends ex's request to the app and reads the whole answer: the
// header into ex.resp, the body into ex.respBody.
//
// A request is sent again only if it cannot have reached the app (a pooled
// connection found dead before writing), or if it is idempotent and failed
// on a reused connection before a byte of answer — the keep-alive race, as
// Go's net/http handles it. fasthttp's own default retries any GET, HEAD or
// PUT after any error, even one the app received and crashed on; a POST is
// never sent twice here.
func (u *upstream) roundTrip(ex *exchange) error {
	if ex.upgrade {
		return u.handshake(ex, u.cfg)
	}
	for attempt := 1; ; attempt++ {
		retry, err := u.try(ex)
		if err == nil || !retry || attempt == maxAttempts {
			return err
		}
	}
}

func (u *upstream) try(ex *exchange) (retry bool, err error) {
	cc, err := u.pool.AcquireConn(0, false)
	if err != nil {
		return false, err
	}
	conn, _ := cc.Conn().(*appConn)
	if conn == nil {
		u.pool.CloseConn(cc)
		return false, errors.New("proxy: unexpected connection type")
	}
	reused := conn.requests > 0
	conn.requests++
	if reused && conn.closedByApp() {
		u.pool.CloseConn(cc)
		// The app restarted or timed the idle connections out: the rest of
		// the pool is most likely dead too.
		u.pool.CloseIdleConnections()
		return true, errStaleConn
	}

	if err = u.send(conn, ex); err != nil {
		u.pool.CloseConn(cc)
		return reused && idempotent(&ex.reqHeader) && !isTimeout(err), err
	}

	resp := ex.resp
	resp.Reset()
	ex.respBody.reset()
	resp.Header.DisableNormalizing()
	resp.SkipBody = ex.reqHeader.IsHead()
	resp.StreamBody = true // the body goes to the spool, not to fasthttp's buffer
	conn.received = 0
	br := u.pool.AcquireReader(conn)
	err = resp.ReadLimitBody(br, 0) // the header, past any 1xx
	if err == nil && resp.BodyStream() != nil && wantsStreaming(&resp.Header) {
		// The app asked for its answer to be relayed as it comes: the
		// connection to the app goes with the body, and back to the pool
		// (or closed) when the client has it all.
		ex.streamed = &streamedBody{resp: resp, br: br, release: func(reusable bool) {
			u.pool.ReleaseReader(br)
			if reusable && !resp.ConnectionClose() && resp.Header.ContentLength() != -2 {
				u.pool.ReleaseConn(cc)
			} else {
				u.pool.CloseConn(cc)
			}
		}}
		ex.resp = fasthttp.AcquireResponse()
		return false, nil
	}
	if err == nil {
		if stream := resp.BodyStream(); stream != nil {
			err = ex.respBody.readFrom(stream, &u.spool, int64(resp.Header.ContentLength()), 0, nil)
			if cerr := resp.CloseBodyStream(); err == nil && cerr != nil && !errors.Is(cerr, io.EOF) {
				err = cerr
			}
		}
	}
	u.pool.ReleaseReader(br)
	if err != nil {
		u.pool.CloseConn(cc)
		if reused && conn.received == 0 && idempotent(&ex.reqHeader) && !isTimeout(err) {
			u.pool.CloseIdleConnections()
			return true, err
		}
		return false, err
	}
	// A body that ends with the connection (no length, not chunked) leaves
	// nothing to reuse.
	if resp.ConnectionClose() || resp.Header.ContentLength() == -2 {
		u.pool.CloseConn(cc)
	} else {
		u.pool.ReleaseConn(cc)
	}
	return false, nil
}

// send writes the request: the head exactly as built, and the body framed
// by Content-Length — the body is complete (in memory or spooled), so the
// app never has to parse chunked encoding. An in-memory body goes out with
// its head in one writev, a spooled one through a pooled buffered writer.
func (u *upstream) send(conn *appConn, ex *exchange) error {
	head, body := &ex.reqHeader, &ex.reqBody
	if body.size > 0 || !(head.IsGet() || head.IsHead() || head.IsDelete() || head.IsOptions() || head.IsTrace()) {
		var buf [20]byte
		head.SetBytesKV(hdrContentLength, strconv.AppendInt(buf[:0], body.size, 10))
	}
	if body.onDisk() {
		if err := body.rewind(); err != nil {
			return &spoolError{err: err}
		}
		bw := u.pool.AcquireWriter(conn)
		defer u.pool.ReleaseWriter(bw)
		if err := head.Write(bw); err != nil {
			return err
		}
		if _, err := io.Copy(bw, body.file); err != nil {
			return err
		}
		return bw.Flush()
	}
	conn.armWrite()
	ex.iov = append(ex.iovArray[:0], head.Header(), body.mem)
	_, err := conn.sock.Writev(ex.iov)
	return err
}

// idempotent methods (RFC 9110 §9.2.2) may be sent twice.
func idempotent(h *fasthttp.RequestHeader) bool {
	return h.IsGet() || h.IsHead() || h.IsPut() || h.IsDelete() || h.IsOptions() || h.IsTrace()
}
