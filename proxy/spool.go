package proxy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// spool holds one whole body, a request's or a response's: in memory up to
// BUFFER_MEMORY bytes, then in a temporary file in BUFFER_DIR, as nginx
// does with client_body_buffer_size and proxy_max_temp_file_size. Buffering
// every body in RAM would cost 1000 slow uploaders × MAX_BODY_SIZE; spooled,
// they cost a file descriptor each.
//
// The file has no name from the moment it exists (O_TMPFILE, or create then
// unlink where the filesystem lacks it), so nothing is left on disk by a
// crash, a kill -9 or a forgotten cleanup: the space is freed when the
// descriptor closes.
type spool struct {
	mem  []byte
	file *os.File
	size int64
}

// spoolConfig says where and from which size bodies go to disk, and what
// they are copied through on the way.
type spoolConfig struct {
	dir    string
	memory int // BUFFER_MEMORY
	// copyBuffers: clientCopyBufferPool for request bodies, copyBufferPool
	// for answers.
	copyBuffers *sync.Pool
}

// readFrom appends everything r yields to the spool, calling before() ahead
// of each read (to set a deadline), and stops with errBodyTooLarge past
// limit bytes (0: no limit). declared is the body's announced length, -1
// when unknown. It returns r's error, io.EOF excluded.
func (s *spool) readFrom(r io.Reader, cfg *spoolConfig, declared, limit int64, before func()) error {
	if declared > int64(cfg.memory) && s.file == nil {
		// Known to be too big for memory: straight to disk, without first
		// filling (and pinning) BUFFER_MEMORY of it.
		if err := s.spill(cfg.dir); err != nil {
			return err
		}
	}
	for {
		// Read into memory while there is room under BUFFER_MEMORY, then
		// through a pooled buffer into the file: a body that ends exactly
		// at the limit never touches the disk.
		inMemory := s.file == nil && s.grow(cfg.memory)
		var buf []byte
		var scratch *[]byte
		if inMemory {
			buf = s.mem[len(s.mem):cap(s.mem)]
		} else {
			// Taken for one read only, and back in the pool before the
			// next, so that a body fully read holds none. (A read that
			// waits for a slow client holds it while it waits.)
			scratch = cfg.copyBuffers.Get().(*[]byte)
			buf = *scratch
		}
		if before != nil {
			before()
		}
		n, err := r.Read(buf)
		if n > 0 {
			var serr error
			switch {
			case inMemory:
				s.mem = s.mem[:len(s.mem)+n]
				s.size += int64(n)
			case s.file == nil:
				if serr = s.spill(cfg.dir); serr == nil {
					serr = s.write(buf[:n])
				}
			default:
				serr = s.write(buf[:n])
			}
			if serr != nil {
				if scratch != nil {
					cfg.copyBuffers.Put(scratch)
				}
				return serr
			}
		}
		if scratch != nil {
			cfg.copyBuffers.Put(scratch)
		}
		if limit > 0 && s.size > limit {
			return errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// grow makes room in memory for the next read, never past max bytes in
// all; it reports false when memory is full.
func (s *spool) grow(max int) bool {
	if len(s.mem) < cap(s.mem) {
		return true
	}
	if len(s.mem) >= max {
		return false
	}
	s.mem = append(s.mem, 0)[:len(s.mem)]
	if cap(s.mem) > max {
		s.mem = s.mem[:len(s.mem):max]
	}
	return true
}

// append adds p to the spool: in memory up to BUFFER_MEMORY, then in a
// file, as readFrom does.
func (s *spool) append(p []byte, cfg *spoolConfig) error {
	if s.file == nil {
		if len(s.mem)+len(p) <= cfg.memory {
			s.mem = append(s.mem, p...)
			s.size += int64(len(p))
			return nil
		}
		if err := s.spill(cfg.dir); err != nil {
			return err
		}
	}
	return s.write(p)
}

// spoolWriter is a spool as an io.Writer: what a ResponseFilter writes its
// new body to.
type spoolWriter struct {
	s   *spool
	cfg *spoolConfig
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if err := w.s.append(p, w.cfg); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *spool) write(p []byte) error {
	n, err := s.file.Write(p)
	s.size += int64(n)
	if err != nil {
		return &spoolError{err: err}
	}
	return nil
}

// spill moves what is in memory to a new temporary file.
func (s *spool) spill(dir string) error {
	f, err := openTempFile(dir)
	if err != nil {
		return &spoolError{err: err}
	}
	s.file = f
	s.size = 0
	err = s.write(s.mem)
	// The memory goes back to the garbage collector, not to the next
	// request: a thousand slow uploads must not pin BUFFER_MEMORY each
	// while their files fill.
	s.mem = nil
	return err
}

// spoolError is a failure of BUFFER_DIR (full, read-only, gone): the
// proxy's fault, not the client's or the app's.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return "BUFFER_DIR: " + e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// onDisk reports whether the body went to a file.
func (s *spool) onDisk() bool { return s.file != nil }

// rewind makes a spooled file readable from its first byte: once it has
// been written, and again for each attempt to send it.
func (s *spool) rewind() error {
	if s.file == nil {
		return nil
	}
	_, err := s.file.Seek(0, io.SeekStart)
	return err
}

// reset empties the spool for the next body and closes its file, which
// frees the disk space.
func (s *spool) reset() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.mem = s.mem[:0]
	s.size = 0
}

// detachFile hands the spooled file over to the caller.
func (s *spool) detachFile() (*os.File, int64) {
	f, n := s.file, s.size
	s.file, s.size = nil, 0
	return f, n
}

// copyBufferPool holds the buffers answers are copied through on their way
// to disk, and WebSocket tunnels through. 16 KiB: a write to the page cache
// that size is already cheap.
var copyBufferPool = sync.Pool{New: func() any {
	b := make([]byte, 16<<10)
	return &b
}}

// clientCopyBufferPool holds the buffers spooled request bodies are copied
// through. Smaller than the app's: a slow upload holds one through every
// read it makes the proxy wait for, so at 1000 slow uploads each KiB here
// is a MiB of RSS (bench slowupload: 74 MiB with 16 KiB, 66 with 8 KiB).
// nginx reads request bodies through 8 or 16 KiB too
// (client_body_buffer_size).
var clientCopyBufferPool = sync.Pool{New: func() any {
	b := make([]byte, 8<<10)
	return &b
}}

// openTempFile makes an anonymous file in dir: O_TMPFILE where the
// filesystem has it (tmpfs, ext4, xfs, btrfs), otherwise a named file that
// is unlinked at once.
func openTempFile(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return f, nil
	}
	f, err = os.CreateTemp(dir, ".gunicorn-proxy-body-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlinking %s: %w", f.Name(), err)
	}
	return f, nil
}

// CheckBufferDir verifies that bodies can be spooled to dir, so that a bad
// BUFFER_DIR stops the start instead of failing the first big request.
func CheckBufferDir(dir string) error {
	f, err := openTempFile(dir)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("x"))
	f.Close()
	return err
}
