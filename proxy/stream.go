package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/gunicorn-proxy/gunicorn-proxy/internal/ascii"
	"github.com/valyala/fasthttp"
)

// The two exceptions to "buffer everything": answers the app wants
// streamed, and WebSockets. Both hold the app's connection — and so a
// gunicorn worker — for as long as the client takes, which is why they are
// opt-in (by the app, per response) or need an async worker anyway.

// wantsStreaming reports whether an answer is to be relayed as it comes:
// the app said so with nginx's X-Accel-Buffering: no, or it is a
// Server-Sent Events stream, which buffering would hold back for ever.
// X-Accel-Buffering: yes keeps even an event stream buffered.
func wantsStreaming(h *fasthttp.ResponseHeader) bool {
	for name, value := range h.All() {
		if len(name) == 17 && ascii.EqualFold(name, "X-Accel-Buffering") {
			return ascii.EqualFold(bytes.TrimSpace(value), "no")
		}
	}
	ct := h.ContentType()
	const eventStream = "text/event-stream"
	return len(ct) >= len(eventStream) && ascii.EqualFold(ct[:len(eventStream)], eventStream)
}

// streamedBody is the app's answer on its way to the client as it comes.
// fasthttp writes a body stream of unknown length as chunks, flushing each
// one, so every event reaches the client as soon as the app writes it; and
// it closes the stream once written, which is when the connection to the
// app is released.
type streamedBody struct {
	resp    *fasthttp.Response // holds the app's body stream
	br      *bufio.Reader
	eof     bool
	release func(reusable bool)
}

func (b *streamedBody) Read(p []byte) (int, error) {
	n, err := b.resp.BodyStream().Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close releases the connection to the app: back to the pool if the body
// was read to its end, closed if the client went away first.
func (b *streamedBody) Close() error {
	if b.release == nil {
		return nil
	}
	err := b.resp.CloseBodyStream()
	b.release(b.eof && err == nil)
	b.release = nil
	fasthttp.ReleaseResponse(b.resp)
	return nil
}

// isWebSocketHandshake reports whether a request asks to become a
// WebSocket (RFC 6455 §4.1): Upgrade: websocket, with Connection naming
// Upgrade. Any other Upgrade (h2c…) stays a hop-by-hop header and is
// dropped.
func isWebSocketHandshake(h *fasthttp.RequestHeader, ex *exchange) bool {
	if !h.IsGet() || !ascii.EqualFold(bytes.TrimSpace(ex.upgradeValue), "websocket") {
		return false
	}
	for _, t := range ex.connTokens {
		if ascii.EqualFold(t, "upgrade") {
			return true
		}
	}
	return false
}

var (
	hdrConnection  = []byte("Connection")
	hdrUpgrade     = []byte("Upgrade")
	valueUpgrade   = []byte("Upgrade")
	valueWebSocket = []byte("websocket")
)

// appTunnel is the app's side of a WebSocket, once it has answered 101.
type appTunnel struct {
	conn *appConn
	br   *bufio.Reader // may hold the app's first frames already
	pool *fasthttp.HostClient
}

func (t *appTunnel) close() {
	t.conn.Close()
	t.pool.ReleaseReader(t.br)
}

// handshake sends a WebSocket handshake on a connection of its own, never
// a pooled one: if the app agrees, the connection leaves HTTP for good.
func (u *upstream) handshake(ex *exchange, cfg *Config) error {
	c, err := dialUpstream(cfg.Upstream, cfg.ProxyConnectTimeout, cfg.ProxyReadTimeout)
	if err != nil {
		return err
	}
	conn := c.(*appConn)
	if err := u.send(conn, ex); err != nil {
		conn.Close()
		return err
	}
	resp := ex.resp
	resp.Reset()
	resp.Header.DisableNormalizing()
	resp.StreamBody = true
	br := u.pool.AcquireReader(conn)
	err = resp.ReadLimitBody(br, 0)
	if err == nil && resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		ex.tunnel = &appTunnel{conn: conn, br: br, pool: u.pool}
		return nil
	}
	// The app said no (403, 426…): an ordinary answer, and the end of
	// this connection.
	if err == nil {
		if stream := resp.BodyStream(); stream != nil {
			err = ex.respBody.readFrom(stream, &u.spool, int64(resp.Header.ContentLength()), 0, nil)
			resp.CloseBodyStream() //nolint:errcheck // the connection is closed next
		}
	}
	u.pool.ReleaseReader(br)
	conn.Close()
	return err
}

// runTunnel joins the client's connection to the app's and copies bytes
// both ways until either side closes, or neither has said anything for
// WEBSOCKET_IDLE_TIMEOUT.
func (s *Server) runTunnel(client net.Conn, t *appTunnel) {
	s.stats.tunnels.Add(1)
	defer s.stats.tunnels.Add(-1)
	defer t.close()
	t.conn.ioTimeout = 0 // the tunnel keeps its own time
	idle := s.cfg.WebSocketIdleTimeout
	var lastActive atomic.Int64
	lastActive.Store(time.Now().UnixNano())

	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(t.conn, client, client, idle, &lastActive)
		t.conn.Close() // the client is gone: so is the app's side
	}()
	pump(client, t.br, t.conn, idle, &lastActive)
	client.Close()
	<-done
}

// pump copies src to dst. A read that times out ends the copy only if the
// other direction has been quiet too: a server that pushes to a silent
// client is not idle.
func pump(dst io.Writer, src io.Reader, srcConn net.Conn, idle time.Duration, lastActive *atomic.Int64) {
	bufp := copyBufferPool.Get().(*[]byte)
	defer copyBufferPool.Put(bufp)
	buf := *bufp
	var pace gapDeadline
	for {
		if idle > 0 {
			if d, ok := pace.next(idle); ok {
				srcConn.SetReadDeadline(d) //nolint:errcheck // a dead conn fails the read
			}
		}
		n, err := src.Read(buf)
		if n > 0 {
			lastActive.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if idle > 0 && isTimeout(err) && time.Since(time.Unix(0, lastActive.Load())) < idle {
				pace.forget()
				continue
			}
			return
		}
	}
}
