package logsink

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// output is where the writer goroutine puts batches. Only that goroutine
// calls write, close and the finish function returned by prepareReopen.
type output interface {
	// write writes batch, a run of complete lines, and returns how many of
	// them did not make it, with the error that lost them.
	write(batch []byte) (lost int, err error)
	// prepareReopen runs on Reopen's caller, so a failure to open the new
	// file is returned to it; finish(true) then runs on the writer between
	// two batches, finish(false) undoes the preparation. A nil finish means
	// there is nothing to reopen.
	prepareReopen() (finish func(commit bool), err error)
	close() error
}

var newline = []byte{'\n'}

// streamOut writes batches as they are: stdout, or any io.Writer.
type streamOut struct {
	w io.Writer
	// partial is set when a failed write left half a line behind, so the next
	// write starts a new line instead of gluing a good line onto it.
	partial bool
}

func (o *streamOut) write(batch []byte) (int, error) {
	if o.partial {
		if _, err := o.w.Write(newline); err != nil {
			return bytes.Count(batch, newline), err
		}
		o.partial = false
	}
	n, err := o.w.Write(batch)
	if err == nil && n < len(batch) {
		err = io.ErrShortWrite
	}
	if err != nil {
		o.partial = n > 0 && batch[n-1] != '\n'
		return bytes.Count(batch[n:], newline), err
	}
	return 0, nil
}

func (o *streamOut) prepareReopen() (func(bool), error) { return nil, nil }
func (o *streamOut) close() error                       { return nil }

// fileOut is a streamOut on a file it owns and can reopen.
type fileOut struct {
	streamOut
	f    *os.File
	path string
}

// openFile appends, as logrotate's copytruncate and several writers sharing a
// file need; 0640 keeps client addresses and URIs from other users.
func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

func (o *fileOut) prepareReopen() (func(bool), error) {
	f, err := openFile(o.path)
	if err != nil {
		return nil, err
	}
	return func(commit bool) {
		if !commit {
			f.Close()
			return
		}
		old := o.f
		o.f, o.w, o.partial = f, f, false
		old.Close()
	}, nil
}

func (o *fileOut) close() error { return o.f.Close() }

const (
	// syslogRedial bounds how often an unreachable server is dialled (a DNS
	// lookup each time for UDP).
	syslogRedial = time.Second
	// syslogWriteTimeout bounds a batch's wait on a receiver that stopped
	// draining its socket (a hung local syslog daemon).
	syslogWriteTimeout = time.Second
	syslogDialTimeout  = 2 * time.Second
)

// syslogOut sends each line as one datagram framed as nginx does (RFC 3164):
// "<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG", without HOSTNAME for nohostname.
type syslogOut struct {
	t        syslogTarget
	hostname string

	conn     net.Conn
	lastDial time.Time
	dialErr  error

	msg    []byte // header, then one line at a time
	hdrLen int
	hdrSec int64 // the second the header's timestamp shows
}

func newSyslogOut(t syslogTarget) *syslogOut {
	// nginx logs the lower-cased gethostname().
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &syslogOut{t: t, hostname: strings.ToLower(host), hdrSec: -1}
}

func (o *syslogOut) dial(now time.Time) error {
	o.lastDial = now
	c, err := net.DialTimeout(o.t.network, o.t.addr, syslogDialTimeout)
	if err != nil {
		o.dialErr = err
		return err
	}
	o.conn, o.dialErr = c, nil
	return nil
}

func (o *syslogOut) write(batch []byte) (lost int, err error) {
	now := time.Now()
	if o.conn == nil && (now.Sub(o.lastDial) < syslogRedial || o.dial(now) != nil) {
		return bytes.Count(batch, newline), o.dialErr
	}
	o.conn.SetWriteDeadline(now.Add(syslogWriteTimeout))
	o.header(now)
	for len(batch) > 0 {
		i := bytes.IndexByte(batch, '\n')
		o.msg = append(o.msg[:o.hdrLen], batch[:i]...)
		batch = batch[i+1:]
		_, werr := o.conn.Write(o.msg)
		if werr == nil {
			continue
		}
		lost++
		err = werr
		var ne net.Error
		if errors.As(werr, &ne) && ne.Timeout() {
			// The receiver is not draining: the rest of the batch would
			// only time out one by one.
			return lost + bytes.Count(batch, newline), err
		}
		if o.keepConn(werr) {
			continue
		}
		o.conn.Close()
		o.conn = nil
		return lost + bytes.Count(batch, newline), err
	}
	return lost, err
}

// keepConn says whether a send error concerns only that datagram. Over UDP
// every error does: ECONNREFUSED reports an ICMP error for an earlier
// datagram and the socket stays usable. A unix socket whose receiver went
// away (syslog daemon restarted) must be dialled again.
func (o *syslogOut) keepConn(err error) bool {
	return o.t.network == "udp" || errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS)
}

// header rebuilds the datagram prefix when the second changes: the
// timestamp is the sending time in the local zone, like nginx's.
func (o *syslogOut) header(now time.Time) {
	if sec := now.Unix(); sec != o.hdrSec {
		b := append(o.msg[:0], '<')
		b = strconv.AppendInt(b, int64(o.t.pri()), 10)
		b = append(b, '>')
		b = now.AppendFormat(b, time.Stamp)
		b = append(b, ' ')
		if !o.t.noHostname {
			b = append(b, o.hostname...)
			b = append(b, ' ')
		}
		b = append(b, o.t.tag...)
		b = append(b, ": "...)
		o.msg, o.hdrLen, o.hdrSec = b, len(b), sec
	}
}

func (o *syslogOut) prepareReopen() (func(bool), error) {
	// Re-dial on the next batch: the server's address may have moved.
	return func(commit bool) {
		if !commit {
			return
		}
		if o.conn != nil {
			o.conn.Close()
			o.conn = nil
		}
		o.lastDial = time.Time{}
	}, nil
}

func (o *syslogOut) close() error {
	if o.conn == nil {
		return nil
	}
	return o.conn.Close()
}
