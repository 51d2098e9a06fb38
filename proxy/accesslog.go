package proxy

import "time"

// AccessRecord is what the proxy knows about one finished request.
//
// The byte slices point into buffers the proxy reuses for the next request:
// an AccessLogger must copy whatever it keeps before Log returns.
type AccessRecord struct {
	// ClientIP is the real client address as text: the peer, or, when the
	// peer is a trusted proxy, the rightmost untrusted X-Forwarded-For entry.
	ClientIP []byte
	// Method and URI are the request line's method and request-target, as sent.
	Method []byte
	URI    []byte
	// Status is the status code the client received.
	Status int
	// Start is when the first byte of the request was read; End is when the
	// last byte of the response was written.
	Start time.Time
	End   time.Time
	// UpstreamTime is how long the app took to answer, from the first byte
	// sent to it to the last byte read from it. It is negative when the
	// request never reached the app (a 413, a 400, an unreachable app).
	UpstreamTime time.Duration
	// RequestSize is the size of the request line, headers and body, in bytes.
	RequestSize int64
	// ResponseSize is the number of bytes written to the client for the
	// response, status line and headers included (TLS records excluded).
	ResponseSize int64
}

// AccessLogger receives one record per request. Log is called on the request
// path: it must not block and must not retain rec or its slices.
type AccessLogger interface {
	Log(rec *AccessRecord)
}
