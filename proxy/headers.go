package proxy

import (
	"bytes"
	"io"

	"github.com/gunicorn-proxy/gunicorn-proxy/internal/ascii"
	"github.com/valyala/fasthttp"
)

// Header is one response header the operator adds with HEADER_*.
type Header struct {
	Name  []byte
	Value []byte
}

// headerField is one header line of the client's request, pointing into
// fasthttp's buffer of the raw header: valid until the handler returns.
type headerField struct {
	name, value []byte
}

// hopByHop reports whether a header describes one connection rather than
// the message (RFC 9110 §7.6.1) and so must not cross the proxy. Upgrade
// is among them: the proxy speaks plain HTTP/1.1 to the app.
// Proxy-Authorization and Proxy-Authenticate are meant for the proxy itself.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return ascii.EqualFold(name, "TE")
	case 7:
		return ascii.EqualFold(name, "Trailer") || ascii.EqualFold(name, "Upgrade")
	case 10:
		return ascii.EqualFold(name, "Connection") || ascii.EqualFold(name, "Keep-Alive")
	case 16:
		return ascii.EqualFold(name, "Proxy-Connection")
	case 17:
		return ascii.EqualFold(name, "Transfer-Encoding")
	case 18:
		return ascii.EqualFold(name, "Proxy-Authenticate")
	case 19:
		return ascii.EqualFold(name, "Proxy-Authorization")
	}
	return false
}

// connectionTokens appends the field names listed in a Connection header
// value: the sender declares those headers hop-by-hop too.
func connectionTokens(dst [][]byte, value []byte) [][]byte {
	for len(value) > 0 {
		var token []byte
		if i := bytes.IndexByte(value, ','); i >= 0 {
			token, value = value[:i], value[i+1:]
		} else {
			token, value = value, nil
		}
		if token = bytes.TrimSpace(token); len(token) > 0 {
			dst = append(dst, token)
		}
	}
	return dst
}

