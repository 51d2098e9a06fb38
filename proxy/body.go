package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// readBody reads the whole request body into dst before the app is
// contacted: a client that trickles its body holds a proxy goroutine, never
// a gunicorn worker.
//
// fasthttp hands the handler a stream (Server.StreamRequestBody) so that
// the limits are ours: a declared Content-Length over the limit is refused
// before a byte of the body is read, a chunked body as soon as it crosses
// the limit, and CLIENT_BODY_TIMEOUT bounds the gap between two reads, as
// nginx's client_body_timeout, rather than the whole upload.
func (s *Server) readBody(ctx *fasthttp.RequestCtx, dst []byte) ([]byte, error) {
	dst = dst[:0]
	limit := s.cfg.MaxBodySize
	declared := ctx.Request.Header.ContentLength() // -1 chunked, -2 none
	stream := ctx.RequestBodyStream()
	if stream == nil || declared == 0 || declared == -2 {
		return dst, nil
	}
	if declared > 0 && cap(dst) < declared {
		// Room for the declared body, but no more than a pooled buffer
		// holds: a client may declare a gigabyte and send three bytes.
		dst = make([]byte, 0, min(declared, maxPooledBody))
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)] // let append pick the growth
		}
		if d := s.cfg.ClientBodyTimeout; d > 0 {
			ctx.SetReadDeadline(time.Now().Add(d)) //nolint:errcheck // a dead conn fails the read
		}
		n, err := stream.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if limit > 0 && int64(len(dst)) > limit {
			return dst, s.unreadBody(ctx, errBodyTooLarge)
		}
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, s.unreadBody(ctx, clientError(err))
		}
	}
}

// unreadBody notes that the client may still be sending a body nobody will
// read: the connection then lingers before it closes (see clientConn).
func (s *Server) unreadBody(ctx *fasthttp.RequestCtx, err error) error {
	if cc := clientConnOf(ctx); cc != nil {
		cc.linger = true
	}
	return err
}
