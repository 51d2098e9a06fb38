package proxy

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
)

// The app must receive the client's request as the client wrote it — the
// target, the header names' case, their order, a cookie's odd spacing —
// minus the hop-by-hop and spoofable headers, plus the proxy's own.
func TestRequestReachesAppByteForByte(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	p := startProxy(t, testConfig(app.upstream()))

	resp := p.roundTrip(t, "203.0.113.7", "GET /a//b/../c%2F?x=%ZZ&y HTTP/1.1\r\n"+
		"Host: example.com:18080\r\n"+
		"x-lower-case: keep\r\n"+
		"X_Forwarded_For: 6.6.6.6\r\n"+
		"X-Forwarded-For: 1.2.3.4\r\n"+
		"Connection: keep-alive, X-Hop\r\n"+
		"X-Hop: secret\r\n"+
		"Cookie: a=1;b=2; a=3\r\n"+
		"Proxy-Authorization: Basic eDp5\r\n"+
		"TE: trailers\r\n"+
		"Upgrade: h2c\r\n"+
		"X-Forwarded-Proto: https\r\n"+
		"X-Real-IP: 6.6.6.6\r\n"+
		"User-Agent: test/1\r\n"+
		"\r\n")
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d", resp.StatusCode())
	}
	want := "GET /a//b/../c%2F?x=%ZZ&y HTTP/1.1\r\n" +
		"Host: example.com:18080\r\n" +
		"x-lower-case: keep\r\n" +
		"Cookie: a=1;b=2; a=3\r\n" +
		"User-Agent: test/1\r\n" +
		"X-Forwarded-For: 203.0.113.7\r\n" +
		"X-Real-IP: 203.0.113.7\r\n" +
		"X-Forwarded-Proto: http\r\n" +
		"X-Forwarded-Host: example.com:18080\r\n" +
		"X-Forwarded-Port: 18080\r\n" +
		"\r\n"
	if got := app.received(); len(got) != 1 || got[0] != want {
		t.Errorf("the app received\n%q\nwant\n%q", got, want)
	}
}

func TestTrustedPeerChain(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.Scheme = "https"
	p := startProxy(t, cfg)
	p.roundTrip(t, "10.1.2.3", "GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 198.51.100.1, 10.9.9.9\r\nX-Forwarded-Prefix: /api\r\n\r\n")
	got := app.received()[0]
	for _, line := range []string{
		"X-Forwarded-Prefix: /api\r\n",
		"X-Forwarded-For: 198.51.100.1, 10.9.9.9, 10.1.2.3\r\n",
		"X-Real-IP: 198.51.100.1\r\n",
		"X-Forwarded-Proto: https\r\n",
		"X-Forwarded-Port: 443\r\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("missing %q in\n%s", line, got)
		}
	}
	if rec := p.logs.wait(t, 1)[0]; string(rec.ClientIP) != "198.51.100.1" {
		t.Errorf("access log ip %q, want the real client", rec.ClientIP)
	}
}

func TestRequestTarget(t *testing.T) {
	tests := []struct {
		line, host string
		wantLine   string
		wantHost   string
		wantXFHost string
		wantXFPort string
		wantStatus int
	}{
		{"GET /a? HTTP/1.1", "h", "GET /a? HTTP/1.1", "h", "h", "80", 200},
		{"GET //a?u=http://b HTTP/1.1", "h", "GET //a?u=http://b HTTP/1.1", "h", "h", "80", 200},
		{"GET /%zz/%2e%2e/ HTTP/1.1", "h", "GET /%zz/%2e%2e/ HTTP/1.1", "h", "h", "80", 200},
		{"OPTIONS * HTTP/1.1", "h", "OPTIONS * HTTP/1.1", "h", "h", "80", 200},
		{"GET http://Example.com:81/x?y HTTP/1.1", "ignored", "GET /x?y HTTP/1.1", "Example.com:81", "Example.com:81", "81", 200},
		{"GET http://example.com HTTP/1.1", "x", "GET / HTTP/1.1", "example.com", "example.com", "80", 200},
		{"GET https://example.com?q HTTP/1.1", "x", "GET /?q HTTP/1.1", "example.com", "example.com", "80", 200},
		{"GET http://example.com/ HTTP/1.1", "", "", "", "", "", 400}, // HTTP/1.1 requires Host, even so
		{"GET http://user:pw@example.com/ HTTP/1.1", "", "", "", "", "", 400},
		{"GET * HTTP/1.1", "h", "", "", "", "", 400},
		{"GET example.com:80 HTTP/1.1", "h", "", "", "", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			app := startScriptedApp(t, answer(okResponse))
			p := startProxy(t, testConfig(app.upstream()))
			raw := tt.line + "\r\n"
			if tt.host != "" {
				raw += "Host: " + tt.host + "\r\n"
			}
			resp := p.roundTrip(t, "203.0.113.7", raw+"\r\n")
			if resp.StatusCode() != tt.wantStatus {
				p.dumpErrors(t)
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				if n := len(app.received()); n != 0 {
					t.Errorf("a refused request reached the app")
				}
				return
			}
			got := app.received()[0]
			for _, line := range []string{tt.wantLine + "\r\n", "Host: " + tt.wantHost + "\r\n",
				"X-Forwarded-Host: " + tt.wantXFHost + "\r\n", "X-Forwarded-Port: " + tt.wantXFPort + "\r\n"} {
				if !strings.Contains(got, line) {
					t.Errorf("missing %q in\n%s", line, got)
				}
			}
		})
	}
}

