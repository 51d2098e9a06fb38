package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// rawSocket reads and writes a connection's socket with raw system calls,
// still waiting for readiness in the runtime's network poller (through
// syscall.RawConn, so deadlines and Close work as for any net.Conn). It is
// net.Conn's Read and Write minus the runtime's entersyscall and
// exitsyscall around each call, and that is the point.
//
// When every P is idle, the runtime's sysmon thread goes to sleep, and the
// next entersyscall wakes it (a futex), after which it polls every 20 µs
// until it finds the Ps idle again (go.dev/issue/18236). A proxy goes idle
// twice per request — while the app thinks, then until the client sends
// again — so through net.Conn every request paid two sysmon wake-ups and
// the timer sleeps after each: on the bench machine (2 vCPUs) about a third
// of the proxy's CPU at one connection, ~20 µs a request, and twice
// nginx's context switches. A socket here is non-blocking, so a read or
// write never sleeps in the kernel and has no use for the runtime's
// handing its P to another thread meanwhile. The calls that can block
// (files, dial, accept) still go through the runtime, and still wake
// sysmon, as do the GC and the next timer due (sysmon sleeps until then).
//
// The price: asleep, sysmon neither preempts a goroutine that computes for
// longer than 10 ms nor polls the network for a processor that is busy, so
// a long computation woken by the poller (compressing a large in-memory
// answer, an RSA-4096 handshake) can keep a processor's other goroutines
// waiting until the next timer — at most a second, fasthttp's clock ticker
// — where net.Conn would have let them run after 10 ms. With the default
// BUFFER_MEMORY (64 KiB) the proxy's own computations take about a
// millisecond. Under the race detector the calls are the runtime's after
// all (rawsock_race.go).
//
// A connection that is not an OS socket (an in-memory pipe in tests) is
// read and written as the net.Conn it is. Reads must not overlap each
// other, nor writes each other (fasthttp and the tunnel's pumps never do);
// a read may overlap a write.
type rawSocket struct {
	conn net.Conn
	rc   syscall.RawConn // nil: use conn
	// The arguments and result of the read, and of the write, in progress.
	// (A rawSocket per client connection, idle ones included: it is kept
	// small.)
	rd struct {
		p     []byte
		n     int
		errno syscall.Errno
	}
	wr struct {
		p       []byte
		bufs    [][]byte // Writev's: what is left to write
		vectors bool     // Writev, not Write
		n       int
		errno   syscall.Errno
	}
	// Bound once, so that a call allocates nothing.
	readFn, writeFn func(fd uintptr) bool
}

func (r *rawSocket) init(c net.Conn) {
	r.conn = c
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return
	}
	r.rc = rc
	r.readFn, r.writeFn = r.read, r.write
}

// Read is net.Conn's Read, with the same results and errors.
func (r *rawSocket) Read(p []byte) (int, error) {
	if r.rc == nil {
		return r.conn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.rd.p, r.rd.n, r.rd.errno = p, 0, 0
	err := r.result("read", r.rc.Read(r.readFn), r.rd.errno)
	n := r.rd.n
	r.rd.p = nil
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawSocket) read(fd uintptr) bool {
	p := r.rd.p
	for {
		n, errno := sysRead(fd, p)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the poller, then again
		case 0:
			r.rd.n = n
		default:
			r.rd.errno = errno
		}
		return true
	}
}

// Write is net.Conn's Write: all of p, waiting for room as needed.
func (r *rawSocket) Write(p []byte) (int, error) {
	if r.rc == nil {
		return r.conn.Write(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.wr.p, r.wr.n, r.wr.errno = p, 0, 0
	err := r.result("write", r.rc.Write(r.writeFn), r.wr.errno)
	r.wr.p = nil
	return r.wr.n, err
}

func (r *rawSocket) write(fd uintptr) bool {
	if r.wr.vectors {
		return r.writev(fd)
	}
	for r.wr.n < len(r.wr.p) {
		p := r.wr.p[r.wr.n:]
		n, errno := sysWrite(fd, p)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			r.wr.n += n
		default:
			r.wr.errno = errno
			return true
		}
	}
	return true
}

// Writev writes all of bufs, with writev, as net.Buffers.WriteTo does; like
// it, it consumes bufs.
func (r *rawSocket) Writev(bufs net.Buffers) (int64, error) {
	if r.rc == nil {
		return writeBuffers(r.conn, bufs)
	}
	raceReadBuffers(bufs)
	r.wr.bufs, r.wr.vectors, r.wr.n, r.wr.errno = bufs, true, 0, 0
	err := r.result("writev", r.rc.Write(r.writeFn), r.wr.errno)
	r.wr.bufs, r.wr.vectors = nil, false
	return int64(r.wr.n), err
}

// writeBuffers is Writev for a connection that is not an OS socket. A
// function of its own: WriteTo moves its slice to the heap, and in Writev
// it would do so at every call.
func writeBuffers(c net.Conn, bufs net.Buffers) (int64, error) {
	return bufs.WriteTo(c)
}

func (r *rawSocket) writev(fd uintptr) bool {
	for {
		var vec [2]syscall.Iovec // the request's head and body
		iov := vec[:0]
		for _, b := range r.wr.bufs {
			if len(iov) == len(vec) {
				break // the rest on the next round
			}
			if len(b) > 0 {
				iov = append(iov, syscall.Iovec{Base: &b[0]})
				iov[len(iov)-1].SetLen(len(b))
			}
		}
		if len(iov) == 0 {
			return true
		}
		n, errno := sysWritev(fd, iov)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			r.wr.n += n
			r.consume(n)
		default:
			r.wr.errno = errno
			return true
		}
	}
}

// consume drops the first n written bytes from the buffers left to write.
func (r *rawSocket) consume(n int) {
	bufs := r.wr.bufs
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 {
		bufs[0] = bufs[0][n:]
	}
	r.wr.bufs = bufs
}

// result is the error of a read or write: the poller's (a deadline, a
// closed connection), else the system call's, else none.
func (r *rawSocket) result(op string, pollErr error, errno syscall.Errno) error {
	switch {
	case pollErr != nil:
		return r.pollError(op, pollErr)
	case errno != 0:
		return r.opError(op, os.NewSyscallError(op, errno))
	}
	return nil
}

// opError wraps err as net.Conn's Read and Write do, so that callers (and
// the error log) see the same errors as before.
func (r *rawSocket) opError(op string, err error) error {
	network := "tcp"
	if _, ok := r.conn.(*net.UnixConn); ok {
		network = "unix"
	}
	return &net.OpError{Op: op, Net: network, Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(), Err: err}
}

// pollError turns the poller's error (a deadline, a closed connection),
// which RawConn reports as a "raw-read" or "raw-write", into net.Conn's.
func (r *rawSocket) pollError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return r.opError(op, err)
}
