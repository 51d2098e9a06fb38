package logsink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

// syncBuffer collects reports written from the sink's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond with a generous deadline: these tests assert what
// happens, not how fast on a noisy machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logMany logs n records per goroutine with URIs "/g<g>/<i>", so that every
// line is unique and can be accounted for.
func logMany(s *Sink, goroutines, n int, progress *atomic.Int64, maxLatency *atomic.Int64) {
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rec := typical()
			uri := make([]byte, 0, 32)
			for i := range n {
				uri = append(uri[:0], "/g"...)
				uri = strconv.AppendInt(uri, int64(g), 10)
				uri = append(uri, '/')
				uri = strconv.AppendInt(uri, int64(i), 10)
				rec.URI = uri
				begin := time.Now()
				s.Log(&rec)
				if maxLatency != nil {
					d := int64(time.Since(begin))
					for old := maxLatency.Load(); d > old && !maxLatency.CompareAndSwap(old, d); old = maxLatency.Load() {
					}
				}
				if progress != nil {
					progress.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

// collectURIs checks every line of data and counts the URIs seen.
func collectURIs(t *testing.T, data []byte, seen map[string]int) int {
	t.Helper()
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("output ends with a partial line: %q", data[max(0, len(data)-200):])
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		m := checkLine(t, append(sc.Bytes(), '\n'))
		seen[m["uri"]]++
		n++
	}
	return n
}

// checkAllOnce checks that lines /g<g>/0 to /g<g>/<n-1> were each seen once,
// and removes them from seen.
func checkAllOnce(t *testing.T, seen map[string]int, g, n int) {
	t.Helper()
	missing := 0
	for i := range n {
		uri := "/g" + strconv.Itoa(g) + "/" + strconv.Itoa(i)
		switch c := seen[uri]; c {
		case 1:
		case 0:
			missing++
		default:
			t.Errorf("%s logged %d times", uri, c)
		}
		delete(seen, uri)
	}
	if missing > 0 {
		t.Errorf("goroutine %d: %d of %d lines missing", g, missing, n)
	}
}

func TestFileReopenMidLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	var report syncBuffer
	// A queue large enough that nothing is dropped: this test is about
	// rotation, and every line must be found.
	s, err := Open(path, Options{QueueBytes: 64 << 20, Report: &report})
	if err != nil {
		t.Fatal(err)
	}
	// Loggers run until told to stop, so that both rotations happen while
	// lines are flowing, however fast or slow the machine.
	const goroutines, between = 8, 4000
	var progress atomic.Int64
	var stop atomic.Bool
	counts := make([]int, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rec := typical()
			for i := 0; !stop.Load(); i++ {
				rec.URI = []byte("/g" + strconv.Itoa(g) + "/" + strconv.Itoa(i))
				s.Log(&rec)
				progress.Add(1)
				counts[g] = i + 1
				if i%64 == 63 {
					time.Sleep(time.Millisecond) // keep the line count checkable
				}
			}
		})
	}
	for r := 1; r <= 3; r++ {
		target := progress.Load() + between
		eventually(t, "progress", func() bool { return progress.Load() >= target })
		if r == 3 {
			break
		}
		if err := os.Rename(path, path+"."+strconv.Itoa(r)); err != nil {
			t.Fatal(err)
		}
		if err := s.Reopen(); err != nil {
			t.Fatalf("Reopen: %v", err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := s.Dropped(); d != 0 {
		t.Fatalf("%d lines dropped; report: %s", d, report.String())
	}
	seen := map[string]int{}
	for _, name := range []string{path + ".1", path + ".2", path} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := collectURIs(t, data, seen)
		t.Logf("%s: %d lines", filepath.Base(name), lines)
		if lines == 0 {
			t.Errorf("%s is empty: lines were logged before and after each rotation", name)
		}
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
			t.Errorf("%s has mode %v, want at most 0640", name, perm)
		}
	}
	for g, n := range counts {
		checkAllOnce(t, seen, g, n)
	}
	if len(seen) > 0 {
		t.Errorf("%d unexpected lines", len(seen))
	}
	if report.String() != "" {
		t.Errorf("unexpected report: %s", report.String())
	}
}

