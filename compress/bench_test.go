package compress

import (
	"fmt"
	"testing"
)

// BenchmarkFilterResponse is the whole filter on a 64 KiB JSON answer, as
// the proxy runs it: negotiation, compression at the default level, the
// body swap and the header changes. 0 allocs/op in steady state.
func BenchmarkFilterResponse(b *testing.B) {
	c := mustNew(b, Config{Level: DefaultLevel, MinLength: DefaultMinLength})
	body := jsonBody(64 << 10)
	for _, tc := range []struct{ name, accept, contentType string }{
		{"gzip", "gzip, deflate", "application/json"},
		{"br", "gzip, deflate, br, zstd", "application/json"},
		{"zstd", "gzip, zstd", "application/json"},
		{"identity", "identity", "application/json"}, // eligible: Vary only
		{"ineligible", "gzip", "image/png"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := getWith(b, "Accept: application/json", "Accept-Encoding: "+tc.accept, "Cookie: session=0123456789abcdef")
			resp := response(200, body, "Content-Type", tc.contentType, "ETag", `"v1"`)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var out int
			for b.Loop() {
				resp.Header.SetContentEncodingBytes(nil)
				resp.Header.SetBytesKV([]byte("ETag"), []byte(`"v1"`))
				resp.SetBodyRaw(nil)
				resp.AppendBody(body)
				c.FilterResponse(req, resp)
				out = len(resp.Body())
			}
			b.ReportMetric(float64(out), "out-bytes")
		})
	}
}

// BenchmarkLevels measures each gzip level and the brotli and zstd levels
// LevelsFor maps it to, on the same 64 KiB JSON: the table in LevelsFor's
// comment comes from here (each mapped level should cost no more ns/op
// than its gzip level, and give fewer out-bytes).
func BenchmarkLevels(b *testing.B) {
	body := jsonBody(64 << 10)
	for level := 1; level <= 9; level++ {
		c := mustNew(b, Config{Level: level})
		for _, coding := range []Coding{Gzip, Brotli, Zstd} {
			b.Run(fmt.Sprintf("%d/%v", level, coding), func(b *testing.B) {
				st := new(state)
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				var out []byte
				for b.Loop() {
					out = c.encode(st, coding, out[:0], body)
				}
				b.ReportMetric(float64(len(out)), "out-bytes")
			})
		}
	}
}

func BenchmarkNegotiate(b *testing.B) {
	c := mustNew(b, Config{})
	req := getWith(b, "Accept: text/html,application/xhtml+xml", "Accept-Encoding: gzip, deflate, br, zstd",
		"Accept-Language: en-GB,en;q=0.9", "User-Agent: Mozilla/5.0", "Cookie: a=b")
	b.ReportAllocs()
	for b.Loop() {
		if c.negotiate(req) != Brotli {
			b.Fatal("not brotli")
		}
	}
}
