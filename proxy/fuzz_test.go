package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzProxyRequest sends arbitrary bytes to a running proxy over TCP and
// checks the two promises that matter when the input is hostile: the
// proxy answers or closes (it never hangs, never crashes), and whatever
// reaches the app is a well-formed request that a strict parser (Go's
// net/http) accepts, with none of the headers the proxy must never pass.
func FuzzProxyRequest(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 1.1.1.1\r\nConnection: X-A\r\nX-A: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nFoo: a\r\n  folded\r\n\r\n",
		"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET /\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\n\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}

	app := startScriptedApp(f, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.MaxBodySize = 4096
	cfg.ClientHeaderTimeout = time.Second
	cfg.ClientBodyTimeout = time.Second
	cfg.ErrorLog = io.Discard
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck
	f.Cleanup(func() { ln.Close() })

	f.Fuzz(func(t *testing.T, input []byte) {
		before := len(app.received())
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(input)
		c.(*net.TCPConn).CloseWrite()
		answer, err := io.ReadAll(c)
		if err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("reading the answer: %v (got %q)", err, answer)
		}
		if len(answer) > 0 && !strings.HasPrefix(string(answer), "HTTP/1.1 ") {
			t.Fatalf("answer is not HTTP/1.1: %q", answer)
		}
		for _, raw := range app.received()[before:] {
			checkForwardedRequest(t, raw, "127.0.0.1")
		}
	})
}

func checkForwardedRequest(t *testing.T, raw, peer string) {
	t.Helper()
	// The request-target passes byte for byte, so it may be a path Go's URL
	// parser dislikes ("/%"); it must only be one token of visible bytes.
	line, rest, _ := strings.Cut(raw, "\r\n")
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[2] != "HTTP/1.1" {
		t.Fatalf("request line %q", line)
	}
	for _, c := range []byte(parts[1]) {
		if c <= ' ' || c == 0x7f {
			t.Fatalf("request-target %q has a control byte or a space", parts[1])
		}
	}
	raw = parts[0] + " / HTTP/1.1\r\n" + rest
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("the app received a request Go cannot parse: %v\n%q", err, raw)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil || int64(len(body)) != max(req.ContentLength, 0) {
		t.Fatalf("body %q does not match Content-Length %d: %v", body, req.ContentLength, err)
	}
	if len(req.TransferEncoding) > 0 {
		t.Fatalf("Transfer-Encoding reached the app: %q", raw)
	}
	for name := range req.Header {
		if strings.Contains(name, "_") || hopByHop([]byte(name)) || strings.EqualFold(name, "Expect") {
			t.Fatalf("header %q reached the app: %q", name, raw)
		}
	}
	if got := req.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != peer {
		t.Fatalf("X-Forwarded-For %q, want the peer only", got)
	}
}
