package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// testProxy is a Server on an in-memory listener, so a test controls the
// client's bytes exactly and chooses the peer address the proxy sees.
type testProxy struct {
	srv  *Server
	ln   *fasthttputil.InmemoryListener
	logs *recordingLog
	errs *lockedBuffer
	done chan error
}

// testConfig is a sane configuration around an upstream; tests override
// what they exercise.
func testConfig(up Upstream) Config {
	return Config{
		Upstream:            up,
		MaxConnections:      64,
		MaxBodySize:         1 << 20,
		TrustedProxies:      TrustedProxies{mustPrefix("10.0.0.0/8")},
		ClientHeaderTimeout: 5 * time.Second,
		ClientBodyTimeout:   5 * time.Second,
		KeepaliveTimeout:    65 * time.Second,
		SendTimeout:         60 * time.Second,
		ProxyConnectTimeout: 5 * time.Second,
		ProxyReadTimeout:    5 * time.Second,
	}
}

func startProxy(t testing.TB, cfg Config) *testProxy {
	t.Helper()
	p := &testProxy{ln: fasthttputil.NewInmemoryListener(), logs: &recordingLog{}, errs: &lockedBuffer{}, done: make(chan error, 1)}
	if cfg.AccessLog == nil {
		cfg.AccessLog = p.logs
	}
	cfg.ErrorLog = p.errs
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = srv
	go func() { p.done <- srv.Serve(p.ln) }()
	t.Cleanup(func() {
		p.ln.Close()
		if err := <-p.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return p
}

// dial opens a client connection that the proxy sees coming from peer.
func (p *testProxy) dial(t testing.TB, peer string) net.Conn {
	t.Helper()
	c, err := p.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.ParseIP(peer), Port: 40000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends raw bytes on a new connection from peer and reads one
// response.
func (p *testProxy) roundTrip(t testing.TB, peer, raw string) *fasthttp.Response {
	t.Helper()
	c := p.dial(t, peer)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, bufio.NewReader(c), strings.HasPrefix(raw, "HEAD "))
}

func readResponse(t testing.TB, br *bufio.Reader, head bool) *fasthttp.Response {
	t.Helper()
	resp := new(fasthttp.Response)
	resp.Header.DisableNormalizing()
	resp.SkipBody = head
	if err := resp.Read(br); err != nil {
		t.Fatalf("reading the proxy's response: %v", err)
	}
	return resp
}

// recordingLog is an AccessLogger that keeps copies of what it is given.
type recordingLog struct {
	mu      sync.Mutex
	records []AccessRecord
}

func (l *recordingLog) Log(rec *AccessRecord) {
	r := *rec
	r.ClientIP = bytes.Clone(rec.ClientIP)
	r.Method = bytes.Clone(rec.Method)
	r.URI = bytes.Clone(rec.URI)
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
}

// wait returns the records once there are n of them.
func (l *recordingLog) wait(t testing.TB, n int) []AccessRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		got := append([]AccessRecord(nil), l.records...)
		l.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("got %d access records, want %d", len(got), n)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// scriptedApp is an upstream on 127.0.0.1 whose every connection runs
// serve: the test decides byte for byte what the app reads and answers,
// including answers no real app server would send.
type scriptedApp struct {
	ln       net.Listener
	mu       sync.Mutex
	requests []string // raw request heads (and bodies) as received
	conns    int
	open     map[net.Conn]bool
}

func startScriptedApp(t testing.TB, serve func(c net.Conn, br *bufio.Reader, app *scriptedApp)) *scriptedApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &scriptedApp{ln: ln, open: make(map[net.Conn]bool)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.conns++
			a.open[c] = true
			a.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					a.mu.Lock()
					delete(a.open, c)
					a.mu.Unlock()
					c.Close()
				}()
				serve(c, bufio.NewReader(c), a)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		a.mu.Lock()
		for c := range a.open {
			c.Close() // the proxy's pooled keep-alive connections
		}
		a.mu.Unlock()
		wg.Wait()
	})
	return a
}

func (a *scriptedApp) upstream() Upstream {
	return Upstream{Network: "tcp", Address: a.ln.Addr().String()}
}

func (a *scriptedApp) connections() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conns
}

func (a *scriptedApp) received() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.requests...)
}

// readRequest reads one request (head and Content-Length body) and records
// it raw; it returns false at EOF.
func (a *scriptedApp) readRequest(br *bufio.Reader) (string, bool) {
	var head strings.Builder
	contentLength := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", false
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Content-Length") {
			n, _ := parseInt(strings.TrimSpace(value))
			contentLength = n
		}
	}
	body := make([]byte, contentLength)
	if _, err := io.ReadFull(br, body); err != nil {
		return "", false
	}
	raw := head.String() + string(body)
	a.mu.Lock()
	a.requests = append(a.requests, raw)
	a.mu.Unlock()
	return raw, true
}

func parseInt(s string) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// answer is a scripted app that answers every request on a connection
// with the same raw response.
func answer(response string) func(net.Conn, *bufio.Reader, *scriptedApp) {
	return func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
		for {
			if _, ok := a.readRequest(br); !ok {
				return
			}
			if _, err := io.WriteString(c, response); err != nil {
				return
			}
		}
	}
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

func (p *testProxy) dumpErrors(t testing.TB) {
	t.Helper()
	if s := p.errs.String(); s != "" {
		t.Logf("proxy error log:\n%s", s)
	}
}

// eventually waits up to 5 s for cond, for what happens after a response
// has been read (the connection's close, its log line).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
