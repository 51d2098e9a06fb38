package compress

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gunicorn-proxy/gunicorn-proxy/compress/compresstest"
)

// Every coding round-trips: the client decodes exactly the app's bytes,
// at every level, for bodies from just over the minimum to large.
func TestRoundTrip(t *testing.T) {
	for _, level := range []int{1, 5, 9} {
		c := mustNew(t, Config{Level: level})
		for _, coding := range []string{"gzip", "br", "zstd"} {
			for _, n := range []int{256, 4 << 10, 64 << 10, 3 << 20} {
				t.Run(fmt.Sprintf("level %d %s %d", level, coding, n), func(t *testing.T) {
					body := jsonBody(n)
					resp := response(200, body, "Content-Type", "application/json")
					c.FilterResponse(getWith(t, "Accept-Encoding: "+coding), resp)
					if got := string(resp.Header.ContentEncoding()); got != coding {
						t.Fatalf("Content-Encoding %q, want %q", got, coding)
					}
					if len(resp.Body()) >= n {
						t.Errorf("%d bytes compressed to %d", n, len(resp.Body()))
					}
					if got := resp.Header.ContentLength(); got != len(resp.Body()) {
						t.Errorf("Content-Length %d, body %d", got, len(resp.Body()))
					}
					if !bytes.Equal(compresstest.Decode(t, coding, resp.Body()), body) {
						t.Error("the decoded body differs from the app's")
					}
				})
			}
		}
	}
}

