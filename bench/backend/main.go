// Command backend is the fast upstream the bench puts behind every proxy: a
// tiny fasthttp server on 127.0.0.1 whose answers are prebuilt, so that the
// proxy, not the app, is what a run measures.
//
//	GET  /small  ~100 bytes
//	GET  /64k    65536 bytes
//	GET  /json64k  65536 bytes of JSON (application/json), for compression
//	GET  /32m    32 MiB (the slow-reader memory scenario)
//	POST /post   reads the whole body, answers {"received":N}
//
// It is started by the bench driver (go run ./bench); it writes nothing but
// errors and stops on SIGTERM or SIGINT.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"
)

var (
	small = []byte(`{"status":"ok","service":"bench-backend","detail":"a small answer of about one hundred bytes"}` + "\n")
	b64k  = bytes.Repeat([]byte("0123456789abcdef"), 64*1024/16)
	b32m  = bytes.Repeat([]byte("0123456789abcdef"), 32*1024*1024/16)
	j64k  = jsonDocument(64 << 10)

	ctPlain = []byte("text/plain")
	ctJSON  = []byte("application/json")
)

func handler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/small":
		ctx.SetContentTypeBytes(ctJSON)
		ctx.Response.SetBodyRaw(small)
	case "/64k":
		ctx.SetContentTypeBytes(ctPlain)
		ctx.Response.SetBodyRaw(b64k)
	case "/json64k":
		ctx.SetContentTypeBytes(ctJSON)
		ctx.Response.SetBodyRaw(j64k)
	case "/32m":
		ctx.SetContentTypeBytes(ctPlain)
		ctx.Response.SetBodyRaw(b32m)
	case "/post":
		// fasthttp has read the whole body before calling us.
		var buf [48]byte
		out := append(buf[:0], `{"received":`...)
		out = strconv.AppendInt(out, int64(len(ctx.PostBody())), 10)
		out = append(out, "}\n"...)
		ctx.SetContentTypeBytes(ctJSON)
		ctx.Response.SetBody(out)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

// jsonDocument is n bytes of valid JSON shaped like an API's list answer
// (repetitive in structure, varied in values, as compressors meet it),
// padded to the exact size.
func jsonDocument(n int) []byte {
	const tail = `{"pad":""}]`
	b := []byte("[")
	for i := 0; ; i++ {
		item := fmt.Appendf(nil, `{"id":%d,"name":"item-%d","price":%d.%02d,"in_stock":%v,"tags":["tag-%d","tag-%d"],"description":"Item number %d of the catalogue."},`,
			i, i, i*37%1000, i%100, i%3 == 0, i%17, i%5, i)
		if len(b)+len(item)+len(tail) > n {
			break
		}
		b = append(b, item...)
	}
	b = append(b, `{"pad":"`...)
	b = append(b, bytes.Repeat([]byte("x"), n-len(b)-len(`"}]`))...)
	return append(b, `"}]`...)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address (loopback only)")
	flag.Parse()

	s := &fasthttp.Server{
		Handler: handler,
		Name:    "bench-backend",
		// The slow-upload scenario sends 1 MiB bodies; leave headroom.
		MaxRequestBodySize: 64 << 20,
		// 1000 slow uploads and 5000 idle connections must all fit.
		Concurrency: 256 * 1024,
	}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		os.Exit(0)
	}()
	if err := s.ListenAndServe(*addr); err != nil {
		log.Fatalf("backend: %v", err)
	}
}
