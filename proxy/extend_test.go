package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunicorn-proxy/gunicorn-proxy/compress"
	"github.com/gunicorn-proxy/gunicorn-proxy/ratelimit"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/valyala/fasthttp"
)

// scriptedLimiter answers from a script and records the keys it is asked.
type scriptedLimiter struct {
	mu   sync.Mutex
	keys []string
	wait time.Duration
	ok   func(n int) bool // n: how many requests it has seen, this one included
}

func (l *scriptedLimiter) Limit(key []byte) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, string(key))
	return l.wait, l.ok(len(l.keys))
}

func (l *scriptedLimiter) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.keys...)
}

// A refused request gets RATE_LIMIT_STATUS and never reaches the app; the
// limiter is asked with the real client address.
func TestRateLimitRefuses(t *testing.T) {
	for _, status := range []int{0, 429, 503} {
		app := startScriptedApp(t, answer(okResponse))
		lim := &scriptedLimiter{ok: func(n int) bool { return n == 1 }}
		cfg := testConfig(app.upstream())
		cfg.Limiter = lim
		cfg.RateLimitStatus = status
		p := startProxy(t, cfg)

		first := p.roundTrip(t, "10.0.0.1", "GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n")
		second := p.roundTrip(t, "203.0.113.5", "GET /b HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n")
		want := status
		if want == 0 {
			want = 503
		}
		if first.StatusCode() != 200 || second.StatusCode() != want {
			t.Errorf("RateLimitStatus %d: statuses %d, %d; want 200, %d", status, first.StatusCode(), second.StatusCode(), want)
		}
		if got := app.received(); len(got) != 1 || !strings.HasPrefix(got[0], "GET /a ") {
			t.Errorf("the app received %q", got)
		}
		if st := p.srv.Stats(); st.RateLimitRefused != 1 || st.RateLimitDelayed != 0 {
			t.Errorf("Stats: %d refused, %d delayed; want 1, 0", st.RateLimitRefused, st.RateLimitDelayed)
		}
		// From a trusted peer, the real client is the forwarded address;
		// from an untrusted one, the peer itself.
		if got := strings.Join(lim.seen(), " "); got != "198.51.100.9 203.0.113.5" {
			t.Errorf("limiter keys %q", got)
		}
		for _, rec := range p.logs.wait(t, 2) { // in the order the connections ended
			if string(rec.URI) == "/b" && (rec.Status != want || rec.UpstreamTime >= 0) {
				t.Errorf("access record of the refusal: status %d, upstream time %v", rec.Status, rec.UpstreamTime)
			}
		}
	}
}

// A request the limiter delays waits, then goes to the app.
func TestRateLimitDelays(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.Limiter = &scriptedLimiter{wait: 150 * time.Millisecond, ok: func(int) bool { return true }}
	p := startProxy(t, cfg)
	start := time.Now()
	resp := p.roundTrip(t, "203.0.113.5", "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if took := time.Since(start); resp.StatusCode() != 200 || took < 150*time.Millisecond {
		t.Errorf("status %d after %v; want 200 after at least 150ms", resp.StatusCode(), took)
	}
	if st := p.srv.Stats(); st.RateLimitDelayed != 1 || st.RateLimitRefused != 0 {
		t.Errorf("Stats: %d delayed, %d refused; want 1, 0", st.RateLimitDelayed, st.RateLimitRefused)
	}
}

// A refused request with a body: the body is never read into the proxy,
// never sent to the app. A small one is drained and the connection serves
// the next request; a large or chunked one ends the connection, after the
// client has read its answer (no reset).
func TestRateLimitRefusesBody(t *testing.T) {
	chunked := "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("1000\r\n"+strings.Repeat("x", 0x1000)+"\r\n", 64) + "0\r\n\r\n"
	tests := []struct {
		name      string
		status    int
		request   string
		keepAlive bool
	}{
		{"small body, 503", 503, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n" + strings.Repeat("x", 10000), true},
		{"small body, 429", 429, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n" + strings.Repeat("x", 10000), false},
		{"1 MiB body, 503", 503, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat("x", 1<<20), false},
		{"chunked body, 503", 503, chunked, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := startScriptedApp(t, answer(okResponse))
			cfg := testConfig(app.upstream())
			cfg.MaxBodySize = 2 << 20
			cfg.Limiter = &scriptedLimiter{ok: func(n int) bool { return n != 1 }}
			cfg.RateLimitStatus = tt.status
			p := startProxy(t, cfg)
			c := p.dial(t, "203.0.113.5")
			br := bufio.NewReader(c)
			go io.WriteString(c, tt.request+"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
			if resp := readResponse(t, br, false); resp.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.status)
			}
			next := new(fasthttp.Response)
			err := next.Read(br)
			if tt.keepAlive && (err != nil || next.StatusCode() != 200) {
				t.Errorf("the next request on the connection: %d, %v", next.StatusCode(), err)
			}
			if !tt.keepAlive && err == nil {
				t.Errorf("the connection was kept and answered %d", next.StatusCode())
			}
			for _, r := range app.received() {
				if strings.Contains(r, "/upload") || strings.Contains(r, "xxxx") {
					t.Errorf("the app received the refused request: %.80q", r)
				}
			}
		})
	}
}

