package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/gunicorn-proxy/gunicorn-proxy/compress/compresstest"
)

// A spooled body (larger than BUFFER_MEMORY) is compressed block by block
// into the writer the proxy gives, and decodes to the app's bytes.
func TestFilterStream(t *testing.T) {
	c := mustNew(t, Config{Level: DefaultLevel, MinLength: DefaultMinLength})
	for _, coding := range []string{"gzip", "br", "zstd"} {
		for _, n := range []int{300, 64 << 10, 1 << 20, 5<<20 + 17} {
			t.Run(fmt.Sprintf("%s %d", coding, n), func(t *testing.T) {
				body := jsonBody(n)
				resp := response(200, nil, "Content-Type", "application/json", "ETag", `"s1"`, "Vary", "Origin", "Accept-Ranges", "bytes")
				var out bytes.Buffer
				if !c.FilterStream(getWith(t, "Accept-Encoding: "+coding), resp, bytes.NewReader(body), int64(n), &out) {
					t.Fatal("not compressed")
				}
				if string(resp.Header.ContentEncoding()) != coding || header(resp, "ETag") != `W/"s1"` ||
					header(resp, "Vary") != "Origin, Accept-Encoding" || header(resp, "Accept-Ranges") != "" {
					t.Errorf("headers:\n%s", resp.Header.String())
				}
				if !bytes.Equal(compresstest.Decode(t, coding, out.Bytes()), body) {
					t.Error("decoded body differs")
				}
				if out.Len() >= n {
					t.Errorf("%d bytes became %d", n, out.Len())
				}
			})
		}
	}
}

// What is not compressed is left as it is: the proxy then sends the file
// itself, with sendfile.
func TestFilterStreamUntouched(t *testing.T) {
	c := mustNew(t, Config{Level: DefaultLevel, MinLength: DefaultMinLength})
	tests := []struct {
		name    string
		accept  string
		headers []string
		size    int64
		vary    bool
	}{
		{"no Accept-Encoding", "", []string{"Content-Type", "application/json"}, 1 << 20, true},
		{"not a listed type", "gzip", []string{"Content-Type", "video/mp4"}, 1 << 20, false},
		{"encoded by the app", "gzip", []string{"Content-Type", "application/json", "Content-Encoding", "gzip"}, 1 << 20, false},
		{"no-transform", "gzip", []string{"Content-Type", "application/json", "Cache-Control", "no-transform"}, 1 << 20, false},
		{"unknown length", "gzip", []string{"Content-Type", "application/json"}, -1, false},
		{"incompressible", "gzip", []string{"Content-Type", "application/json", "ETag", `"r"`}, 1 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := response(200, nil, tt.headers...)
			req := getWith(t)
			if tt.accept != "" {
				req = getWith(t, "Accept-Encoding: "+tt.accept)
			}
			var out bytes.Buffer
			if c.FilterStream(req, resp, bytes.NewReader(randomBytes(1<<20)), tt.size, &out) {
				t.Error("compressed")
			}
			if got := header(resp, "Vary") != ""; got != tt.vary {
				t.Errorf("Vary %q", header(resp, "Vary"))
			}
			if len(resp.Header.ContentEncoding()) > 0 && tt.name != "encoded by the app" || header(resp, "ETag") == `W/"r"` {
				t.Errorf("headers changed for a body sent as it is:\n%s", resp.Header.String())
			}
		})
	}
}

// A write that fails (BUFFER_DIR full) or a read that fails leaves the
// body as it is, and the next compression from the pool is sound.
func TestFilterStreamErrors(t *testing.T) {
	c := mustNew(t, Config{Level: DefaultLevel})
	body := jsonBody(1 << 20)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		req := getWith(t, "Accept-Encoding: "+coding)
		resp := response(200, nil, "Content-Type", "text/plain", "ETag", `"e"`)
		if c.FilterStream(req, resp, bytes.NewReader(body), int64(len(body)), &failingWriter{after: 1000}) {
			t.Errorf("%s: compressed into a failing writer", coding)
		}
		if len(resp.Header.ContentEncoding()) > 0 || header(resp, "ETag") != `"e"` {
			t.Errorf("%s: headers changed after a failure:\n%s", coding, resp.Header.String())
		}
		resp = response(200, nil, "Content-Type", "text/plain")
		if c.FilterStream(req, resp, io.MultiReader(bytes.NewReader(body[:5000]), errReader{}), int64(len(body)), io.Discard) {
			t.Errorf("%s: compressed a body that failed to read", coding)
		}
		var out bytes.Buffer
		resp = response(200, nil, "Content-Type", "text/plain")
		if !c.FilterStream(req, resp, bytes.NewReader(body), int64(len(body)), &out) || !bytes.Equal(compresstest.Decode(t, coding, out.Bytes()), body) {
			t.Errorf("%s: the compression after a failed one is not sound", coding)
		}
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read error") }

// In steady state a compressed spooled answer allocates nothing either,
// but for zstd: klauspost/compress's streaming encoder moves two small
// arrays (the frame header and the checksum, 22 bytes) to the heap on
// every stream, as its own comments say. Against a body of more than
// BUFFER_MEMORY that is noise, but it is counted here so that it cannot
// grow unnoticed.
func TestFilterStreamNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c := mustNew(t, Config{Level: DefaultLevel})
	body := jsonBody(256 << 10)
	src := bytes.NewReader(body)
	var out bytes.Buffer
	for _, coding := range []string{"gzip", "br", "zstd"} {
		req := getWith(t, "Accept-Encoding: "+coding)
		resp := response(200, nil, "Content-Type", "application/json")
		run := func() {
			src.Reset(body)
			out.Reset()
			resp.Header.SetContentEncodingBytes(nil)
			if !c.FilterStream(req, resp, src, int64(len(body)), &out) {
				t.Fatal("not compressed")
			}
		}
		var allocs float64
		for attempt := 0; attempt < 3; attempt++ {
			if allocs = testing.AllocsPerRun(20, run); allocs == 0 {
				break
			}
		}
		want := 0.0
		if coding == "zstd" {
			want = 2
		}
		if allocs > want {
			t.Errorf("%s: %v allocations per stream, want %v", coding, allocs, want)
		}
	}
}

// BenchmarkFilterStream compresses a 1 MiB spooled JSON body.
func BenchmarkFilterStream(b *testing.B) {
	c := mustNew(b, Config{Level: DefaultLevel})
	body := jsonBody(1 << 20)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		b.Run(coding, func(b *testing.B) {
			req := getWith(b, "Accept-Encoding: "+coding)
			resp := response(200, nil, "Content-Type", "application/json")
			src := bytes.NewReader(body)
			var out bytes.Buffer
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				src.Reset(body)
				out.Reset()
				resp.Header.SetContentEncodingBytes(nil)
				c.FilterStream(req, resp, src, int64(len(body)), &out)
			}
			b.ReportMetric(float64(out.Len()), "out-bytes")
		})
	}
}