// An HTTP/1.0 request may come without Host; the app, spoken to in
// HTTP/1.1, gets the upstream's address as nginx sends $proxy_host.
func TestHTTP10WithoutHost(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	p := startProxy(t, testConfig(app.upstream()))
	resp := p.roundTrip(t, "203.0.113.7", "GET /x HTTP/1.0\r\n\r\n")
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d", resp.StatusCode())
	}
	got := app.received()[0]
	if !strings.Contains(got, "Host: "+app.upstream().Address+"\r\n") || strings.Contains(got, "X-Forwarded-Host") {
		t.Errorf("app received\n%s", got)
	}
}

func TestBodiesReachAppWithContentLength(t *testing.T) {
	tests := []struct {
		name, request, wantBody string
		wantExpect100           bool
	}{
		{"content-length", "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", "hello", false},
		{"chunked", "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n", "hello", false},
		{"expect 100-continue", "POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", "hello", true},
		{"empty POST", "POST /u HTTP/1.1\r\nHost: h\r\n\r\n", "", false},
		{"GET with a body", "GET /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", "abc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := startScriptedApp(t, answer(okResponse))
			p := startProxy(t, testConfig(app.upstream()))
			c := p.dial(t, "203.0.113.7")
			io.WriteString(c, tt.request)
			br := bufio.NewReader(c)
			if tt.wantExpect100 {
				line, _ := br.ReadString('\n')
				br.ReadString('\n')
				if line != "HTTP/1.1 100 Continue\r\n" {
					t.Fatalf("got %q, want 100 Continue", line)
				}
			}
			if resp := readResponse(t, br, false); resp.StatusCode() != 200 {
				t.Fatalf("status %d", resp.StatusCode())
			}
			got := app.received()[0]
			head, body, _ := strings.Cut(got, "\r\n\r\n")
			if body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			wantLength := fmt.Sprintf("Content-Length: %d\r\n", len(tt.wantBody))
			if tt.name == "GET with a body" || len(tt.wantBody) > 0 || strings.HasPrefix(tt.request, "POST") {
				if !strings.Contains(head+"\r\n", wantLength) {
					t.Errorf("no %q in\n%s", wantLength, head)
				}
			}
			for _, banned := range []string{"Transfer-Encoding", "Expect", "X-Trailer", "chunked"} {
				if strings.Contains(head, banned) {
					t.Errorf("%s reached the app:\n%s", banned, head)
				}
			}
		})
	}
}

