package main

// Compression and rate limiting, end to end: the real binary in front of a
// real gunicorn, as the luhn/gunicorn-proxy image did them with nginx.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-proxy/gunicorn-proxy/compress/compresstest"
)

// With the defaults, answers are compressed as the old image's nginx did
// (gzip level 5 from 256 bytes, for text types), brotli or zstd when the
// client prefers them; the client decodes exactly the app's bytes.
func TestCompression(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind)
	direct, appBody := get(t, "http://"+g.bind+"/json/65536")
	appETag := direct.Header.Get("ETag")
	if len(appBody) != 65536 || !strings.HasPrefix(appETag, `"`) {
		t.Fatalf("the app's answer: %d bytes, ETag %q", len(appBody), appETag)
	}

	tests := []struct {
		name, path, accept string
		coding             string // expected Content-Encoding
		vary               bool   // expected Vary: Accept-Encoding
	}{
		{"gzip", "/json/65536", "gzip, deflate", "gzip", true},
		{"brotli preferred", "/json/65536", "gzip, deflate, br, zstd", "br", true},
		{"zstd preferred", "/json/65536", "zstd, gzip;q=0.5", "zstd", true},
		{"gzip refused", "/json/65536", "gzip;q=0, identity", "", true},
		{"no Accept-Encoding", "/json/65536", "", "", true},
		{"small answer", "/json/255", "gzip", "", false},
		{"256 bytes", "/json/256", "gzip", "gzip", true},
		{"no-transform", "/json/65536?cache=no-transform", "gzip", "", false},
		// Over BUFFER_MEMORY (64k): spooled to a file, compressed from there.
		{"spooled, gzip", "/json/1000000", "gzip", "gzip", true},
		{"spooled, brotli", "/json/1000000", "br, gzip", "br", true},
		{"spooled, zstd", "/json/1000000", "zstd", "zstd", true},
		{"spooled, identity", "/json/1000000", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.accept != "" {
				headers = []string{"Accept-Encoding", tt.accept}
			}
			resp, body := get(t, p.url(tt.path), headers...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			coding := resp.Header.Get("Content-Encoding")
			if coding != tt.coding {
				t.Fatalf("Content-Encoding %q, want %q", coding, tt.coding)
			}
			_, want := get(t, "http://"+g.bind+tt.path)
			if got := compresstest.Decode(t, coding, body); !bytes.Equal(got, want) {
				t.Errorf("decoded %d bytes, the app sent %d, and they differ", len(got), len(want))
			}
			if coding != "" {
				if len(body) >= len(want) || resp.ContentLength != int64(len(body)) {
					t.Errorf("%d bytes compressed to %d, Content-Length %d", len(want), len(body), resp.ContentLength)
				}
			}
			if vary := strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding"); vary != tt.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", resp.Header.Values("Vary"), tt.vary)
			}
			etag := resp.Header.Get("ETag")
			switch {
			case coding != "" && !strings.HasPrefix(etag, `W/"`):
				t.Errorf("compressed, yet ETag %q is not weak", etag)
			case coding == "" && strings.HasPrefix(etag, "W/"):
				t.Errorf("identity, yet ETag %q was weakened", etag)
			}
		})
	}

	t.Run("already encoded by the app", func(t *testing.T) {
		resp, body := get(t, p.url("/encoded"), "Accept-Encoding", "gzip, br")
		_, want := get(t, "http://"+g.bind+"/encoded", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, want) {
			t.Errorf("Content-Encoding %q, body changed: %v", resp.Header.Get("Content-Encoding"), !bytes.Equal(body, want))
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		req, _ := http.NewRequest("HEAD", p.url("/json/65536"), nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, _ := do(t, req)
		if resp.Header.Get("Content-Encoding") != "" || resp.ContentLength != 65536 ||
			!strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("HEAD: Content-Encoding %q, Content-Length %d, Vary %q",
				resp.Header.Get("Content-Encoding"), resp.ContentLength, resp.Header.Get("Vary"))
		}
	})
	t.Run("Range", func(t *testing.T) {
		resp, body := get(t, p.url("/json/65536"), "Accept-Encoding", "gzip", "Range", "bytes=0-99")
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("a Range request got Content-Encoding %q (status %d, %d bytes)", resp.Header.Get("Content-Encoding"), resp.StatusCode, len(body))
		}
	})
	t.Run("Vary merged", func(t *testing.T) {
		resp, _ := get(t, p.url("/json/4096?vary=Cookie"), "Accept-Encoding", "gzip")
		if got := resp.Header.Values("Vary"); len(got) != 1 || got[0] != "Cookie, Accept-Encoding" {
			t.Errorf("Vary %q", got)
		}
	})
}