// The real limiter behind the proxy: RATE_LIMIT=5r/s with no burst refuses
// the second of two back-to-back requests.
func TestRateLimitWithRatelimitPackage(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	// A clock that stands still: "back to back" whatever the machine's load.
	lim, err := ratelimit.New(ratelimit.Config{Rate: 5000, Entries: 1024, Clock: func() int64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(app.upstream())
	cfg.Limiter = lim
	p := startProxy(t, cfg)
	a := p.roundTrip(t, "203.0.113.5", "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	b := p.roundTrip(t, "203.0.113.5", "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	c := p.roundTrip(t, "203.0.113.6", "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if a.StatusCode() != 200 || b.StatusCode() != 503 || c.StatusCode() != 200 {
		t.Errorf("statuses %d %d %d, want 200 503 200", a.StatusCode(), b.StatusCode(), c.StatusCode())
	}
}

const jsonResponseHead = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"v1\"\r\nContent-Length: "

// The compressor sees the app's answers, with the header filtering done,
// and never the proxy's own error pages; HEADER_* still apply.
func TestCompressorFilter(t *testing.T) {
	body := strings.Repeat(`{"id":1,"name":"a name","tags":["x","y"]},`, 100)
	app := startScriptedApp(t, answer(jsonResponseHead+itoa(len(body))+"\r\nServer: gunicorn\r\n\r\n"+body))
	comp, err := compress.New(compress.Config{MinLength: 256})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(app.upstream())
	cfg.Compressor = comp
	cfg.ResponseHeaders = []Header{{Name: []byte("X-Frame-Options"), Value: []byte("DENY")}}
	p := startProxy(t, cfg)

	resp := p.roundTrip(t, "203.0.113.5", "GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n")
	if got := string(resp.Header.ContentEncoding()); got != "gzip" {
		t.Fatalf("Content-Encoding %q", got)
	}
	zr, err := gzip.NewReader(bytes.NewReader(resp.Body()))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != body {
		t.Errorf("decoded body differs (%v)", err)
	}
	for name, want := range map[string]string{"ETag": `W/"v1"`, "Vary": "Accept-Encoding", "X-Frame-Options": "DENY", "Server": ""} {
		if got := string(resp.Header.Peek(name)); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if resp.Header.ContentLength() != len(resp.Body()) {
		t.Errorf("Content-Length %d, body %d", resp.Header.ContentLength(), len(resp.Body()))
	}

	// The proxy's own 502 is not touched.
	cfg = testConfig(Upstream{Network: "tcp", Address: "127.0.0.1:1"})
	cfg.Compressor = comp
	p = startProxy(t, cfg)
	resp = p.roundTrip(t, "203.0.113.5", "GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n")
	if resp.StatusCode() != 502 || len(resp.Header.ContentEncoding()) > 0 || len(resp.Header.Peek("Vary")) > 0 {
		t.Errorf("error page: %d, Content-Encoding %q, Vary %q", resp.StatusCode(), resp.Header.ContentEncoding(), resp.Header.Peek("Vary"))
	}
}

// An answer over BUFFER_MEMORY is spooled to a file; the compressor reads
// it from there and its output is spooled in turn (in memory when small,
// in a file when not), then sent with its length. What it leaves alone
// goes out as the spooled file.
func TestCompressorSpooled(t *testing.T) {
	var doc strings.Builder
	for i := 0; doc.Len() < 300<<10; i++ {
		fmt.Fprintf(&doc, `{"id":%d,"name":"item-%d","hash":"%08x"},`, i, i, uint32(i)*2654435761)
	}
	big := doc.String()
	tests := []struct {
		name, body, accept, coding string
		bufferMemory               int
	}{
		{"compressed into memory", big[:40<<10], "gzip", "gzip", 16 << 10},
		{"compressed into a file", big, "br", "br", 16 << 10},
		{"zstd into a file", big, "zstd", "zstd", 16 << 10},
		{"not accepted: the file as it is", big, "", "", 16 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := startScriptedApp(t, answer(jsonResponseHead+itoa(len(tt.body))+"\r\n\r\n"+tt.body))
			comp, err := compress.New(compress.Config{MinLength: 256})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(app.upstream())
			cfg.Compressor = comp
			cfg.BufferMemory = tt.bufferMemory
			cfg.BufferDir = t.TempDir()
			p := startProxy(t, cfg)
			req := "GET / HTTP/1.1\r\nHost: h\r\n"
			if tt.accept != "" {
				req += "Accept-Encoding: " + tt.accept + "\r\n"
			}
			resp := p.roundTrip(t, "203.0.113.5", req+"\r\n")
			if got := string(resp.Header.ContentEncoding()); got != tt.coding {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.coding)
			}
			if resp.Header.ContentLength() != len(resp.Body()) {
				t.Errorf("Content-Length %d for a body of %d (chunked?)", resp.Header.ContentLength(), len(resp.Body()))
			}
			if got := decodeAny(t, tt.coding, resp.Body()); got != tt.body {
				t.Errorf("decoded %d bytes, the app sent %d", len(got), len(tt.body))
			}
			if tt.coding != "" && len(resp.Body()) >= len(tt.body) {
				t.Errorf("%d bytes became %d", len(tt.body), len(resp.Body()))
			}
			if v := string(resp.Header.Peek("Vary")); v != "Accept-Encoding" {
				t.Errorf("Vary %q", v)
			}
			// Nothing is left in BUFFER_DIR: the files had no name.
			if entries, _ := os.ReadDir(cfg.BufferDir); len(entries) != 0 {
				t.Errorf("BUFFER_DIR holds %d files", len(entries))
			}
		})
	}
}

func decodeAny(t *testing.T, coding string, body []byte) string {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brrr.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", coding, err)
	}
	return string(out)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}