func TestResponseHeadersReachingClient(t *testing.T) {
	app := startScriptedApp(t, answer("HTTP/1.1 201 Made It\r\n"+
		"Server: gunicorn/23.0.0\r\n"+
		"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"+
		"Connection: keep-alive, X-Hop\r\n"+
		"X-Hop: secret\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Authenticate: Basic\r\n"+
		"Upgrade: h2c\r\n"+
		"Trailer: X-Checksum\r\n"+
		"Transfer-Encoding: chunked\r\n"+
		"content-type: text/plain\r\n"+
		"Set-Cookie: a=1; Path=/\r\n"+
		"Set-Cookie: b=2; Path=/\r\n"+
		"x-app: kept\r\n"+
		"strict-transport-security: max-age=1\r\n"+
		"\r\n"+
		"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"))
	cfg := testConfig(app.upstream())
	cfg.ResponseHeaders = []Header{{Name: []byte("Strict-Transport-Security"), Value: []byte("max-age=31536000")}}
	p := startProxy(t, cfg)
	resp := p.roundTrip(t, "203.0.113.7", "GET / HTTP/1.1\r\nHost: h\r\n\r\n")

	if resp.StatusCode() != 201 || string(resp.Header.StatusMessage()) != "Made It" {
		t.Errorf("status line %d %q", resp.StatusCode(), resp.Header.StatusMessage())
	}
	if string(resp.Body()) != "hello" {
		t.Errorf("body %q", resp.Body())
	}
	headers := resp.Header.String()
	for _, banned := range []string{"gunicorn", "1970", "X-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Trailer", "X-Checksum", "chunked", "max-age=1\r"} {
		if strings.Contains(headers, banned) {
			t.Errorf("%q reached the client:\n%s", banned, headers)
		}
	}
	// Content-Type is one of the headers fasthttp writes itself, in its
	// canonical case; every other name keeps the app's case.
	for _, kept := range []string{"Content-Type: text/plain", "Set-Cookie: a=1; Path=/", "Set-Cookie: b=2; Path=/", "x-app: kept",
		"Strict-Transport-Security: max-age=31536000", "Content-Length: 5", "Date: "} {
		if !strings.Contains(headers, kept) {
			t.Errorf("%q missing from the client's response:\n%s", kept, headers)
		}
	}
}

func TestHeadKeepsContentLength(t *testing.T) {
	app := startScriptedApp(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n"))
	p := startProxy(t, testConfig(app.upstream()))
	c := p.dial(t, "203.0.113.7")
	io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ { // the second proves no stray body bytes were sent
		resp := readResponse(t, br, true)
		if resp.StatusCode() != 200 || resp.Header.ContentLength() != 1234 {
			t.Fatalf("HEAD %d: status %d, Content-Length %d", i, resp.StatusCode(), resp.Header.ContentLength())
		}
	}
}

// Pipelined requests are answered in order, and each gets its own access
// record even though the second was parsed before the first was written.
func TestPipelinedRequestsAndTheirRecords(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	p := startProxy(t, testConfig(app.upstream()))
	c := p.dial(t, "203.0.113.7")
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /two?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		if status := readResponse(t, br, false).StatusCode(); status != 200 {
			t.Fatalf("response %d: status %d", i, status)
		}
	}
	c.Close()
	recs := p.logs.wait(t, 3)
	for i, want := range []string{"GET /one", "POST /two?x=1", "GET /three"} {
		if got := string(recs[i].Method) + " " + string(recs[i].URI); got != want {
			t.Errorf("record %d is %q, want %q", i, got, want)
		}
		if recs[i].Status != 200 || string(recs[i].ClientIP) != "203.0.113.7" || recs[i].UpstreamTime < 0 ||
			recs[i].End.Before(recs[i].Start) || recs[i].RequestSize <= 0 {
			t.Errorf("record %d: %+v", i, recs[i])
		}
	}
	if recs[1].RequestSize != int64(len("POST /two?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")) {
		t.Errorf("request_size %d", recs[1].RequestSize)
	}
}

func TestStats(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	p := startProxy(t, testConfig(app.upstream()))
	down := startProxy(t, testConfig(closedPort(t)))
	c := p.dial(t, "203.0.113.7")
	io.WriteString(c, getRequest)
	resp := readResponse(t, bufio.NewReader(c), false)
	if s := p.srv.Stats(); s.OpenConnections != 1 || s.InFlight != 0 {
		t.Errorf("stats with one idle connection: %+v", s)
	}
	down.roundTrip(t, "203.0.113.7", getRequest)
	if s := down.srv.Stats(); s.UpstreamRefused != 1 {
		t.Errorf("stats after a refused connection: %+v", s)
	}
	c.Close()
	eventually(t, "the connection closed", func() bool { return p.srv.Stats().OpenConnections == 0 })
	rec := p.logs.wait(t, 1)[0]
	if want := int64(len(resp.Header.Header()) + len(resp.Body())); rec.ResponseSize != want {
		t.Errorf("ResponseSize %d, want %d", rec.ResponseSize, want)
	}
}