// COMPRESS=off turns it all off; COMPRESS_TYPES replaces the list;
// COMPRESS_MIN_LENGTH and COMPRESS_LEVEL apply.
func TestCompressionSettings(t *testing.T) {
	g := startGunicorn(t, 1, "")
	tests := []struct {
		env    []string
		path   string
		coding string
	}{
		{[]string{"COMPRESS=off"}, "/json/65536", ""},
		{[]string{"COMPRESS_TYPES=text/*"}, "/json/65536", ""},
		{[]string{"COMPRESS_TYPES=text/*"}, "/status/200", ""},                          // 10 bytes of text/plain: too small
		{[]string{"COMPRESS_TYPES=text/*", "COMPRESS_MIN_LENGTH=0"}, "/status/200", ""}, // gzip would be larger: identity
		{[]string{"COMPRESS_TYPES=application/json", "COMPRESS_MIN_LENGTH=100k"}, "/json/65536", ""},
		{[]string{"COMPRESS_MIN_LENGTH=1k"}, "/json/1024", "gzip"},
		{[]string{"COMPRESS_LEVEL=1"}, "/json/65536", "gzip"},
		{[]string{"COMPRESS_LEVEL=9"}, "/json/65536", "gzip"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " ")+" "+tt.path, func(t *testing.T) {
			p := startProxy(t, g.bind, tt.env...)
			resp, body := get(t, p.url(tt.path), "Accept-Encoding", "gzip")
			if got := resp.Header.Get("Content-Encoding"); got != tt.coding {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.coding)
			}
			_, want := get(t, "http://"+g.bind+tt.path)
			if !bytes.Equal(compresstest.Decode(t, tt.coding, body), want) {
				t.Error("the decoded body differs from the app's")
			}
			if tt.env[0] == "COMPRESS=off" && resp.Header.Get("Vary") != "" {
				t.Errorf("COMPRESS=off, yet Vary %q", resp.Header.Get("Vary"))
			}
		})
	}
}

