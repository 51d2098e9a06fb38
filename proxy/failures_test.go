package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Every failure gets its status, the proxy's short page, the operator's
// headers, and — for the client's own mistakes — the end of the connection.
func TestStatusMapping(t *testing.T) {
	bigCookie := "Cookie: " + strings.Repeat("a", 40<<10) + "\r\n"
	slowApp := func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
		a.readRequest(br)
		time.Sleep(2 * time.Second)
		io.WriteString(c, okResponse)
	}
	tests := []struct {
		name        string
		app         func(net.Conn, *bufio.Reader, *scriptedApp) // nil: nothing listens
		request     string
		status      int
		closes      bool // the connection must end after the answer
		reachesApp  bool
		upstreamLog bool // an access record with an upstream time
	}{
		{"body over the limit by Content-Length", answer(okResponse),
			"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2048\r\n\r\n", 413, true, false, false},
		{"chunked body over the limit", answer(okResponse),
			"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("x", 2048) + "\r\n0\r\n\r\n", 413, true, false, false},
		{"header over the buffer", answer(okResponse),
			"GET / HTTP/1.1\r\nHost: h\r\n" + bigCookie + "\r\n", 431, true, false, false},
		{"16 KiB of headers is fine", answer(okResponse),
			"GET / HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("c", 16<<10) + "\r\n\r\n", 200, false, true, true},
		{"header line without a colon", answer(okResponse),
			"GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n", 400, true, false, false},
		{"space in a header name", answer(okResponse),
			"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 400, true, false, false},
		{"HTTP/1.1 without Host", answer(okResponse),
			"GET / HTTP/1.1\r\n\r\n", 400, true, false, false},
		{"CONNECT", answer(okResponse),
			"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, true, false, false},
		{"app refuses connections", nil,
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 502, false, false, false},
		{"app too slow", slowApp,
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 504, false, true, true},
		{"app closes without answering", func(c net.Conn, br *bufio.Reader, a *scriptedApp) { a.readRequest(br) },
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 502, false, true, true},
		{"app dies mid-response", func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
			a.readRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		}, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 502, false, true, true},
		{"app dies mid-chunk", func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
			a.readRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc")
		}, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 502, false, true, true},
		{"app sends garbage", answer("SSH-2.0-OpenSSH_9.2\r\n\r\n"),
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 502, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var up Upstream
			var app *scriptedApp
			if tt.app != nil {
				app = startScriptedApp(t, tt.app)
				up = app.upstream()
			} else {
				up = closedPort(t)
			}
			cfg := testConfig(up)
			cfg.MaxBodySize = 1024
			cfg.ProxyReadTimeout = 300 * time.Millisecond
			cfg.ResponseHeaders = []Header{{Name: []byte("X-Frame-Options"), Value: []byte("DENY")}}
			p := startProxy(t, cfg)
			c := p.dial(t, "203.0.113.7")
			go io.WriteString(c, tt.request) // a refused body may never be read
			br := bufio.NewReader(c)
			resp := readResponse(t, br, false)

			if resp.StatusCode() != tt.status {
				p.dumpErrors(t)
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.status)
			}
			if tt.status != 200 {
				if want := statusPage(tt.status); string(resp.Body()) != string(want) {
					t.Errorf("body %q, want %q", resp.Body(), want)
				}
				if !strings.HasPrefix(string(resp.Header.ContentType()), "text/plain") {
					t.Errorf("Content-Type %q", resp.Header.ContentType())
				}
			}
			if string(resp.Header.Peek("X-Frame-Options")) != "DENY" {
				t.Errorf("HEADER_* missing on a %d:\n%s", tt.status, resp.Header.String())
			}
			if tt.closes {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
					t.Errorf("connection still open after a %d (read %d, %v)", tt.status, n, err)
				}
			}
			if app != nil && (len(app.received()) > 0) != tt.reachesApp {
				t.Errorf("request reached the app: %v, want %v", len(app.received()) > 0, tt.reachesApp)
			}
			rec := p.logs.wait(t, 1)[0]
			if rec.Status != tt.status {
				t.Errorf("access log status %d", rec.Status)
			}
			if (rec.UpstreamTime >= 0) != tt.upstreamLog {
				t.Errorf("access log upstream time %v, want reached=%v", rec.UpstreamTime, tt.upstreamLog)
			}
		})
	}
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) Upstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return Upstream{Network: "tcp", Address: addr}
}