func listed(name []byte, tokens [][]byte) bool {
	for _, t := range tokens {
		if ascii.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// Names of the headers the proxy writes for the app.
var (
	hdrHost            = []byte("Host")
	hdrXForwardedFor   = []byte("X-Forwarded-For")
	hdrXRealIP         = []byte("X-Real-IP")
	hdrXForwardedProto = []byte("X-Forwarded-Proto")
	hdrXForwardedHost  = []byte("X-Forwarded-Host")
	hdrXForwardedPort  = []byte("X-Forwarded-Port")
	hdrContentLength   = []byte("Content-Length")
	schemeHTTP         = []byte("http")
	schemeHTTPS        = []byte("https")
)

// requestHeaderVerdict says what happens to one client header on its way
// to the app.
type requestHeaderVerdict int

const (
	keepHeader requestHeaderVerdict = iota
	dropHeader
	forwardedForHeader // dropped, its value feeds the new X-Forwarded-For
)

// requestVerdict decides the fate of one client header. The proxy owns the
// headers it sets (Host is written first, framing is recomputed from the
// buffered body, Expect was answered here) and the X-Forwarded-* family: an
// untrusted client cannot speak for a proxy, so it may send none of them;
// a trusted proxy's extra ones (X-Forwarded-Prefix…) pass.
func requestVerdict(name []byte, peerTrusted bool, connTokens [][]byte) requestHeaderVerdict {
	if bytes.IndexByte(name, '_') >= 0 {
		// WSGI maps X_Forwarded_For and X-Forwarded-For to the same
		// HTTP_X_FORWARDED_FOR key: a spoofing hole. nginx drops them too.
		return dropHeader
	}
	if hopByHop(name) || listed(name, connTokens) {
		return dropHeader
	}
	switch len(name) {
	case 4:
		if ascii.EqualFold(name, "Host") {
			return dropHeader
		}
	case 6:
		if ascii.EqualFold(name, "Expect") {
			return dropHeader
		}
	case 9:
		if ascii.EqualFold(name, "X-Real-IP") || (!peerTrusted && ascii.EqualFold(name, "Forwarded")) {
			return dropHeader
		}
	case 14:
		if ascii.EqualFold(name, "Content-Length") {
			return dropHeader
		}
	case 15:
		if ascii.EqualFold(name, "X-Forwarded-For") {
			return forwardedForHeader
		}
	}
	if len(name) > 12 && ascii.EqualFold(name[:12], "X-Forwarded-") {
		switch {
		case !peerTrusted,
			ascii.EqualFold(name[12:], "Proto"), ascii.EqualFold(name[12:], "Host"), ascii.EqualFold(name[12:], "Port"):
			return dropHeader
		}
	}
	return keepHeader
}

// responseVerdict decides whether one header of the app's response reaches
// the client. Like nginx, the proxy hides the app's Server and Date (it
// writes its own Date), recomputes the framing, and lets the operator's
// HEADER_* replace the app's header of the same name.
func responseVerdict(name []byte, connTokens [][]byte, operator []Header) bool {
	if hopByHop(name) || listed(name, connTokens) {
		return false
	}
	switch len(name) {
	case 4:
		if ascii.EqualFold(name, "Date") {
			return false
		}
	case 6:
		if ascii.EqualFold(name, "Server") {
			return false
		}
	case 14:
		if ascii.EqualFold(name, "Content-Length") {
			return false
		}
	}
	// nginx's X-Accel-* are instructions to the proxy, not to the client.
	if len(name) > 8 && ascii.EqualFold(name[:8], "X-Accel-") {
		return false
	}
	for i := range operator {
		if ascii.EqualFold(operator[i].Name, name) {
			return false
		}
	}
	return true
}

// copyResponse moves the app's answer into the client's response: status,
// filtered headers, and the body by swapping buffers rather than copying;
// then filter, if any, may transform it (see ResponseFilter).
func copyResponse(dst *fasthttp.Response, ex *exchange, operator []Header, in *fasthttp.RequestHeader, filter ResponseFilter) {
	head := in.IsHead()
	src := ex.resp
	dst.SetStatusCode(src.StatusCode())
	if msg := src.Header.StatusMessage(); len(msg) > 0 {
		dst.Header.SetStatusMessage(msg)
	}
	ex.connTokens = ex.connTokens[:0]
	for name, value := range src.Header.All() {
		if len(name) == 10 && ascii.EqualFold(name, "Connection") {
			ex.connTokens = connectionTokens(ex.connTokens, value)
		}
	}
	for name, value := range src.Header.All() {
		if responseVerdict(name, ex.connTokens, operator) {
			dst.Header.AddBytesKV(name, value)
		}
	}
	if head || ex.streamed != nil || ex.tunnel != nil {
		if !head {
			return // the body is relayed, not copied
		}
		// A HEAD answer has no body but tells the size the GET would have.
		if n := src.Header.ContentLength(); n >= 0 {
			dst.Header.SetContentLength(n)
		}
		if filter != nil {
			filter.FilterResponse(in, dst)
		}
		return
	}
	body := &ex.respBody
	if body.onDisk() {
		if filter != nil {
			if err := body.rewind(); err == nil && filter.FilterStream(in, dst, body.file, body.size, &ex.filterOut) {
				// The filter's body replaces the app's, whose file is
				// closed with the exchange.
				body = &ex.filtered
			}
		}
		// fasthttp writes the file after the handler returns (with
		// sendfile on a plain connection, see clientConn.ReadFrom), then
		// closes it, which frees the space.
		if body.onDisk() {
			f, n := body.detachFile()
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				f.Close()
				dst.SetStatusCode(fasthttp.StatusInternalServerError)
				return
			}
			dst.SetBodyStream(f, int(n))
			return
		}
		dst.SetBody(body.mem)
		return
	}
	// In memory: copied into the response's own buffer. Trading buffers
	// instead would save the copy but hand ours to fasthttp's pool, which
	// sizes itself by length and drops buffers by capacity: every body
	// buffer would then be grown anew, several allocations a request.
	dst.SetBody(body.mem)
	if filter != nil {
		filter.FilterResponse(in, dst)
	}
}

// setOperatorHeaders adds the HEADER_* headers: on every response, the
// proxy's own error pages included.
func setOperatorHeaders(resp *fasthttp.Response, operator []Header) {
	for i := range operator {
		resp.Header.SetBytesKV(operator[i].Name, operator[i].Value)
	}
}

// validFieldName reports whether name is an RFC 9110 token.
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// validFieldValue rejects the control bytes RFC 9110 §5.5 forbids in a
// field value (HTAB aside); a NUL or bare CR there is how requests get
// smuggled past one parser and into another.
func validFieldValue(value []byte) bool {
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