// Which answers are compressed, which get Vary, and which are left alone.
func TestEligibility(t *testing.T) {
	c := mustNew(t, Config{MinLength: DefaultMinLength})
	big := jsonBody(1000)
	tests := []struct {
		name     string
		req      []string // request header lines
		head     bool
		status   int
		body     []byte
		headers  []string
		encoding string // expected Content-Encoding
		vary     bool   // expected Vary: Accept-Encoding
	}{
		{"JSON, gzip", []string{"Accept-Encoding: gzip"}, false, 200, big, []string{"Content-Type", "application/json"}, "gzip", true},
		{"no Accept-Encoding: Vary only", nil, false, 200, big, []string{"Content-Type", "application/json"}, "", true},
		{"Accept-Encoding without a known coding", []string{"Accept-Encoding: deflate"}, false, 200, big, []string{"Content-Type", "text/html"}, "", true},
		{"255 bytes: too small, no Vary", []string{"Accept-Encoding: gzip"}, false, 200, big[:255], []string{"Content-Type", "text/plain"}, "", false},
		{"256 bytes: compressed", []string{"Accept-Encoding: gzip"}, false, 200, big[:256], []string{"Content-Type", "text/plain"}, "gzip", true},
		{"PNG: not a listed type", []string{"Accept-Encoding: gzip"}, false, 200, big, []string{"Content-Type", "image/png"}, "", false},
		{"no Content-Type", []string{"Accept-Encoding: gzip"}, false, 200, big, nil, "", false},
		{"already encoded by the app", []string{"Accept-Encoding: gzip, br"}, false, 200, big, []string{"Content-Type", "application/json", "Content-Encoding", "br"}, "br", false},
		{"no-transform", []string{"Accept-Encoding: gzip"}, false, 200, big, []string{"Content-Type", "application/json", "Cache-Control", "public, No-Transform"}, "", false},
		{"other Cache-Control", []string{"Accept-Encoding: gzip"}, false, 200, big, []string{"Content-Type", "application/json", "Cache-Control", "max-age=60, no-cache"}, "gzip", true},
		{"HEAD: Vary only", []string{"Accept-Encoding: gzip"}, true, 200, nil, []string{"Content-Type", "application/json", "Content-Length", "1000"}, "", true},
		{"HEAD of a small answer", []string{"Accept-Encoding: gzip"}, true, 200, nil, []string{"Content-Type", "application/json", "Content-Length", "10"}, "", false},
		{"Range answered with 200: Vary only", []string{"Accept-Encoding: gzip", "Range: bytes=0-99"}, false, 200, big, []string{"Content-Type", "text/plain"}, "", true},
		{"206", []string{"Accept-Encoding: gzip", "Range: bytes=0-999"}, false, 206, big, []string{"Content-Type", "text/plain", "Content-Range", "bytes 0-999/5000"}, "", false},
		{"204", []string{"Accept-Encoding: gzip"}, false, 204, nil, []string{"Content-Type", "text/plain"}, "", false},
		{"304", []string{"Accept-Encoding: gzip"}, false, 304, nil, []string{"Content-Type", "text/plain", "ETag", `"v1"`}, "", false},
		{"201 with JSON", []string{"Accept-Encoding: gzip"}, false, 201, big, []string{"Content-Type", "application/json"}, "gzip", true},
		{"404 page", []string{"Accept-Encoding: gzip"}, false, 404, big, []string{"Content-Type", "text/html; charset=utf-8"}, "gzip", true},
		{"500 page", []string{"Accept-Encoding: gzip"}, false, 500, big, []string{"Content-Type", "text/html"}, "gzip", true},
		{"HTTP/1.0 client: Vary only", nil, false, 200, big, []string{"Content-Type", "application/json"}, "", true},
		{"incompressible: identity kept", []string{"Accept-Encoding: gzip"}, false, 200, randomBytes(1000), []string{"Content-Type", "text/plain"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "GET /x HTTP/1.1\r\nHost: h\r\n"
			if tt.head {
				raw = "HEAD /x HTTP/1.1\r\nHost: h\r\n"
			}
			if strings.HasPrefix(tt.name, "HTTP/1.0") {
				raw = "GET /x HTTP/1.0\r\nAccept-Encoding: gzip\r\n"
			}
			for _, l := range tt.req {
				raw += l + "\r\n"
			}
			resp := response(tt.status, tt.body, tt.headers...)
			appEncoded := len(resp.Header.ContentEncoding()) > 0
			before := append([]byte(nil), resp.Body()...)
			c.FilterResponse(request(t, raw+"\r\n"), resp)

			if got := string(resp.Header.ContentEncoding()); got != tt.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.encoding)
			}
			vary := strings.Contains(strings.ToLower(header(resp, "Vary")), "accept-encoding")
			if vary != tt.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", header(resp, "Vary"), tt.vary)
			}
			if tt.encoding == "" || appEncoded {
				if !bytes.Equal(resp.Body(), before) {
					t.Error("the body was changed")
				}
			} else if !bytes.Equal(compresstest.Decode(t, tt.encoding, resp.Body()), before) {
				t.Error("the decoded body differs from the app's")
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestVaryMerge(t *testing.T) {
	c := mustNew(t, Config{})
	tests := []struct {
		name    string
		headers []string
		want    []string // every Vary line after filtering
	}{
		{"none", nil, []string{"Accept-Encoding"}},
		{"Cookie", []string{"Vary", "Cookie"}, []string{"Cookie, Accept-Encoding"}},
		{"two tokens", []string{"Vary", "Cookie, Origin"}, []string{"Cookie, Origin, Accept-Encoding"}},
		{"already there", []string{"Vary", "Accept-Encoding"}, []string{"Accept-Encoding"}},
		{"already there, other case", []string{"Vary", "origin, accept-encoding"}, []string{"origin, accept-encoding"}},
		{"star", []string{"Vary", "*"}, []string{"*"}},
		{"lower-case name kept", []string{"vary", "Cookie"}, []string{"Cookie, Accept-Encoding"}},
		{"two lines, second has it", []string{"Vary", "Cookie", "Vary", "Accept-Encoding"}, []string{"Cookie", "Accept-Encoding"}},
		{"two lines, neither has it", []string{"Vary", "Cookie", "Vary", "Origin"}, []string{"Cookie, Accept-Encoding", "Origin"}},
		{"empty value", []string{"Vary", ""}, []string{"Accept-Encoding"}},
		{"trailing space", []string{"Vary", "Cookie  "}, []string{"Cookie, Accept-Encoding"}},
	}
	for _, tt := range tests {
		for _, ae := range []string{"", "gzip"} {
			t.Run(tt.name+" "+ae, func(t *testing.T) {
				headers := append([]string{"Content-Type", "text/html"}, tt.headers...)
				resp := response(200, jsonBody(1000), headers...)
				req := getWith(t)
				if ae != "" {
					req = getWith(t, "Accept-Encoding: "+ae)
				}
				c.FilterResponse(req, resp)
				got := headerValues(resp, "Vary")
				if strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("Vary lines %q, want %q", got, tt.want)
				}
				if tt.name == "lower-case name kept" {
					for k := range resp.Header.All() {
						if string(k) == "Vary" {
							t.Error("the app's header name case was not kept")
						}
					}
				}
			})
		}
	}
}

func TestETag(t *testing.T) {
	c := mustNew(t, Config{})
	tests := []struct {
		name, etag string
		compress   bool
		want       string // "-" for no ETag
	}{
		{"strong becomes weak", `"abc"`, true, `W/"abc"`},
		{"weak stays", `W/"abc"`, true, `W/"abc"`},
		{"empty tag", `""`, true, `W/""`},
		{"malformed is dropped", `abc`, true, "-"},
		{"unterminated is dropped", `"abc`, true, "-"},
		{"strong kept when not compressed", `"abc"`, false, `"abc"`},
		{"malformed kept when not compressed", `abc`, false, `abc`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := response(200, jsonBody(2000), "Content-Type", "application/json", "Etag", tt.etag, "Accept-Ranges", "bytes")
			req := getWith(t)
			if tt.compress {
				req = getWith(t, "Accept-Encoding: gzip")
			}
			c.FilterResponse(req, resp)
			got := "-"
			if v := headerValues(resp, "ETag"); len(v) == 1 {
				got = v[0]
			} else if len(v) > 1 {
				t.Fatalf("ETag lines %q", v)
			}
			if got != tt.want {
				t.Errorf("ETag %s → %s, want %s", tt.etag, got, tt.want)
			}
			if ranges := header(resp, "Accept-Ranges"); (ranges == "") != tt.compress {
				t.Errorf("Accept-Ranges %q with compression %v", ranges, tt.compress)
			}
			if got != "-" {
				for k := range resp.Header.All() {
					if string(k) == "ETag" {
						t.Error("the app's header name case (Etag) was not kept")
					}
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	for _, bad := range []Config{
		{Level: 10}, {Level: -1}, {Types: []string{"json"}}, {Codings: []Coding{Identity}}, {Codings: []Coding{numCodings}},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	c := mustNew(t, Config{Level: 0, MinLength: -5})
	if c.levels.Gzip != DefaultLevel || c.minLength != 0 {
		t.Errorf("defaults: %+v", c.levels)
	}

	gzipOnly := mustNew(t, Config{Codings: []Coding{Gzip}})
	resp := response(200, jsonBody(1000), "Content-Type", "application/json")
	gzipOnly.FilterResponse(getWith(t, "Accept-Encoding: br, zstd, gzip;q=0.1"), resp)
	if got := string(resp.Header.ContentEncoding()); got != "gzip" {
		t.Errorf("gzip only: Content-Encoding %q", got)
	}

	// COMPRESS_TYPES replaces the default list.
	textOnly := mustNew(t, Config{Types: []string{"text/*"}})
	for ct, want := range map[string]string{"text/csv": "gzip", "application/json": ""} {
		resp := response(200, jsonBody(1000), "Content-Type", ct)
		textOnly.FilterResponse(getWith(t, "Accept-Encoding: gzip"), resp)
		if got := string(resp.Header.ContentEncoding()); got != want {
			t.Errorf("text/*: %s → %q, want %q", ct, got, want)
		}
	}
}

func TestLevelsFor(t *testing.T) {
	prev := LevelsFor(1)
	for l := 1; l <= 9; l++ {
		lv := LevelsFor(l)
		if lv.Gzip != l || lv.Brotli < prev.Brotli || lv.Zstd < prev.Zstd || lv.Brotli < 0 || lv.Brotli > 11 {
			t.Errorf("LevelsFor(%d) = %+v after %+v", l, lv, prev)
		}
		prev = lv
	}
	if LevelsFor(0).Gzip != 1 || LevelsFor(42).Gzip != 9 {
		t.Error("LevelsFor does not clamp")
	}
}

// In steady state, compressing allocates nothing: encoders, output
// buffers and header scratch space all come from the pool.
func TestNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c := mustNew(t, Config{})
	body := jsonBody(64 << 10)
	for _, coding := range []string{"gzip", "br", "zstd", "identity"} {
		t.Run(coding, func(t *testing.T) {
			req := getWith(t, "Accept-Encoding: "+coding)
			resp := response(200, body, "Content-Type", "application/json", "Vary", "Cookie", "ETag", `"v1"`)
			var allocs float64
			for attempt := 0; attempt < 3; attempt++ { // a GC may empty the pool once
				allocs = testing.AllocsPerRun(50, func() {
					resp.Header.SetContentEncodingBytes(nil)
					resp.Header.SetBytesKV([]byte("Vary"), []byte("Cookie"))
					resp.Header.SetBytesKV([]byte("ETag"), []byte(`"v1"`))
					resp.SetBodyRaw(nil)
					resp.AppendBody(body)
					c.FilterResponse(req, resp)
				})
				if allocs == 0 {
					break
				}
			}
			if allocs != 0 {
				t.Errorf("%v allocations per response", allocs)
			}
		})
	}
}

// A response filtered concurrently from many goroutines: each gets its own
// encoder state and its own bytes back (run with -race).
func TestConcurrent(t *testing.T) {
	c := mustNew(t, Config{})
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func(g int) {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				coding := []string{"gzip", "br", "zstd"}[(g+i)%3]
				body := jsonBody(1000 + 100*g + i)
				resp := response(200, body, "Content-Type", "application/json")
				c.FilterResponse(getWith(t, "Accept-Encoding: "+coding), resp)
				if got := compresstest.Decode(t, coding, resp.Body()); !bytes.Equal(got, body) {
					err = fmt.Errorf("goroutine %d, request %d (%s): body differs", g, i, coding)
				}
			}
			done <- err
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