func TestFileAppendsAndKeepsOldFileWhenReopenFails(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(logDir, "access.log")
	if err := os.WriteFile(path, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Report: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	rec := typical()
	rec.URI = []byte("/before")
	s.Log(&rec)
	// The directory disappears: nginx keeps writing to the open file when
	// reopening fails, and so do we.
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(logDir, moved); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err == nil {
		t.Fatal("Reopen into a missing directory: no error")
	}
	rec.URI = []byte("/after")
	s.Log(&rec)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(moved, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "earlier line" ||
		!strings.Contains(lines[1], `"uri":"/before"`) || !strings.Contains(lines[2], `"uri":"/after"`) {
		t.Errorf("file content:\n%s", data)
	}
}

func TestIdleLineAppears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := typical()
	begin := time.Now()
	s.Log(&rec)
	eventually(t, "the line in the file", func() bool {
		data, _ := os.ReadFile(path)
		return bytes.HasSuffix(data, []byte("}\n"))
	})
	t.Logf("line visible after %v", time.Since(begin))
}

func TestCloseFlushesQueuedLines(t *testing.T) {
	for _, tt := range []struct {
		name          string
		goroutines, n int
	}{
		// Below the batch size: nothing is written before Close.
		{"small", 1, 300},
		// Many batches, the last ones still queued at Close.
		{"large", 4, 10000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			s, err := Open(path, Options{FlushInterval: time.Hour, QueueBytes: 64 << 20, Report: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			logMany(s, tt.goroutines, tt.n, nil, nil)
			if tt.name == "small" {
				if fi, _ := os.Stat(path); fi.Size() != 0 {
					t.Fatalf("%d bytes written before Close; the test wants them queued", fi.Size())
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			collectURIs(t, data, seen)
			for g := range tt.goroutines {
				checkAllOnce(t, seen, g, tt.n)
			}
			if len(seen) > 0 {
				t.Errorf("%d unexpected lines", len(seen))
			}

			// After Close: no panic, counted, and Reopen refuses.
			rec := typical()
			s.Log(&rec)
			if d := s.Dropped(); d != 1 {
				t.Errorf("Dropped after a Log after Close = %d, want 1", d)
			}
			if err := s.Reopen(); !errors.Is(err, ErrClosed) {
				t.Errorf("Reopen after Close = %v, want ErrClosed", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestBlockedWriter is a stdout nobody reads: the pipe fills, the writer
// blocks in write(2), and requests must not notice.
func TestBlockedWriter(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var report syncBuffer
	s := New(w, Options{QueueBytes: 64 << 10, Report: &report})

	const goroutines, n = 4, 50000
	var maxLatency atomic.Int64
	begin := time.Now()
	logMany(s, goroutines, n, nil, &maxLatency)
	elapsed := time.Since(begin)
	t.Logf("%d Log calls in %v, slowest %v, %d dropped", goroutines*n, elapsed, time.Duration(maxLatency.Load()), s.Dropped())
	if elapsed > 30*time.Second {
		t.Errorf("logging into a blocked writer took %v", elapsed)
	}
	if slowest := time.Duration(maxLatency.Load()); slowest > 2*time.Second {
		t.Errorf("a Log call took %v: it waited for the writer", slowest)
	}
	if s.Dropped() == 0 {
		t.Fatal("nothing dropped although nobody reads the pipe")
	}
	eventually(t, "a dropped-lines report", func() bool {
		return strings.Contains(report.String(), "queue full")
	})

	// Now read: every line is either in the pipe, whole, or counted.
	got := make(chan []byte)
	go func() {
		data, _ := io.ReadAll(r)
		got <- data
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	data := <-got
	seen := map[string]int{}
	lines := collectURIs(t, data, seen)
	for uri, c := range seen {
		if c != 1 {
			t.Errorf("%s logged %d times", uri, c)
		}
	}
	if total := uint64(lines) + s.Dropped(); total != goroutines*n {
		t.Errorf("%d lines written + %d dropped = %d, want %d", lines, s.Dropped(), total, goroutines*n)
	}
	rep := report.String()
	t.Logf("report:\n%s", rep)
	if !strings.Contains(rep, "closed; dropped") || !strings.Contains(rep, strconv.FormatUint(s.Dropped(), 10)+" lines") {
		t.Errorf("no final report with the total %d:\n%s", s.Dropped(), rep)
	}
	// At most one report a second, plus the final one.
	if reports, limit := strings.Count(rep, "\n"), int(time.Since(begin)/time.Second)+2; reports > limit {
		t.Errorf("%d reports in %v", reports, time.Since(begin))
	}
}

func TestShutdownGivesUpOnBlockedWriter(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var report syncBuffer
	s := New(w, Options{QueueBytes: 256 << 10, Report: &report})
	logMany(s, 1, 5000, nil, nil) // more than the pipe holds
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want a deadline error", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Shutdown took %v with a 200ms deadline", d)
	}
	if s.Dropped() == 0 {
		t.Error("lines abandoned at Shutdown are not counted as dropped")
	}
	t.Logf("%v; %d dropped; report: %s", err, s.Dropped(), report.String())
	// Unblock the writer so it exits: its write now fails (EPIPE).
	r.Close()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer still blocked after the reader went away")
	}
}

// failingWriter accepts some bytes, then fails once, then works.
type failingWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	failAt  int // fail the write that would pass this many bytes, after writing up to it
	failed  bool
	alwaysE error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.alwaysE != nil {
		return 0, f.alwaysE
	}
	if !f.failed && f.buf.Len()+len(p) > f.failAt {
		f.failed = true
		n := f.failAt - f.buf.Len()
		f.buf.Write(p[:n])
		return n, errors.New("disk full")
	}
	return f.buf.Write(p)
}

func TestWriteErrors(t *testing.T) {
	t.Run("always failing", func(t *testing.T) {
		var report syncBuffer
		s := New(&failingWriter{alwaysE: errors.New("input/output error")}, Options{Report: &report})
		logMany(s, 2, 100, nil, nil)
		s.Close()
		if d := s.Dropped(); d != 200 {
			t.Errorf("Dropped = %d, want 200", d)
		}
		if rep := report.String(); !strings.Contains(rep, "input/output error") || !strings.Contains(rep, "200 lines") {
			t.Errorf("report does not give the count and the error:\n%s", rep)
		}
	})
	t.Run("half a line written", func(t *testing.T) {
		fw := &failingWriter{failAt: 1000} // in the middle of the 6th line or so
		s := New(fw, Options{Report: io.Discard, FlushInterval: time.Millisecond})
		rec := typical()
		for i := range 10 {
			rec.URI = []byte("/first/" + strconv.Itoa(i))
			s.Log(&rec)
		}
		eventually(t, "the failed write", func() bool { fw.mu.Lock(); defer fw.mu.Unlock(); return fw.failed })
		for i := range 10 {
			rec.URI = []byte("/second/" + strconv.Itoa(i))
			s.Log(&rec)
		}
		s.Close()
		lines := strings.Split(strings.TrimSuffix(fw.buf.String(), "\n"), "\n")
		complete := 0
		for i, l := range lines {
			if json.Valid([]byte(l)) {
				complete++
			} else if i == len(lines)-1 || strings.Contains(l, "/second/") {
				t.Errorf("a line after the failure is damaged: %q", l)
			}
		}
		if want := 20 - int(s.Dropped()); complete != want {
			t.Errorf("%d complete lines, want %d (20 logged, %d dropped)", complete, want, s.Dropped())
		}
		if !strings.Contains(lines[len(lines)-1], `"/second/9"`) {
			t.Errorf("last line: %q", lines[len(lines)-1])
		}
	})
}

var _ proxy.AccessLogger = (*Sink)(nil)

func TestLogDoesNotAllocate(t *testing.T) {
	s := New(io.Discard, Options{Report: io.Discard})
	defer s.Close()
	short, long := typical(), typical()
	long.URI = []byte("/search?q=" + strings.Repeat("\xffx\"", 400))
	for range 1000 { // let the pool and the queue reach their sizes
		s.Log(&short)
		s.Log(&long)
	}
	for _, rec := range []*proxy.AccessRecord{&short, &long} {
		n := testing.AllocsPerRun(2000, func() { s.Log(rec) })
		if rec == &short && raceEnabled {
			t.Logf("short line under -race: %v allocations per call (sync.Pool drops items on purpose)", n)
			continue
		}
		if n != 0 {
			t.Errorf("Log with a %d-byte URI: %v allocations per call, want 0", len(rec.URI), n)
		}
	}
}

func TestLongLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	// The queue holds one long line but not two.
	s, err := Open(path, Options{QueueBytes: 64 << 10, FlushInterval: time.Hour, Report: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s.flushAt = 1 << 30 // nothing is written before Close
	rec := typical()
	uri := "/" + strings.Repeat("a\x01é\xff", 2500) // 12.5 KB raw, 37.5 KB escaped
	rec.URI = []byte(uri)
	s.Log(&rec) // fits
	s.Log(&rec) // does not: dropped, and the queue must be left intact
	rec.URI = []byte("/short")
	s.Log(&rec)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := s.Dropped(); d != 1 {
		t.Errorf("Dropped = %d, want 1", d)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	var uris []string
	for sc.Scan() {
		raw, err := rawValues(append(sc.Bytes(), '\n'))
		if err != nil {
			t.Fatalf("%v in %q", err, sc.Bytes())
		}
		uris = append(uris, string(raw[2]))
	}
	if len(uris) != 2 || uris[0] != uri || uris[1] != "/short" {
		t.Errorf("got %d lines, want the long URI then /short", len(uris))
	}
}
