package proxy

import (
	"errors"
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
func (s *Server) readBody(ctx *fasthttp.RequestCtx, body *spool) error {
	declared := ctx.Request.Header.ContentLength() // -1 chunked, -2 none
	stream := ctx.RequestBodyStream()
	if stream == nil || declared == 0 || declared == -2 {
		return nil
	}
	timeout := s.cfg.ClientBodyTimeout
	var pace *gapDeadline
	if cc := clientConnOf(ctx); cc != nil {
		pace = &cc.bodyReadBy
		pace.forget() // fasthttp set the read deadline for the header
	}
	err := body.readFrom(stream, &s.spoolCfg, int64(declared), s.cfg.MaxBodySize, func() {
		if timeout <= 0 {
			return
		}
		if pace == nil {
			ctx.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck // a dead conn fails the read
		} else if d, ok := pace.next(timeout); ok {
			ctx.SetReadDeadline(d) //nolint:errcheck // a dead conn fails the read
		}
	})
	if err == nil {
		return nil
	}
	var se *spoolError // declared here: errors.As moves it to the heap
	switch {
	case errors.As(err, &se):
		return s.unreadBody(ctx, &statusError{status: fasthttp.StatusInternalServerError, cause: "spooling the request body", err: err})
	case errors.Is(err, errBodyTooLarge):
		return s.unreadBody(ctx, errBodyTooLarge)
	default:
		return s.unreadBody(ctx, clientError(err))
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
