package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// pattern is n bytes of a sequence a reader can check.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func openFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// Bodies over BUFFER_MEMORY go through files that never have a name in
// BUFFER_DIR and are gone (descriptors closed) once the request is over;
// the guarantees stay: the app gets the whole body at once, the client
// the whole answer.
func TestLargeBodiesSpoolToDisk(t *testing.T) {
	answerBody := pattern(200 << 10)
	app := startScriptedApp(t, func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
		for {
			if _, ok := a.readRequest(br); !ok {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(answerBody))
			c.Write(answerBody)
		}
	})
	dir := t.TempDir()
	cfg := testConfig(app.upstream())
	cfg.BufferDir = dir
	cfg.BufferMemory = 1 << 10
	p := startProxy(t, cfg)

	fdsBefore := openFDs(t)
	upload := pattern(300 << 10)
	for _, chunked := range []bool{false, true} {
		c := p.dial(t, "203.0.113.7")
		if chunked {
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", len(upload))
			go func() { c.Write(upload); io.WriteString(c, "\r\n0\r\n\r\n") }()
		} else {
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", len(upload))
			go c.Write(upload)
		}
		resp := readResponse(t, bufio.NewReader(c), false)
		if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), answerBody) {
			p.dumpErrors(t)
			t.Fatalf("chunked=%v: status %d, %d bytes of answer", chunked, resp.StatusCode(), len(resp.Body()))
		}
		c.Close()
	}
	for i, raw := range app.received() {
		_, body, _ := strings.Cut(raw, "\r\n\r\n")
		if body != string(upload) || !strings.Contains(raw, fmt.Sprintf("Content-Length: %d\r\n", len(upload))) {
			t.Errorf("request %d: the app got %d bytes of body", i, len(body))
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left in BUFFER_DIR: %v", entries)
	}
	eventually(t, "the spool files closed", func() bool { return openFDs(t) <= fdsBefore })
}

// An idempotent request with a spooled body that is lost on a reused
// connection is sent again, whole: the spool rewinds.
func TestSpooledBodyIsResentWhole(t *testing.T) {
	app := startScriptedApp(t, byConnection(firstConnDropsSecondRequest))
	cfg := testConfig(app.upstream())
	cfg.BufferDir = t.TempDir()
	cfg.BufferMemory = 1 << 10
	p := startProxy(t, cfg)
	upload := pattern(100 << 10)
	put := fmt.Sprintf("PUT /doc HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(upload), upload)
	if got := sendSequentially(t, p, getRequest, put); got[0] != 200 || got[1] != 200 {
		p.dumpErrors(t)
		t.Fatalf("statuses %v", got)
	}
	received := app.received()
	if len(received) != 3 {
		t.Fatalf("the app received %d requests, want 3", len(received))
	}
	for _, raw := range received[1:] {
		if _, body, _ := strings.Cut(raw, "\r\n\r\n"); body != string(upload) {
			t.Errorf("a send of the PUT carried %d bytes, want %d", len(body), len(upload))
		}
	}
}

// A BUFFER_DIR that cannot be written fails the requests that need it with
// a 500, and only those.
func TestBrokenBufferDir(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.BufferDir = "/nonexistent/buffer/dir"
	cfg.BufferMemory = 1 << 10
	p := startProxy(t, cfg)
	small := p.roundTrip(t, "203.0.113.7", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
	large := p.roundTrip(t, "203.0.113.7", fmt.Sprintf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", 4096, pattern(4096)))
	if small.StatusCode() != 200 || large.StatusCode() != 500 {
		t.Errorf("small %d (want 200), large %d (want 500)", small.StatusCode(), large.StatusCode())
	}
	if !strings.Contains(p.errs.String(), "BUFFER_DIR") {
		t.Errorf("the cause is not in the error log: %q", p.errs.String())
	}
	if err := CheckBufferDir(cfg.BufferDir); err == nil {
		t.Error("CheckBufferDir accepted a missing directory")
	}
	if err := CheckBufferDir(t.TempDir()); err != nil {
		t.Errorf("CheckBufferDir: %v", err)
	}
}

// A body of exactly BUFFER_MEMORY bytes stays in memory; one byte more
// goes to disk; both arrive whole.
func TestSpoolBoundary(t *testing.T) {
	cfg := &spoolConfig{dir: t.TempDir(), memory: 4096, copyBuffers: &clientCopyBufferPool}
	for _, tt := range []struct {
		size   int
		onDisk bool
	}{{0, false}, {1, false}, {4095, false}, {4096, false}, {4097, true}, {100000, true}} {
		var s spool
		data := pattern(tt.size)
		if err := s.readFrom(iotestOneByteAtATimeIfOdd(data, tt.size), cfg, -1, 0, nil); err != nil {
			t.Fatal(err)
		}
		if s.onDisk() != tt.onDisk || s.size != int64(tt.size) {
			t.Errorf("%d bytes: on disk %v, size %d", tt.size, s.onDisk(), s.size)
		}
		var got []byte
		if s.onDisk() {
			s.rewind()
			got, _ = io.ReadAll(s.file)
		} else {
			got = s.mem
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%d bytes: content differs", tt.size)
		}
		s.reset()
	}
	var s spool
	if err := s.readFrom(bytes.NewReader(pattern(5000)), cfg, -1, 4999, nil); err != errBodyTooLarge {
		t.Errorf("over the limit: %v", err)
	}
	s.reset()
}

// iotestOneByteAtATimeIfOdd varies the read sizes the spool sees.
func iotestOneByteAtATimeIfOdd(data []byte, n int) io.Reader {
	if n%2 == 1 {
		return iotest.OneByteReader(bytes.NewReader(data))
	}
	return bytes.NewReader(data)
}
