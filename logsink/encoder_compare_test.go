package logsink

import (
	"bytes"
	"strconv"
	"testing"
	"unsafe"

	gojson "github.com/goccy/go-json"
	"github.com/valyala/bytebufferpool"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

// This file compares the hand-written appender that the package uses with
// goccy/go-json doing the same job, as issue 4 asks. goccy is only imported
// here: delete this file and the dependency goes with it.

// goccyLine is the line as a struct, for a generic encoder.
type goccyLine struct {
	IP             string `json:"ip"`
	Method         string `json:"method"`
	URI            string `json:"uri"`
	Status         string `json:"status"`
	ProcessingTime string `json:"processing_time"`
	RequestTime    string `json:"request_time"`
	RequestSize    string `json:"request_size"`
	Time           string `json:"time"`
}

// goccyAppender gives goccy every advantage: a reused encoder and struct,
// strings that alias the record's bytes instead of copying them, the numbers
// formatted by this package's own helpers, and no missing-value handling.
type goccyAppender struct {
	out     *bytebufferpool.ByteBuffer
	enc     *gojson.Encoder
	v       goccyLine
	scratch []byte
}

func newGoccyAppender() *goccyAppender {
	a := &goccyAppender{out: new(bytebufferpool.ByteBuffer), scratch: make([]byte, 0, 128)}
	a.enc = gojson.NewEncoder(a.out)
	a.enc.SetEscapeHTML(false) // as nginx: '<' stays '<'
	return a
}

func view(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (a *goccyAppender) appendLine(dst []byte, rec *proxy.AccessRecord) []byte {
	// scratch never grows past its 128 bytes, so the views stay valid.
	s := a.scratch[:0]
	var end [5]int
	s = strconv.AppendInt(s, int64(rec.Status), 10)
	end[0] = len(s)
	s = appendSeconds(s, rec.UpstreamTime)
	end[1] = len(s)
	s = appendSeconds(s, rec.End.Sub(rec.Start))
	end[2] = len(s)
	s = strconv.AppendInt(s, rec.RequestSize, 10)
	end[3] = len(s)
	s = appendISO8601(s, rec.Start.Local())
	end[4] = len(s)
	a.v = goccyLine{
		IP: view(rec.ClientIP), Method: view(rec.Method), URI: view(rec.URI),
		Status:         view(s[:end[0]]),
		ProcessingTime: view(s[end[0]:end[1]]),
		RequestTime:    view(s[end[1]:end[2]]),
		RequestSize:    view(s[end[2]:end[3]]),
		Time:           view(s[end[3]:end[4]]),
	}
	a.out.Reset()
	if err := a.enc.Encode(&a.v); err != nil {
		panic(err)
	}
	return append(dst, a.out.B...)
}

// TestGoccyAppenderAgrees makes sure the benchmark compares the same work:
// on ordinary input both produce the same bytes.
func TestGoccyAppenderAgrees(t *testing.T) {
	a := newGoccyAppender()
	rec := benchRecord()
	hand, goccy := AppendLine(nil, &rec), a.appendLine(nil, &rec)
	if !bytes.Equal(hand, goccy) {
		t.Fatalf("hand  %s\ngoccy %s", hand, goccy)
	}
	// Where they differ, and why the hand-written one is kept even apart
	// from speed: goccy, like encoding/json, turns each invalid byte into
	// U+FFFD, so what the client sent cannot be recovered from the log.
	rec.URI = []byte("/\xff\xfe")
	t.Logf("invalid UTF-8: hand %s", AppendLine(nil, &rec))
	t.Logf("invalid UTF-8: goccy %s", a.appendLine(nil, &rec))
}

func BenchmarkAppendLine(b *testing.B) {
	hostile := benchRecord()
	hostile.URI = []byte("/search?q=\"caf\xc3\xa9\"\\\n\x00&next=\xff\xfe%2F..%2F..%2Fetc%2Fpasswd")
	for _, in := range []struct {
		name string
		rec  proxy.AccessRecord
	}{{"typical", benchRecord()}, {"escapes", hostile}} {
		b.Run("hand/"+in.name, func(b *testing.B) {
			rec := in.rec
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendLine(buf[:0], &rec)
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run("goccy/"+in.name, func(b *testing.B) {
			rec := in.rec
			a := newGoccyAppender()
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf = a.appendLine(buf[:0], &rec)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}
