package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// memResult is what a memory scenario measured.
type memResult struct {
	Clients     int     `json:"clients"`
	Completed   int     `json:"completed"` // idle: still open at the end; slowupload: 200s; slowread: still streaming at the end
	Errors      int     `json:"errors"`
	ErrorsText  string  `json:"errors_detail,omitempty"`
	BaselineKiB int64   `json:"baseline_kib"`
	LoadedKiB   int64   `json:"loaded_kib,omitempty"`   // idle: RSS with every connection open
	PerConnKiB  float64 `json:"per_conn_kib,omitempty"` // idle: (loaded - baseline) / clients
	PeakKiB     int64   `json:"peak_kib,omitempty"`     // slowupload, slowread: peak RSS
	BytesRead   int64   `json:"bytes_read,omitempty"`   // slowread: bytes all clients read
	Seconds     float64 `json:"seconds"`
}

// errCount collects client errors by message.
type errCount struct {
	mu sync.Mutex
	n  int
	m  map[string]int
}

func (e *errCount) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.n++
	msg := err.Error()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "timeout"
	}
	e.m[msg]++
}

func (e *errCount) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return e.m[keys[i]] > e.m[keys[j]] })
	var b bytes.Buffer
	for i, k := range keys {
		if i == 5 {
			b.WriteString("; …")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d x %s", e.m[k], k)
	}
	return b.String()
}