// RATE_LIMIT=5r/s with no burst refuses the second of two back-to-back
// requests from one client with RATE_LIMIT_STATUS, and the app never sees
// it (gunicorn's own access log says so). The two are sent at once, on two
// connections, so that they are back to back (within 200 ms) however
// loaded the machine is; which of them is refused is the race's.
func TestRateLimit(t *testing.T) {
	for _, status := range []int{0, 429} {
		name := "default status"
		env := []string{"RATE_LIMIT=5r/s", "RATE_LIMIT_BURST=0"}
		want := 503
		if status != 0 {
			name = "RATE_LIMIT_STATUS=429"
			env = append(env, name)
			want = 429
		}
		t.Run(name, func(t *testing.T) {
			g := startGunicorn(t, 2, "", "--access-logfile", "-")
			admin := freeAddr(t)
			p := startProxy(t, g.bind, append(env, "ADMIN_LISTEN="+admin)...)
			type answer struct {
				id     string
				status int
				body   string
				ctype  string
			}
			answers := make(chan answer, 2)
			for _, id := range []string{"one", "two"} {
				go func() {
					req, _ := http.NewRequest("GET", p.url("/echo?request="+id), nil)
					resp, err := client().Do(req)
					if err != nil {
						answers <- answer{id: id}
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					answers <- answer{id, resp.StatusCode, string(body), resp.Header.Get("Content-Type")}
				}()
			}
			a, b := <-answers, <-answers
			if a.status != 200 {
				a, b = b, a
			}
			if a.status != 200 || b.status != want {
				t.Fatalf("statuses %d, %d; want 200 and %d", a.status, b.status, want)
			}
			if page := fmt.Sprintf("%d %s\n", want, http.StatusText(want)); b.body != page || b.ctype != "text/plain; charset=utf-8" {
				t.Errorf("refusal page %q, %q", b.body, b.ctype)
			}
			time.Sleep(250 * time.Millisecond) // the bucket drains (5r/s)
			if third, _ := get(t, p.url("/echo?request=third")); third.StatusCode != 200 {
				t.Fatalf("after 250 ms: %d", third.StatusCode)
			}
			// The app logs in order: once the third request is in its log,
			// the refused one would be too, had it arrived.
			eventually(t, "gunicorn's log of the requests let through", func() bool {
				log := g.stdout.String()
				return strings.Contains(log, "request="+a.id) && strings.Contains(log, "request=third")
			})
			if strings.Contains(g.stdout.String(), "request="+b.id) {
				t.Errorf("the app saw the refused request:\n%s", g.stdout)
			}
			if !strings.Contains(p.stderr.String(), "over RATE_LIMIT") {
				t.Errorf("the refusal is not in the error log:\n%s", p.stderr)
			}
			m := scrapeMetrics(t, admin)
			if r, d := m[`gunicorn_proxy_rate_limited_total{outcome="refused"}`], m[`gunicorn_proxy_rate_limited_total{outcome="delayed"}`]; r != 1 || d != 0 {
				t.Errorf("/metrics: %v refused, %v delayed; want 1, 0", r, d)
			}
		})
	}
}

// The limit is keyed by the real client: X-Forwarded-For from a trusted
// peer names it; from an untrusted one it is ignored, and the peer is the
// client.
func TestRateLimitRealClient(t *testing.T) {
	g := startGunicorn(t, 1, "")
	t.Run("trusted peer", func(t *testing.T) {
		p := startProxy(t, g.bind, "RATE_LIMIT=1r/m", "TRUSTED_PROXIES=127.0.0.1")
		for i, tt := range []struct {
			xff  string
			want int
		}{
			{"198.51.100.1", 200},
			{"198.51.100.2", 200},
			{"198.51.100.1", 503},
			{"203.0.113.9, 198.51.100.2", 503}, // the rightmost untrusted address is the client
			{"198.51.100.3:5555", 200},
			{"198.51.100.3", 503}, // a port does not make another client
		} {
			resp, _ := get(t, p.url("/echo"), "X-Forwarded-For", tt.xff)
			if resp.StatusCode != tt.want {
				t.Errorf("request %d, X-Forwarded-For %s: %d, want %d", i, tt.xff, resp.StatusCode, tt.want)
			}
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		p := startProxy(t, g.bind, "RATE_LIMIT=1r/m", "TRUSTED_PROXIES=none")
		a, _ := get(t, p.url("/echo"), "X-Forwarded-For", "198.51.100.1")
		b, _ := get(t, p.url("/echo"), "X-Forwarded-For", "198.51.100.2")
		if a.StatusCode != 200 || b.StatusCode != 503 {
			t.Errorf("statuses %d, %d; want 200, 503: a client cannot escape its limit with X-Forwarded-For", a.StatusCode, b.StatusCode)
		}
	})
}

// Within the burst, requests wait their turn at the rate (nginx's delay);
// with RATE_LIMIT_NODELAY they go at once; beyond it they are refused.
func TestRateLimitBurst(t *testing.T) {
	g := startGunicorn(t, 2, "")
	for _, nodelay := range []bool{false, true} {
		env := []string{"RATE_LIMIT=1r/s", "RATE_LIMIT_BURST=1"}
		if nodelay {
			env = append(env, "RATE_LIMIT_NODELAY=1")
		}
		t.Run(strings.Join(env, " "), func(t *testing.T) {
			p := startProxy(t, g.bind, env...)
			start := time.Now()
			statuses := make(chan int, 3)
			for i := 0; i < 3; i++ {
				go func() {
					req, _ := http.NewRequest("GET", p.url("/echo"), nil)
					resp, err := client().Do(req)
					if err != nil {
						statuses <- 0
						return
					}
					resp.Body.Close()
					statuses <- resp.StatusCode
				}()
			}
			got := map[int]int{}
			for i := 0; i < 3; i++ {
				got[<-statuses]++
			}
			took := time.Since(start)
			if got[200] != 2 || got[503] != 1 {
				t.Errorf("statuses %v; want two 200 and one 503", got)
			}
			// The delayed one waits 1000/1 = 1000 ms.
			if !nodelay && took < 900*time.Millisecond {
				t.Errorf("the burst was not delayed: all done in %v", took)
			}
			if nodelay && took > 2*time.Second {
				t.Errorf("nodelay took %v", took)
			}
		})
	}
}
