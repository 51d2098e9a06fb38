package logsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

// ErrClosed is returned by Reopen after Close.
var ErrClosed = errors.New("access log closed")

// Options tune a Sink. The zero value is what production should use.
type Options struct {
	// Report receives one line whenever log lines were dropped (at most one
	// a second), and a total at Close. nil means os.Stderr.
	Report io.Writer
	// QueueBytes bounds the formatted lines waiting for the writer; a line
	// that does not fit is dropped. 0 means DefaultQueueBytes.
	QueueBytes int
	// FlushInterval is how long the first line of a batch waits for others
	// before the batch is written. 0 means DefaultFlushInterval.
	FlushInterval time.Duration
}

const (
	// DefaultQueueBytes holds about 20,000 typical lines: a disk stall of a
	// few hundred milliseconds at tens of thousands of requests a second, or
	// seconds at ordinary rates. It is a byte budget, not a line count, so
	// that memory stays bounded however long the URIs are.
	DefaultQueueBytes = 4 << 20
	// DefaultFlushInterval keeps an idle proxy's lines visible within a
	// tenth of a second while costing at most ten writes a second.
	DefaultFlushInterval = 100 * time.Millisecond

	// flushBytes is the batch size that is written without waiting for
	// FlushInterval: large enough to make a write worth its syscall, small
	// enough that a busy writer keeps the queue far below its limit.
	flushBytes = 64 << 10
	// reportEvery rate-limits the dropped-lines report.
	reportEvery = time.Second
	// reportGrace is how long Shutdown, once it has given up on the
	// writer, still waits for the final report to be written.
	reportGrace = time.Second
)

// linePool is separate from bytebufferpool's default pool so that its size
// calibration reflects log lines only.
var linePool bytebufferpool.Pool

// Sink is an asynchronous access-log writer; it implements proxy.AccessLogger.
// Its methods are safe for concurrent use.
type Sink struct {
	name     string // the LOG value, for reports
	out      output
	report   io.Writer
	interval time.Duration
	max      int // QueueBytes
	flushAt  int // pending size that wakes the writer at once

	mu      sync.Mutex
	pending []byte // complete lines, waiting for the writer
	closed  bool

	spare []byte // the writer's other buffer; only the writer touches it

	kick    chan struct{} // pending became non-empty
	full    chan struct{} // pending reached flushAt
	reopenc chan reopenRequest
	quit    chan struct{} // closed by Close
	done    chan struct{} // closed when the writer has exited

	queueDrops atomic.Uint64 // no room in the queue
	writeDrops atomic.Uint64 // the target failed to take them
	errMu      sync.Mutex
	lastErr    error // latest write error, for the reports

	dropKick     chan struct{}
	reporterDone chan struct{}
	gaveUp       chan struct{} // closed when Shutdown stops waiting for the writer

	quitOnce   sync.Once
	gaveUpOnce sync.Once
	closeErr   error // from output.close, set by the writer before done
}

type reopenRequest struct {
	finish func(commit bool)
	done   chan struct{}
}

var _ proxy.AccessLogger = (*Sink)(nil)

// Open parses a LOG value and starts a Sink writing there:
//
//	stdout
//	/var/log/gunicorn-proxy/access.log   (created 0640 if missing, appended to)
//	syslog:server=ADDRESS[,facility=F][,severity=S][,tag=T][,nohostname]
//
// An empty value is an error: "no access log" is the caller's decision.
// A syslog server that cannot be reached is not an error: lines are dropped
// and reported until it can.
func Open(value string, opts Options) (*Sink, error) {
	t, err := parseTarget(value)
	if err != nil {
		return nil, err
	}
	report := opts.Report
	if report == nil {
		report = os.Stderr
	}
	var out output
	switch t.kind {
	case toStdout:
		out = &streamOut{w: os.Stdout}
	case toFile:
		f, err := openFile(t.path)
		if err != nil {
			return nil, err
		}
		out = &fileOut{streamOut: streamOut{w: f}, f: f, path: t.path}
	case toSyslog:
		so := newSyslogOut(t.sys)
		if err := so.dial(time.Now()); err != nil {
			fmt.Fprintf(report, "access log %q: %v (retrying; lines are dropped until it works)\n", value, err)
		}
		out = so
	}
	return start(value, out, opts), nil
}

// New starts a Sink writing to w, which it never closes. Reopen does nothing.
func New(w io.Writer, opts Options) *Sink {
	return start(fmt.Sprintf("%T", w), &streamOut{w: w}, opts)
}

