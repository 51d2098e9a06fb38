package logsink

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

// benchRecord is a realistic request: an API call with a query string.
func benchRecord() proxy.AccessRecord {
	rec := typical()
	rec.ClientIP = []byte("198.51.100.23")
	rec.Method = []byte("POST")
	rec.URI = []byte("/api/v2/orders/8c1f0e2a-4b7d-4f53-9e61-2d3c5a7b9f10/items?expand=product,price&page=3")
	return rec
}

// BenchmarkLog is the cost on the request path: format, queue, and nothing
// else. It must report 0 allocs/op.
func BenchmarkLog(b *testing.B) {
	for _, tt := range []struct {
		name string
		open func(b *testing.B) *Sink
	}{
		{"discard", func(b *testing.B) *Sink { return New(io.Discard, Options{Report: io.Discard}) }},
		{"file", func(b *testing.B) *Sink {
			s, err := Open(filepath.Join(b.TempDir(), "access.log"), Options{Report: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			s := tt.open(b)
			rec := benchRecord()
			b.ReportAllocs()
			for b.Loop() {
				s.Log(&rec)
			}
			b.StopTimer()
			s.Close()
			b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
		})
	}
}

// BenchmarkLogMixedSizes has one request in 20 with a 4 KB URI: the pool
// discards buffers above the sizes most lines need, so those lines may
// allocate.
func BenchmarkLogMixedSizes(b *testing.B) {
	s := New(io.Discard, Options{Report: io.Discard})
	rec := benchRecord()
	short := rec.URI
	long := []byte("/search?q=" + strings.Repeat("x", 4096))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec.URI = short
		if i++; i%20 == 0 {
			rec.URI = long
		}
		s.Log(&rec)
	}
	b.StopTimer()
	s.Close()
}

func BenchmarkLogParallel(b *testing.B) {
	s := New(io.Discard, Options{Report: io.Discard})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rec := benchRecord()
		for pb.Next() {
			s.Log(&rec)
		}
	})
	b.StopTimer()
	s.Close()
	b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkLogBlocked is Log while the target takes nothing: every line is
// dropped, and that must stay as cheap as logging.
func BenchmarkLogBlocked(b *testing.B) {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	s := New(w, Options{QueueBytes: 64 << 10, Report: io.Discard})
	rec := benchRecord()
	for range 10000 { // fill the pipe and the queue
		s.Log(&rec)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Log(&rec)
	}
}

// BenchmarkSyslogUDP measures the writer side, one datagram per line.
func BenchmarkSyslogUDP(b *testing.B) {
	// A receiver that never reads: the kernel discards what overflows its
	// buffer, and every send succeeds, as with a busy remote server.
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	o := newSyslogOut(syslogTarget{network: "udp", addr: ln.LocalAddr().String(), facility: 23, severity: 6, tag: defaultTag})
	defer o.close()
	rec := benchRecord()
	var batch []byte
	for i := range 64 {
		rec.URI = strconv.AppendInt(rec.URI[:0], int64(i), 10)
		batch = AppendLine(batch, &rec)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if lost, err := o.write(batch); lost > 0 {
			b.Fatal(err)
		}
	}
}
