package compress

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// jsonBody is n bytes of JSON shaped like a real API answer: a list of
// catalogue items, repetitive in structure, varied in values.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d","price":%d.%02d,"in_stock":%v,"tags":["tag-%d","tag-%d"],"description":"Item number %d of the catalogue, with a description long enough to look like real data."}`,
			i, i, i*37%1000, i%100, i%3 == 0, i%17, i%5, i)
	}
	out := b.Bytes()[:n]
	if n > 1 {
		out[n-1] = ']'
	}
	return out
}

// request parses a raw request header, as the proxy's server would.
func request(t testing.TB, raw string) *fasthttp.RequestHeader {
	t.Helper()
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parsing %q: %v", raw, err)
	}
	return &h
}

// getWith is a GET carrying the given header lines ("Name: value").
func getWith(t testing.TB, lines ...string) *fasthttp.RequestHeader {
	t.Helper()
	raw := "GET /x HTTP/1.1\r\nHost: example.com\r\n"
	for _, l := range lines {
		raw += l + "\r\n"
	}
	return request(t, raw+"\r\n")
}

// response builds an answer as the proxy hands it to the filter: header
// names in the app's case, no invented Content-Type, the body in place.
func response(status int, body []byte, headers ...string) *fasthttp.Response {
	resp := new(fasthttp.Response)
	resp.Header.DisableNormalizing()
	resp.Header.SetNoDefaultContentType(true)
	resp.SetStatusCode(status)
	for i := 0; i+1 < len(headers); i += 2 {
		resp.Header.AddBytesKV([]byte(headers[i]), []byte(headers[i+1]))
	}
	resp.SetBody(body)
	return resp
}

// headerValues returns every value of the named header, case-insensitively.
func headerValues(resp *fasthttp.Response, name string) []string {
	var out []string
	for k, v := range resp.Header.All() {
		if strings.EqualFold(string(k), name) {
			out = append(out, string(v))
		}
	}
	return out
}

func header(resp *fasthttp.Response, name string) string {
	return strings.Join(headerValues(resp, name), ", ")
}

func mustNew(t testing.TB, cfg Config) *Compressor {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
