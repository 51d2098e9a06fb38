package proxy

import (
	"bufio"
	"errors"
	"net"
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

func newHostClient(cfg *Config) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:      cfg.Upstream.String(),
		Transport: appTransport{},
		DialTimeout: func(string, time.Duration) (net.Conn, error) {
			return dialUpstream(cfg.Upstream, cfg.ProxyConnectTimeout, cfg.ProxyReadTimeout)
		},
		// Each client connection has at most one request at the app, so
		// there can never be more app connections than client ones; a
		// request never fails for want of a pooled connection.
		MaxConns:            cfg.MaxConnections,
		MaxConnWaitTimeout:  cfg.ProxyConnectTimeout,
		MaxIdleConnDuration: upstreamIdleTimeout,
		// LIFO reuses the warmest connection and lets the others age out.
		ConnPoolStrategy: fasthttp.LIFO,
		// appTransport alone decides what may be sent twice (see RoundTrip);
		// this only bounds how often it may say so for one request.
		MaxIdemponentCallAttempts: 3,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, true },
		ReadBufferSize:            upstreamReadBufferSize,
		WriteBufferSize:           upstreamWriteBufferSize,
		// Byte-for-byte: header names keep their case, paths their form,
		// and the app sees the client's User-Agent or none.
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
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
	raw       syscall.RawConn
	probe     func(fd uintptr) bool // bound once, so a probe allocates nothing
	probeErr  error
	probeBuf  [1]byte
	// received counts bytes read since the current request was sent.
	received int
}

func newAppConn(c net.Conn, ioTimeout time.Duration) *appConn {
	ac := &appConn{Conn: c, ioTimeout: ioTimeout}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			ac.raw = raw
			ac.probe = ac.peek
		}
	}
	return ac
}

func (c *appConn) Read(p []byte) (int, error) {
	if c.ioTimeout > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.ioTimeout)) //nolint:errcheck // a dead conn fails the read
	}
	n, err := c.Conn.Read(p)
	c.received += n
	return n, err
}

func (c *appConn) Write(p []byte) (int, error) {
	if c.ioTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.ioTimeout)) //nolint:errcheck // a dead conn fails the write
	}
	return c.Conn.Write(p)
}

// closedByApp reports whether an idle pooled connection can no longer carry
// a request: the app closed or reset it, or sent bytes nobody asked for.
// gunicorn's gthread workers close idle connections after --keep-alive
// seconds and every worker's connections die when it restarts; sending a
// request into such a socket would fail it after the fact.
func (c *appConn) closedByApp() bool {
	if c.raw == nil {
		return false
	}
	if err := c.raw.Read(c.probe); err != nil {
		return true
	}
	// EAGAIN: nothing to read, the connection is healthy. Anything else is
	// an orderly close (0 bytes), a reset, or a stray byte nobody asked for.
	return c.probeErr != syscall.EAGAIN
}

func (c *appConn) peek(fd uintptr) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd,
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

// appTransport sends one request to the app and reads the whole answer.
// It replaces fasthttp's default transport for two reasons:
//
//   - Bytes: the default rebuilds the request-target from its parsed URI,
//     which drops an empty query ("/a?") and misreads "//a?u=http://b" as
//     an absolute URI. Here the request line is the client's.
//   - Retries: the default retries any GET/HEAD/PUT after any error, even
//     one the app received and crashed on. Here a request is sent again
//     only if it cannot have reached the app (a pooled connection found
//     dead before writing), or if it is idempotent and failed on a reused
//     connection before a byte of answer — the keep-alive race, as Go's
//     net/http does. A POST is never sent twice.
type appTransport struct{}

func (appTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	cc, err := hc.AcquireConn(0, false)
	if err != nil {
		return false, err
	}
	conn, _ := cc.Conn().(*appConn)
	if conn == nil {
		hc.CloseConn(cc)
		return false, errors.New("proxy: unexpected connection type")
	}
	reused := conn.requests > 0
	conn.requests++
	if reused && conn.closedByApp() {
		hc.CloseConn(cc)
		// The app restarted or timed the idle connections out: the rest of
		// the pool is most likely dead too.
		hc.CloseIdleConnections()
		return true, errStaleConn
	}

	bw := hc.AcquireWriter(conn)
	err = writeRequest(bw, req)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return reused && idempotent(req) && !isTimeout(err), err
	}

	resp.Header.DisableNormalizing()
	resp.SkipBody = req.Header.IsHead()
	conn.received = 0
	br := hc.AcquireReader(conn)
	err = resp.Read(br)
	hc.ReleaseReader(br)
	if err != nil {
		hc.CloseConn(cc)
		if reused && conn.received == 0 && idempotent(req) && !isTimeout(err) {
			hc.CloseIdleConnections()
			return true, err
		}
		return false, err
	}
	if resp.ConnectionClose() {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, nil
}

// writeRequest writes the head exactly as built and frames the body with
// Content-Length: the body is complete in memory, so the app never has to
// parse chunked encoding.
func writeRequest(bw *bufio.Writer, req *fasthttp.Request) error {
	body := req.Body()
	if len(body) > 0 || !(req.Header.IsGet() || req.Header.IsHead() || req.Header.IsDelete() || req.Header.IsOptions() || req.Header.IsTrace()) {
		var buf [20]byte
		req.Header.SetBytesKV(hdrContentLength, strconv.AppendInt(buf[:0], int64(len(body)), 10))
	}
	if err := req.Header.Write(bw); err != nil {
		return err
	}
	_, err := bw.Write(body)
	return err
}

// idempotent methods (RFC 9110 §9.2.2) may be sent twice.
func idempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsPut() || h.IsDelete() || h.IsOptions() || h.IsTrace()
}