func start(name string, out output, opts Options) *Sink {
	s := &Sink{
		name:         name,
		out:          out,
		report:       opts.Report,
		interval:     opts.FlushInterval,
		max:          opts.QueueBytes,
		kick:         make(chan struct{}, 1),
		full:         make(chan struct{}, 1),
		reopenc:      make(chan reopenRequest),
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
		dropKick:     make(chan struct{}, 1),
		reporterDone: make(chan struct{}),
		gaveUp:       make(chan struct{}),
	}
	if s.report == nil {
		s.report = os.Stderr
	}
	if s.interval <= 0 {
		s.interval = DefaultFlushInterval
	}
	if s.max <= 0 {
		s.max = DefaultQueueBytes
	}
	s.flushAt = min(flushBytes, s.max/2)
	// Room for a batch and the lines that arrive while it is handed over, so
	// that neither buffer grows in steady state.
	size := min(2*s.flushAt, s.max)
	s.pending = make([]byte, 0, size)
	s.spare = make([]byte, 0, size)
	go s.writeLoop()
	go s.reportLoop()
	return s
}

// longFields is the size of client-supplied text (address, method, URI)
// above which a line is formatted straight into the queue under its lock
// instead of in a pooled buffer: bytebufferpool drops buffers larger than
// most lines need, so the rare long URI would allocate on every request.
const longFields = 1 << 10

// Log formats rec and queues the line. It never blocks on I/O: when the
// queue is full the line is dropped and counted. It does not retain rec.
func (s *Sink) Log(rec *proxy.AccessRecord) {
	if len(rec.ClientIP)+len(rec.Method)+len(rec.URI) > longFields {
		s.logInPlace(rec)
		return
	}
	bb := linePool.Get()
	bb.B = AppendLine(bb.B[:0], rec)
	s.enqueue(bb.B)
	linePool.Put(bb)
}

// enqueue copies line into the pending batch. Formatting happens before, in
// a pooled buffer, so the critical section is one bounded memmove.
func (s *Sink) enqueue(line []byte) {
	s.mu.Lock()
	if s.closed || len(s.pending)+len(line) > s.max {
		s.mu.Unlock()
		s.dropQueued()
		return
	}
	before := len(s.pending)
	s.pending = append(s.pending, line...)
	after := len(s.pending)
	s.mu.Unlock()
	s.wake(before, after)
}

// logInPlace formats a long line directly at the end of the pending batch,
// which is reused and so stops growing once it has held a full queue.
func (s *Sink) logInPlace(rec *proxy.AccessRecord) {
	s.mu.Lock()
	before := len(s.pending)
	if s.closed || before >= s.max {
		s.mu.Unlock()
		s.dropQueued()
		return
	}
	s.pending = AppendLine(s.pending, rec)
	after := len(s.pending)
	if after > s.max {
		s.pending = s.pending[:before]
		s.mu.Unlock()
		s.dropQueued()
		return
	}
	s.mu.Unlock()
	s.wake(before, after)
}

func (s *Sink) dropQueued() {
	s.queueDrops.Add(1)
	signal(s.dropKick)
}

// wake tells the writer about lines that took pending from before to after
// bytes: the first line of a batch starts its FlushInterval, crossing
// flushAt asks for an immediate write.
func (s *Sink) wake(before, after int) {
	if before == 0 {
		signal(s.kick)
	} else if before < s.flushAt && after >= s.flushAt {
		signal(s.full)
	}
}

// signal wakes a goroutine without ever waiting for it: a token already
// in the channel means the wake-up is already due.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Dropped is the number of lines lost so far: refused because the queue was
// full, or not accepted by the target (write error, unreachable syslog server).
func (s *Sink) Dropped() uint64 {
	return s.queueDrops.Load() + s.writeDrops.Load()
}

// Reopen makes a file target open its path again, so that after logrotate
// has renamed the file, new lines go to a new file (nginx's SIGUSR1). Lines
// queued before the call go to the old file; no line is split between the
// two. If the path cannot be opened, the old file is kept and the error
// returned. For syslog it re-dials the server; for stdout it does nothing.
// It returns once the writer has switched, after the batch it is writing.
func (s *Sink) Reopen() error {
	select {
	case <-s.quit:
		return ErrClosed // and do not create a file nobody will write
	default:
	}
	finish, err := s.out.prepareReopen()
	if err != nil || finish == nil {
		return err
	}
	req := reopenRequest{finish: finish, done: make(chan struct{})}
	select {
	case s.reopenc <- req:
		<-req.done
		return nil
	case <-s.quit:
		finish(false)
		return ErrClosed
	}
}

// Close writes every line queued so far, closes the target (not stdout) and
// reports the total dropped, if any. Lines logged after Close are dropped.
// It waits as long as the target takes; see Shutdown for a bounded wait.
func (s *Sink) Close() error {
	return s.Shutdown(context.Background())
}

