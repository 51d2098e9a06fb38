package compress

import (
	"github.com/gunicorn-proxy/gunicorn-proxy/internal/ascii"
	"github.com/valyala/fasthttp"
)

// eligible reports whether compression applies to this answer at all,
// whatever the client accepts. Such an answer's representation varies with
// Accept-Encoding, so it gets Vary: Accept-Encoding even when this client
// is sent the identity body (nginx's gzip_vary, which the old image set).
//
// Not eligible, as with nginx: an answer the app already encoded (any
// Content-Encoding), one whose media type is not listed or not given, one
// under the minimum length. Nor an answer without content by definition
// (1xx, 204, 304), nor a 206, whose body is a byte range of the identity
// representation. Unlike nginx, which compresses only 200, 403 and 404,
// every other status is eligible: a 201's JSON or a 500's HTML page
// compresses as well as a 200's.
func (c *Compressor) eligible(resp *fasthttp.Response, length int64) bool {
	switch status := resp.StatusCode(); {
	case status < 200, status == fasthttp.StatusNoContent, status == fasthttp.StatusNotModified,
		status == fasthttp.StatusPartialContent:
		return false
	}
	if len(resp.Header.ContentEncoding()) > 0 {
		return false
	}
	if !c.types.match(resp.Header.ContentType()) {
		return false
	}
	return length < 0 || length >= int64(c.minLength)
}

// bodyLength is the length of the answer FilterResponse is given: its body,
// or for a HEAD the length a GET would have had (-1: unknown), since the
// Vary of a HEAD answer must match the GET's.
func bodyLength(req *fasthttp.RequestHeader, resp *fasthttp.Response) int64 {
	if req.IsHead() {
		return int64(resp.Header.ContentLength())
	}
	return int64(len(resp.Body()))
}

// negotiate picks the coding for this request: identity for a HEAD (no
// body to compress), for HTTP/1.0 (nginx's gzip_http_version 1.1: old
// caches that ignore Vary speak 1.0), and for a request with a Range
// (the app answered 200, so the client gets the identity representation
// it can take ranges of); else by Accept-Encoding.
func (c *Compressor) negotiate(req *fasthttp.RequestHeader) Coding {
	if req.IsHead() || !req.IsHTTP11() {
		return Identity
	}
	a := newAcceptance()
	for name, value := range req.All() {
		switch len(name) {
		case 5:
			if ascii.EqualFold(name, "Range") {
				return Identity
			}
		case 15:
			if ascii.EqualFold(name, "Accept-Encoding") {
				a.add(value)
			}
		}
	}
	return a.choose(c.enabled)
}

// responseHeaders are the facts scanResponse gathers in one pass over the
// answer's headers. The slices point into resp's header storage: valid
// until the header is next modified.
type responseHeaders struct {
	noTransform           bool // Cache-Control: no-transform
	varyHasAcceptEncoding bool // a Vary that lists Accept-Encoding or *
	varyName, varyValue   []byte
	etagName, etagValue   []byte
	acceptRangesName      []byte
}

// scanResponse reads the headers compression cares about. The proxy keeps
// the app's header names in the app's case, so names compare without case.
func scanResponse(h *fasthttp.ResponseHeader) responseHeaders {
	var r responseHeaders
	for name, value := range h.All() {
		switch len(name) {
		case 4:
			if ascii.EqualFold(name, "Vary") {
				if listsToken(value, "accept-encoding") || listsToken(value, "*") {
					r.varyHasAcceptEncoding = true
				}
				if r.varyName == nil {
					r.varyName, r.varyValue = name, value
				}
			} else if ascii.EqualFold(name, "ETag") && r.etagName == nil {
				r.etagName, r.etagValue = name, value
			}
		case 13:
			if ascii.EqualFold(name, "Cache-Control") && listsToken(value, "no-transform") {
				// RFC 9111 §5.2.2.6: an intermediary must not change the content.
				r.noTransform = true
			} else if ascii.EqualFold(name, "Accept-Ranges") && r.acceptRangesName == nil {
				r.acceptRangesName = name
			}
		}
	}
	return r
}

// listsToken reports whether a comma-separated field value lists token
// (case-insensitively; for Cache-Control, a directive without argument).
func listsToken(value []byte, token string) bool {
	for len(value) > 0 {
		var item []byte
		item, value = cutByte(value, ',')
		if ascii.EqualFold(ascii.TrimOWS(item), token) {
			return true
		}
	}
	return false
}

var (
	hdrVary           = []byte("Vary")
	hdrAcceptEncoding = []byte("Accept-Encoding")
	commaSpace        = []byte(", ")
	weakPrefix        = []byte("W/")
)

// addVary says that the answer varies with Accept-Encoding: it extends the
// app's Vary (keeping its name's case) or adds one.
func addVary(h *fasthttp.ResponseHeader, r *responseHeaders, st *state) {
	if r.varyName == nil {
		h.AddBytesKV(hdrVary, hdrAcceptEncoding)
		return
	}
	v := append(st.scratch[:0], ascii.TrimOWS(r.varyValue)...)
	if len(v) > 0 {
		v = append(v, commaSpace...)
	}
	v = append(v, hdrAcceptEncoding...)
	st.scratch = v
	h.SetBytesKV(r.varyName, v)
}

// fixHeadersForCoding adjusts what no longer holds once the body is
// compressed, as nginx does: a strong ETag promises byte-identical
// content, so it becomes weak (RFC 9110 §8.8.1), and one that is not a
// valid entity-tag is dropped; Accept-Ranges is dropped, as ranges of the
// compressed body are not served.
func fixHeadersForCoding(h *fasthttp.ResponseHeader, r *responseHeaders, st *state) {
	// Rescan: the header may have changed since scanResponse.
	*r = scanResponse(h)
	if r.etagName != nil {
		v := ascii.TrimOWS(r.etagValue)
		switch {
		case len(v) >= 2 && v[0] == 'W' && v[1] == '/':
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			st.scratch = append(append(st.scratch[:0], weakPrefix...), v...)
			h.SetBytesKV(r.etagName, st.scratch)
		default:
			h.DelBytes(r.etagName)
		}
	}
	if r.acceptRangesName != nil {
		r2 := scanResponse(h) // the ETag change may have moved header storage
		if r2.acceptRangesName != nil {
			h.DelBytes(r2.acceptRangesName)
		}
	}
}
