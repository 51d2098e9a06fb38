package proxy

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// Hostile and malformed requests: each gets a clear 4xx (or 5xx for what
// the proxy will not do), is never forwarded, and ends its connection.
// Those the RFCs let a server repair (obs-fold, chunk extensions) are
// forwarded repaired, and the app sees a clean request.
func TestHostileInput(t *testing.T) {
	tests := []struct {
		name    string
		request string
		status  int    // 200: forwarded
		forward string // for 200: a line the app must receive
	}{
		{"header line without a colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, ""},
		{"HTTP/0.9 request line", "GET /\r\n\r\n", 400, ""},
		{"request line too long", "GET /" + strings.Repeat("a", 40<<10) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, ""},
		{"header too large", "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", 431, ""},
		{"too many header fields", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: b\r\n", 100) + "\r\n", 431, ""},
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"Content-Length 0 with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, ""},
		{"two equal Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, ""},
		{"negative Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, ""},
		{"huge Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, ""},
		{"Content-Length not a number", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1e3\r\n\r\n", 400, ""},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, ""},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400, ""},
		{"malformed chunk extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 ;bad ext\r\nabc\r\n0\r\n\r\n", 400, ""},
		{"chunk extensions are dropped", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c\r\nabc\r\n0\r\n\r\n", 200, "Content-Length: 3\r\n\r\nabc"},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501, ""},
		{"stacked transfer codings", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"bare CR in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400, ""},
		{"bare LF in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nb\r\n\r\n", 400, ""},
		{"bare LF ending a field is read as CRLF", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n", 200, "X-A: a\r\nX-B: b\r\n"},
		{"bare LF in a name", "GET / HTTP/1.1\r\nHost: h\r\nX-\nA: b\r\n\r\n", 400, ""},
		{"bare LF in the target", "GET /a\nb HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"NUL in a name", "GET / HTTP/1.1\r\nHost: h\r\nX-A\x00: b\r\n\r\n", 400, ""},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", 400, ""},
		{"bare CR in the target", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"obs-fold is joined with a space", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n folded\r\n\r\n", 200, "X-A: a folded\r\n"},
		{"space before the colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, ""},
		{"leading whitespace before the first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, ""},
		{"double space in the request line", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"junk after the version", "GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", 400, ""},
		{"bad method character", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, ""},
		{"unknown HTTP version", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505, ""},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", 400, ""},
		{"space in Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ""},
		{"authority-form", "GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, ""},
		{"absolute-form is rewritten", "GET http://example.com/x?y HTTP/1.1\r\nHost: h\r\n\r\n", 200, "GET /x?y HTTP/1.1\r\nHost: example.com\r\n"},
		{"Proxy-Connection is stripped", "GET / HTTP/1.1\r\nHost: h\r\nProxy-Connection: keep-alive\r\nX-Ok: 1\r\n\r\n", 200, "X-Ok: 1\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := startScriptedApp(t, answer(okResponse))
			p := startProxy(t, testConfig(app.upstream()))
			c := p.dial(t, "203.0.113.7")
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go io.WriteString(c, tt.request)
			br := bufio.NewReader(c)
			resp := readResponse(t, br, false)
			if resp.StatusCode() != tt.status {
				p.dumpErrors(t)
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.status)
			}
			received := app.received()
			if tt.status != 200 {
				if len(received) != 0 {
					t.Fatalf("forwarded:\n%s", received[0])
				}
				if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
					t.Errorf("the connection is still open (read %d, %v)", n, err)
				}
				return
			}
			if len(received) != 1 || !strings.Contains(received[0], tt.forward) {
				t.Fatalf("the app received %q, want it to contain %q", received, tt.forward)
			}
			checkForwardedRequest(t, received[0], "203.0.113.7")
		})
	}
}