// A body over the limit announced with Expect: 100-continue is refused
// before the client sends it.
func TestExpectOverLimitRefusedBeforeBody(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.MaxBodySize = 1024
	p := startProxy(t, cfg)
	c := p.dial(t, "203.0.113.7")
	io.WriteString(c, "PUT /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\n\r\n")
	resp := readResponse(t, bufio.NewReader(c), false)
	if resp.StatusCode() != 413 {
		t.Fatalf("status %d, want 413 before any 100 Continue", resp.StatusCode())
	}
	if len(app.received()) != 0 {
		t.Error("the request reached the app")
	}
	if rec := p.logs.wait(t, 1)[0]; rec.Status != 413 || string(rec.Method) != "PUT" || string(rec.URI) != "/upload" {
		t.Errorf("access record %+v", rec)
	}
}

// A client that sends its body slower than CLIENT_BODY_TIMEOUT allows
// between two reads gets a 408, and the app never hears of it.
func TestSlowBodyTimesOut(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.ClientBodyTimeout = 200 * time.Millisecond
	p := startProxy(t, cfg)
	c := p.dial(t, "203.0.113.7")
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly-a-little")
	resp := readResponse(t, bufio.NewReader(c), false)
	if resp.StatusCode() != 408 {
		t.Fatalf("status %d, want 408", resp.StatusCode())
	}
	if len(app.received()) != 0 {
		t.Error("a partial request reached the app")
	}
}

// The body timeout is a gap between reads, not a budget for the upload: a
// body trickled in pieces, each within the timeout, arrives whole.
func TestBodyTimeoutIsAGap(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.ClientBodyTimeout = 600 * time.Millisecond
	p := startProxy(t, cfg)
	c := p.dial(t, "203.0.113.7")
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n")
	for i := 0; i < 10; i++ {
		time.Sleep(120 * time.Millisecond) // 1.2 s in all, twice the timeout
		io.WriteString(c, "x")
	}
	if resp := readResponse(t, bufio.NewReader(c), false); resp.StatusCode() != 200 {
		p.dumpErrors(t)
		t.Fatalf("status %d, want 200", resp.StatusCode())
	}
	if got := app.received(); len(got) != 1 || !strings.HasSuffix(got[0], "\r\n\r\nxxxxxxxxxx") {
		t.Errorf("app received %q", got)
	}
}

// A header trickled slower than CLIENT_HEADER_TIMEOUT in total gets a 408;
// a connection that sends nothing at all is closed without an answer.
func TestHeaderTimeout(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.ClientHeaderTimeout = 300 * time.Millisecond
	p := startProxy(t, cfg)

	c := p.dial(t, "203.0.113.7")
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n")
	if resp := readResponse(t, bufio.NewReader(c), false); resp.StatusCode() != 408 {
		t.Fatalf("status %d, want 408", resp.StatusCode())
	}

	// A header that ends in bare LFs never ends for fasthttp, which waits
	// for CRLF CRLF: it runs into the same timeout, and is not forwarded.
	bare := p.dial(t, "203.0.113.9")
	io.WriteString(bare, "GET / HTTP/1.1\nHost: h\n\n")
	if resp := readResponse(t, bufio.NewReader(bare), false); resp.StatusCode() != 408 {
		t.Fatalf("bare LF header: status %d, want 408", resp.StatusCode())
	}
	if got := app.received(); len(got) != 0 {
		t.Errorf("the app received %q", got)
	}

	silent := p.dial(t, "203.0.113.8")
	silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(silent)
	if len(got) != 0 || err != nil {
		t.Errorf("a silent connection got %q, %v; want a plain close", got, err)
	}
}

// Over MAX_CONNECTIONS a new connection gets a fast 503, with the
// operator's headers, and is closed; the connection already served is not
// disturbed.
func TestMaxConnections(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.MaxConnections = 1
	cfg.ResponseHeaders = []Header{{Name: []byte("X-Frame-Options"), Value: []byte("DENY")}}
	p := startProxy(t, cfg)

	first := p.dial(t, "203.0.113.7")
	firstReader := bufio.NewReader(first)
	io.WriteString(first, getRequest)
	if status := readResponse(t, firstReader, false).StatusCode(); status != 200 {
		t.Fatalf("first connection: status %d", status)
	}

	second := p.dial(t, "203.0.113.8")
	resp := readResponse(t, bufio.NewReader(second), false)
	if resp.StatusCode() != 503 || string(resp.Header.Peek("X-Frame-Options")) != "DENY" || !resp.ConnectionClose() {
		t.Fatalf("over the limit: %s", resp.String())
	}
	eventually(t, "the refusal counted and logged", func() bool {
		return p.srv.Refused() == 1 && strings.Contains(p.errs.String(), "MAX_CONNECTIONS=1 reached")
	})

	io.WriteString(first, getRequest) // the kept-alive connection still works
	if status := readResponse(t, firstReader, false).StatusCode(); status != 200 {
		t.Fatalf("first connection after the refusal: status %d", status)
	}
}
