package proxy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// statusError is a request the proxy answers itself. It carries the status
// the client sees and the cause, which goes to the error log only: the
// client gets a short plain-text page that reveals nothing about the app.
type statusError struct {
	status int
	cause  string
	err    error
}

func (e *statusError) Error() string {
	if e.err == nil {
		return e.cause
	}
	return e.cause + ": " + e.err.Error()
}

func (e *statusError) Unwrap() error { return e.err }

// The failures the request path can end in. They are values, not
// constructors, so that the common refusals allocate nothing.
var (
	errMethodNotAllowed = &statusError{status: fasthttp.StatusMethodNotAllowed, cause: "CONNECT is not proxied"}
	errBadTarget        = &statusError{status: fasthttp.StatusBadRequest, cause: "request-target is not origin-form or absolute-form"}
	errBodyTooLarge     = &statusError{status: fasthttp.StatusRequestEntityTooLarge, cause: "request body over MAX_BODY_SIZE"}
	errNoHost           = &statusError{status: fasthttp.StatusBadRequest, cause: "HTTP/1.1 request without Host"}
	errMalformedHeader  = &statusError{status: fasthttp.StatusBadRequest, cause: "malformed header field"}
	errTooManyHeaders   = &statusError{status: fasthttp.StatusRequestHeaderFieldsTooLarge, cause: "more than 100 header fields"}
	errFramingConflict  = &statusError{status: fasthttp.StatusBadRequest, cause: "both Content-Length and Transfer-Encoding (request smuggling?)"}
	errTransferCoding   = &statusError{status: fasthttp.StatusNotImplemented, cause: "a Transfer-Encoding other than chunked"}
	errHTTPVersion      = &statusError{status: fasthttp.StatusHTTPVersionNotSupported, cause: "an HTTP version other than 1.0 and 1.1"}
	errURITooLong       = &statusError{status: fasthttp.StatusRequestURITooLong, cause: "request line over the buffer"}
)

// upstreamKind is a family of failures to get an answer from the app.
type upstreamKind int

const (
	upstreamRefused upstreamKind = iota
	upstreamTimeout
	upstreamReset
	upstreamInvalid
	numUpstreamKinds
)

// upstreamError classifies a failure to get an answer from the app:
// a timeout while waiting for it is a 504, anything else a 502.
func upstreamError(err error) (*statusError, upstreamKind) {
	var dial *dialError
	switch {
	case errors.As(err, &dial):
		return &statusError{status: fasthttp.StatusBadGateway, cause: "cannot connect to the app", err: dial.err}, upstreamRefused
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return &statusError{status: fasthttp.StatusBadGateway, cause: "no free connection to the app", err: err}, upstreamRefused
	case isTimeout(err):
		return &statusError{status: fasthttp.StatusGatewayTimeout, cause: "the app did not answer within PROXY_READ_TIMEOUT", err: err}, upstreamTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return &statusError{status: fasthttp.StatusBadGateway, cause: "the app closed the connection before a complete response", err: err}, upstreamReset
	default:
		return &statusError{status: fasthttp.StatusBadGateway, cause: "invalid response from the app", err: err}, upstreamInvalid
	}
}

// clientError classifies a failure to read the client's request.
func clientError(err error) *statusError {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		return &statusError{status: fasthttp.StatusRequestHeaderFieldsTooLarge, cause: "request header too large", err: err}
	case isTimeout(err):
		return &statusError{status: fasthttp.StatusRequestTimeout, cause: "client too slow", err: err}
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errBodyTooLarge
	default:
		return &statusError{status: fasthttp.StatusBadRequest, cause: "malformed request", err: err}
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &te) && te.Timeout())
}

// statusPages holds the body the client sees for each status the proxy
// produces itself: "502 Bad Gateway\n" and so on, built once.
var statusPages = func() map[int][]byte {
	pages := make(map[int][]byte)
	for _, code := range []int{400, 403, 405, 408, 413, 414, 429, 431, 500, 501, 502, 503, 504, 505} {
		pages[code] = []byte(strconv.Itoa(code) + " " + fasthttp.StatusMessage(code) + "\n")
	}
	return pages
}()

func statusPage(code int) []byte {
	if p, ok := statusPages[code]; ok {
		return p
	}
	return []byte(strconv.Itoa(code) + " " + fasthttp.StatusMessage(code) + "\n")
}

// logKind separates error-log lines into families, each limited on its own
// so a flood of one kind (say, refused connections) cannot hide another.
type logKind int

const (
	logUpstream logKind = iota
	logClient
	logSendTimeout
	logOverload
	logInternal
	logRateLimited
	numLogKinds
)

// errorLog writes causes to stderr, at most one line per kind per second;
// lines suppressed meanwhile are counted in the next one.
type errorLog struct {
	w     io.Writer
	mu    sync.Mutex
	kinds [numLogKinds]struct {
		next       time.Time
		suppressed int
	}
}

func newErrorLog(w io.Writer) *errorLog {
	if w == nil {
		w = os.Stderr
	}
	return &errorLog{w: w}
}

func (l *errorLog) logf(kind logKind, format string, args ...any) {
	if now, suppressed, ok := l.admit(kind); ok {
		l.write(now, suppressed, format, args...)
	}
}

// admit decides whether a line of kind may be written now, and counts it
// if not. A caller on a path that must not allocate (a flood of refusals)
// calls it before building the line's arguments, then write.
func (l *errorLog) admit(kind logKind) (now time.Time, suppressed int, ok bool) {
	now = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := &l.kinds[kind]
	if now.Before(k.next) {
		k.suppressed++
		return now, 0, false
	}
	k.next = now.Add(time.Second)
	suppressed = k.suppressed
	k.suppressed = 0
	return now, suppressed, true
}

func (l *errorLog) write(now time.Time, suppressed int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if suppressed > 0 {
		msg += fmt.Sprintf(" (and %d more like this)", suppressed)
	}
	fmt.Fprintf(l.w, "%s gunicorn-proxy: %s\n", now.Format(time.RFC3339), msg)
}

// Printf lets fasthttp's own messages through the same limiter.
func (l *errorLog) Printf(format string, args ...any) {
	l.logf(logInternal, format, args...)
}