// runMemory runs a memory scenario against a fresh instance of target.
func (b *bench) runMemory(ctx context.Context, sc scenario, target string, round int) runResult {
	res := runResult{Scenario: sc.name, Target: target, Round: round}
	dir, err := os.MkdirTemp(b.tmp, fmt.Sprintf("%s-%s-r%d-", sc.name, target, round))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	prof := b.profiling(target, round) && b.cfg.memprofile != ""
	in, err := b.startInstance(ctx, sc, target, dir, prof)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer in.stop()
	m := in.measured().pid
	heap := func() {
		if prof {
			if p := b.fetchHeapProfile(ctx, in, sc); p != "" {
				res.Profiles = append(res.Profiles, p)
			}
		}
	}
	// Some state is built lazily (upstream connections, pools): make a few
	// requests first so the baseline has it.
	warmUp(in.addr, 8, 25)
	time.Sleep(500 * time.Millisecond)
	resetHWM(m)

	var mr *memResult
	switch sc.name {
	case "idle":
		mr, err = idleConns(ctx, in.addr, m, b.cfg.idleConns, heap)
	case "slowupload":
		mr, err = slowUploads(ctx, in.addr, m, b.cfg.uploadClients, heap)
	case "slowread":
		mr, err = slowReaders(ctx, in.addr, m, b.cfg.readers, b.cfg.memHold, heap)
	default:
		err = fmt.Errorf("unknown memory scenario %q", sc.name)
	}
	res.PeakHWMKiB = groupHWM(m)
	if mr != nil {
		res.Mem = mr
		res.PeakRSSKiB = max(mr.PeakKiB, mr.LoadedKiB)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// warmUp makes conns keep-alive connections each send n small GETs.
func warmUp(addr string, conns, n int) {
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			for j := 0; j < n; j++ {
				if _, err := io.WriteString(c, "GET /small HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
					return
				}
				if _, err := readResponse(br); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// settledRSS is the median of a few samples, so one GC cycle or scavenger
// pass caught mid-way does not decide the figure.
func settledRSS(pgid int) int64 {
	var v []int64
	for i := 0; i < 5; i++ {
		v = append(v, groupRSS(pgid))
		time.Sleep(200 * time.Millisecond)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

// idleConns opens n keep-alive connections that each make one small GET and
// then sit idle, and reports (RSS with them open - RSS before) / n.
func idleConns(ctx context.Context, addr string, pgid, n int, heap func()) (*memResult, error) {
	start := time.Now()
	mr := &memResult{Clients: n}
	mr.BaselineKiB = settledRSS(pgid)
	conns := make([]net.Conn, n)
	deadline := time.Now().Add(30 * time.Second)
	var next atomic.Int64
	var errs errCount
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: 5 * time.Second}
	req := []byte("GET /small HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					errs.add(err)
					continue
				}
				_ = c.SetDeadline(deadline)
				if _, err := c.Write(req); err != nil {
					errs.add(err)
					c.Close()
					continue
				}
				status, err := readResponse(bufio.NewReaderSize(c, 1024))
				if err == nil && status != 200 {
					err = fmt.Errorf("status %d", status)
				}
				if err != nil {
					errs.add(err)
					c.Close()
					continue
				}
				_ = c.SetDeadline(time.Time{})
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	opened := 0
	for _, c := range conns {
		if c != nil {
			opened++
		}
	}
	if opened == 0 {
		return mr, fmt.Errorf("no connection could be opened: %s", errs.text())
	}
	// Idle for a while (a proxy with a short idle timeout shows up in the
	// "still open" count) and let allocators settle.
	time.Sleep(4 * time.Second)
	mr.LoadedKiB = settledRSS(pgid)
	heap()
	// Still open? A read that times out means the proxy has not closed it.
	var alive atomic.Int64
	var cw sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		cw.Add(1)
		go func(c net.Conn) {
			defer cw.Done()
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			var one [1]byte
			_, err := c.Read(one[:])
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				alive.Add(1)
			}
		}(c)
	}
	cw.Wait()
	mr.Completed = int(alive.Load())
	if closed := opened - mr.Completed; closed > 0 {
		errs.add(fmt.Errorf("%d idle connections closed by the proxy", closed))
	}
	mr.Errors = errs.n
	mr.ErrorsText = errs.text()
	mr.PerConnKiB = float64(mr.LoadedKiB-mr.BaselineKiB) / float64(opened)
	mr.Seconds = time.Since(start).Seconds()
	return mr, nil
}

// Slow uploads: each client sends a 1 MiB body, 64 KiB every 500 ms (8 s per
// upload), the whole scenario bounded at 20 s.
const (
	uploadSize  = 1 << 20
	uploadChunk = 64 << 10
	uploadEvery = 500 * time.Millisecond
	uploadBound = 20 * time.Second
)

// slowUploads reports the proxy's peak RSS while clients upload slowly. A
// buffering proxy holds every body until it is complete: in memory, or in
// temp files past its memory budget.
func slowUploads(ctx context.Context, addr string, pgid, clients int, heap func()) (*memResult, error) {
	start := time.Now()
	mr := &memResult{Clients: clients}
	mr.BaselineKiB = groupRSS(pgid)
	smp := startSampler(pgid, 100*time.Millisecond)
	deadline := start.Add(uploadBound)
	chunk := bytes.Repeat([]byte("u"), uploadChunk)
	head := []byte("POST /post HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
		strconv.Itoa(uploadSize) + "\r\n\r\n")
	dialSem := make(chan struct{}, 100)
	var ok atomic.Int64
	var errs errCount
	var wg sync.WaitGroup
	var heapOnce sync.Once
	d := net.Dialer{Timeout: 5 * time.Second, Deadline: deadline}
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialSem <- struct{}{}
			c, err := d.DialContext(ctx, "tcp", addr)
			<-dialSem
			if err != nil {
				errs.add(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(deadline)
			if _, err := c.Write(head); err != nil {
				errs.add(err)
				return
			}
			for sent := 0; sent < uploadSize; {
				n := min(uploadChunk, uploadSize-sent)
				if _, err := c.Write(chunk[:n]); err != nil {
					errs.add(err)
					return
				}
				sent += n
				if sent < uploadSize {
					select {
					case <-ctx.Done():
						errs.add(ctx.Err())
						return
					case <-time.After(uploadEvery):
					}
				} else {
					// Every body is almost complete: the moment of the most
					// buffered data.
					heapOnce.Do(heap)
				}
			}
			status, err := readResponse(bufio.NewReader(c))
			if err == nil && status != 200 {
				err = fmt.Errorf("status %d", status)
			}
			if err != nil {
				errs.add(err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	mr.PeakKiB = smp.Stop()
	mr.Completed = int(ok.Load())
	mr.Errors = errs.n
	mr.ErrorsText = errs.text()
	mr.Seconds = time.Since(start).Seconds()
	return mr, nil
}

// Slow readers: each reads 16 KiB every 100 ms through a small receive
// buffer, so the 32 MiB answer cannot be pushed into the kernel at once.
const (
	readChunk  = 16 << 10
	readEvery  = 100 * time.Millisecond
	readRcvBuf = 16 << 10
)

// slowReaders reports the proxy's peak RSS while clients read /32m slowly for
// hold. A response-buffering proxy reads the whole answer from the app at
// once and must keep it somewhere: memory or temp files.
func slowReaders(ctx context.Context, addr string, pgid, clients int, hold time.Duration, heap func()) (*memResult, error) {
	start := time.Now()
	mr := &memResult{Clients: clients}
	mr.BaselineKiB = groupRSS(pgid)
	smp := startSampler(pgid, 100*time.Millisecond)
	deadline := start.Add(hold)
	d := net.Dialer{
		Timeout:  5 * time.Second,
		Deadline: deadline,
		Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readRcvBuf)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	req := []byte("GET /32m HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	var total, streaming atomic.Int64
	var errs errCount
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				errs.add(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(deadline)
			if _, err := c.Write(req); err != nil {
				errs.add(err)
				return
			}
			buf := make([]byte, readChunk)
			var got int64
			first := true
			for {
				n, err := c.Read(buf)
				if first && n > 0 {
					first = false
					if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
						errs.add(fmt.Errorf("answer %q", bytes.SplitN(buf[:min(n, 40)], []byte("\r\n"), 2)[0]))
						return
					}
				}
				got += int64(n)
				if err != nil {
					total.Add(got)
					var ne net.Error
					switch {
					case errors.As(err, &ne) && ne.Timeout():
						streaming.Add(1) // still receiving when time was up
					case err == io.EOF && got >= 32<<20:
						streaming.Add(1) // finished early
					default:
						errs.add(err)
					}
					return
				}
				select {
				case <-ctx.Done():
					total.Add(got)
					errs.add(ctx.Err())
					return
				case <-time.After(readEvery):
				}
			}
		}()
	}
	// The proxies have pulled (and buffered) the answers from the app long
	// before time is up; a heap profile halfway through sees that.
	heapDone := make(chan struct{})
	go func() {
		defer close(heapDone)
		select {
		case <-time.After(hold / 2):
			heap()
		case <-ctx.Done():
		}
	}()
	wg.Wait()
	<-heapDone
	mr.PeakKiB = smp.Stop()
	mr.Completed = int(streaming.Load())
	mr.BytesRead = total.Load()
	mr.Errors = errs.n
	mr.ErrorsText = errs.text()
	mr.Seconds = time.Since(start).Seconds()
	return mr, nil
}
