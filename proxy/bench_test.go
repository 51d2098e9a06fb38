package proxy

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/gunicorn-proxy/gunicorn-proxy/compress"
	"github.com/gunicorn-proxy/gunicorn-proxy/ratelimit"
	"github.com/valyala/fasthttp"
)

// benchApp is a fasthttp app on 127.0.0.1 that answers every request with
// a small JSON body, like a typical API endpoint.
func benchApp(b *testing.B) Upstream {
	return benchAppWith(b, []byte(`{"ok":true,"items":[1,2,3],"message":"hello from the app"}`))
}

// benchAppWith answers every request with body as JSON.
func benchAppWith(b *testing.B, body []byte) Upstream {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { srv.Shutdown() })
	return Upstream{Network: "tcp", Address: ln.Addr().String()}
}

// benchmarkForward measures the whole request path, client to app and
// back, on one keep-alive connection. allocs/op counts every goroutine
// (client, proxy, app): fasthttp's client and server allocate nothing in
// steady state, so what shows is the proxy's own.
func benchmarkForward(b *testing.B, method string, body []byte) {
	benchmarkForwardWith(b, testConfig(benchApp(b)), method, body)
}

func benchmarkForwardWith(b *testing.B, cfg Config, method string, body []byte, header ...string) {
	cfg.AccessLog = discardLog{}
	cfg.ResponseHeaders = []Header{{Name: []byte("Strict-Transport-Security"), Value: []byte("max-age=31536000")}}
	p := startProxy(b, cfg)
	client := &fasthttp.HostClient{
		Addr: "proxy",
		Dial: func(string) (net.Conn, error) {
			return p.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 40000})
		},
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.Header.SetMethod(method)
	req.SetRequestURI("http://example.com:8080/api/items?page=2")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", "session=0123456789abcdef; theme=dark")
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	want := 200
	if cfg.Limiter != nil && cfg.RateLimitStatus != 0 {
		want = cfg.RateLimitStatus // a limiter that refuses everything
	}
	do := func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != want {
			b.Fatalf("status %d, %v", resp.StatusCode(), err)
		}
	}
	for i := 0; i < 100; i++ { // warm the pools
		do()
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do()
	}
	b.StopTimer()
	b.ReportMetric(float64(len(resp.Body())), "resp-bytes")
}

func BenchmarkForwardGET(b *testing.B) { benchmarkForward(b, "GET", nil) }

func BenchmarkForwardPOST16K(b *testing.B) {
	benchmarkForward(b, "POST", bytes.Repeat([]byte(`{"k":"v"},`), 16<<10/10))
}

type discardLog struct{}

func (discardLog) Log(*AccessRecord) {}

// json64K is a 64 KiB JSON document shaped like an API's list answer.
func json64K() []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < 64<<10; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d","price":%d.%02d,"tags":["tag-%d"],"description":"Item %d of the catalogue."},`, i, i, i*37%1000, i%100, i%17, i)
	}
	out := b.Bytes()[:64<<10]
	out[len(out)-1] = ']'
	return out
}

// BenchmarkForwardJSON64K is a 64 KiB JSON answer without compression,
// the baseline for the compressed ones below.
func BenchmarkForwardJSON64K(b *testing.B) {
	benchmarkForwardWith(b, testConfig(benchAppWith(b, json64K())), "GET", nil, "Accept-Encoding", "gzip, br, zstd")
}

func benchmarkForwardCompressed(b *testing.B, acceptEncoding string) {
	comp, err := compress.New(compress.Config{Level: compress.DefaultLevel, MinLength: compress.DefaultMinLength})
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(benchAppWith(b, json64K()))
	cfg.Compressor = comp
	benchmarkForwardWith(b, cfg, "GET", nil, "Accept-Encoding", acceptEncoding)
}

// The same with compression on (COMPRESS_LEVEL=5), for each coding.
func BenchmarkForwardJSON64KGzip(b *testing.B)   { benchmarkForwardCompressed(b, "gzip") }
func BenchmarkForwardJSON64KBrotli(b *testing.B) { benchmarkForwardCompressed(b, "br") }
func BenchmarkForwardJSON64KZstd(b *testing.B)   { benchmarkForwardCompressed(b, "zstd") }

// BenchmarkForwardGETRateLimited is BenchmarkForwardGET with the rate
// limiter on (a rate the benchmark never reaches).
func BenchmarkForwardGETRateLimited(b *testing.B) {
	lim, err := ratelimit.New(ratelimit.Config{Rate: ratelimit.MaxRequests * 1000, Burst: ratelimit.MaxRequests, NoDelay: true, Entries: 1024})
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(benchApp(b))
	cfg.Limiter = lim
	benchmarkForwardWith(b, cfg, "GET", nil)
}

// BenchmarkForwardRefused is a client over its rate: every request is
// refused (503) by the limiter, before the app: 0 allocs/op, so a flood
// of refusals costs the proxy little.
func BenchmarkForwardRefused(b *testing.B) {
	lim, err := ratelimit.New(ratelimit.Config{Rate: 1, Entries: 1024})
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(benchApp(b))
	cfg.Limiter = lim
	cfg.RateLimitStatus = 503
	cfg.TrustedProxies = nil // the key is the peer, 203.0.113.7
	lim.Limit([]byte("203.0.113.7"))
	benchmarkForwardWith(b, cfg, "GET", nil)
}
