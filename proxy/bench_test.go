package proxy

import (
	"bytes"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// benchApp is a fasthttp app on 127.0.0.1 that answers every request with
// a small JSON body, like a typical API endpoint.
func benchApp(b *testing.B) Upstream {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"ok":true,"items":[1,2,3],"message":"hello from the app"}`)
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
	cfg := testConfig(benchApp(b))
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
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	do := func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
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
}

func BenchmarkForwardGET(b *testing.B) { benchmarkForward(b, "GET", nil) }

func BenchmarkForwardPOST16K(b *testing.B) {
	benchmarkForward(b, "POST", bytes.Repeat([]byte(`{"k":"v"},`), 16<<10/10))
}

type discardLog struct{}

func (discardLog) Log(*AccessRecord) {}