// Shutdown is Close with a deadline: if ctx ends before the queue is
// written (a pipe nobody reads, a hung disk), the lines still queued are
// counted as dropped and Shutdown returns ctx's error, leaving the writer to
// finish or die with the process.
func (s *Sink) Shutdown(ctx context.Context) error {
	s.quitOnce.Do(func() { close(s.quit) })
	select {
	case <-s.done:
	case <-ctx.Done():
		select {
		case <-s.done: // finished just in time
		default:
			return s.abandon(ctx.Err())
		}
	}
	select {
	case <-s.reporterDone:
	case <-ctx.Done():
	}
	return s.closeErr
}

// abandon counts what is still queued as lost and stops waiting for a
// writer that may never return.
func (s *Sink) abandon(cause error) error {
	s.mu.Lock()
	n := bytes.Count(s.pending, newline)
	s.pending = s.pending[:0]
	s.closed = true
	s.mu.Unlock()
	s.lose(n, cause)
	s.gaveUpOnce.Do(func() { close(s.gaveUp) })
	// stderr may be the same stuck pipe as the log: the final report gets
	// a moment, not a promise.
	select {
	case <-s.reporterDone:
	case <-time.After(reportGrace):
	}
	return fmt.Errorf("access log %q: gave up flushing, %d queued lines lost: %w", s.name, n, cause)
}

// writeLoop is the only goroutine that touches the target, which is what
// lets Reopen swap files at a batch boundary without locking around I/O.
func (s *Sink) writeLoop() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		select {
		case <-s.kick:
			// Let the first line of a batch wait for company rather than
			// paying a write per request at moderate rates.
			if !armed {
				timer.Reset(s.interval)
				armed = true
			}
		case <-timer.C:
			armed = false
			s.flush()
		case <-s.full:
			s.flush()
		case req := <-s.reopenc:
			s.flush()
			req.finish(true)
			close(req.done)
		case <-s.quit:
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			s.flush()
			s.closeErr = s.out.close()
			return
		}
	}
}

// flush swaps the pending batch with the spare buffer, so Log callers never
// wait for the write, and writes the batch in one go.
func (s *Sink) flush() {
	s.mu.Lock()
	batch := s.pending
	s.pending = s.spare[:0]
	s.mu.Unlock()
	if len(batch) > 0 {
		if lost, err := s.out.write(batch); lost > 0 {
			s.lose(lost, err)
		}
	}
	s.spare = batch
}

func (s *Sink) lose(n int, err error) {
	if n == 0 {
		return
	}
	s.writeDrops.Add(uint64(n))
	if err != nil {
		s.errMu.Lock()
		s.lastErr = err
		s.errMu.Unlock()
	}
	signal(s.dropKick)
}

func (s *Sink) latestErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.lastErr
}

// reportLoop runs apart from the writer so that drops are reported even
// while the writer is stuck in a write that never returns. It also writes
// the final report, so that a stuck stderr cannot hold up Shutdown.
func (s *Sink) reportLoop() {
	defer close(s.reporterDone)
	defer func() {
		select {
		case <-s.done:
		case <-s.gaveUp:
		}
		s.finalReport()
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var lastQueue, lastWrite uint64
	var lastAt time.Time
	for {
		select {
		case <-s.dropKick:
		case <-s.quit:
			return
		}
		if wait := time.Until(lastAt.Add(reportEvery)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-s.quit:
				return // the final report covers these
			}
		}
		q, w := s.queueDrops.Load(), s.writeDrops.Load()
		if q == lastQueue && w == lastWrite {
			continue
		}
		fmt.Fprintf(s.report, "access log %q: dropped %s; %d dropped in total\n",
			s.name, s.causes(q-lastQueue, w-lastWrite), q+w)
		lastQueue, lastWrite, lastAt = q, w, time.Now()
	}
}

func (s *Sink) finalReport() {
	q, w := s.queueDrops.Load(), s.writeDrops.Load()
	if q+w == 0 {
		return
	}
	fmt.Fprintf(s.report, "access log %q: closed; dropped %s in total\n", s.name, s.causes(q, w))
}

func (s *Sink) causes(queue, write uint64) string {
	var parts []string
	if queue > 0 {
		parts = append(parts, lines(queue)+" (queue full: the target is slower than the traffic)")
	}
	if write > 0 {
		why := "not written"
		if err := s.latestErr(); err != nil {
			why += ": " + err.Error()
		}
		parts = append(parts, lines(write)+" ("+why+")")
	}
	return strings.Join(parts, " and ")
}

func lines(n uint64) string {
	if n == 1 {
		return "1 line"
	}
	return strconv.FormatUint(n, 10) + " lines"
}
