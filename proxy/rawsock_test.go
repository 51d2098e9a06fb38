package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// socketPair returns both ends of a TCP (or unix) connection on this host:
// ours, read and written through a rawSocket, and the peer's.
func socketPair(t *testing.T, network string) (*rawSocket, net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	var r rawSocket
	r.init(c)
	if r.rc == nil {
		t.Fatalf("%s connection not read raw", network)
	}
	return &r, peer
}

func TestRawSocketReadWrite(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			r, peer := socketPair(t, network)
			if n, err := r.Write([]byte("ping")); n != 4 || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(peer, got); err != nil || string(got) != "ping" {
				t.Fatalf("peer read %q, %v", got, err)
			}
			// The read waits in the poller until the peer writes.
			go func() {
				time.Sleep(50 * time.Millisecond)
				peer.Write([]byte("pong"))
				peer.Close()
			}()
			buf := make([]byte, 16)
			if n, err := r.Read(buf); string(buf[:n]) != "pong" || err != nil {
				t.Fatalf("Read: %q, %v", buf[:n], err)
			}
			if n, err := r.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("Read after the peer closed: %d, %v; want 0, io.EOF", n, err)
			}
		})
	}
}

// A write bigger than the socket buffers goes out in several calls, with
// waits for room in between, and arrives whole and in order.
func TestRawSocketWritevPartial(t *testing.T) {
	r, peer := socketPair(t, "tcp")
	r.conn.(*net.TCPConn).SetWriteBuffer(4096)
	head := bytes.Repeat([]byte("h"), 1000)
	body := make([]byte, 4<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(iotestSlowReader{peer})
		got <- b
	}()
	n, err := r.Writev(net.Buffers{head, body})
	if err != nil || n != int64(len(head)+len(body)) {
		t.Fatalf("Writev: %d, %v", n, err)
	}
	r.conn.Close()
	if b := <-got; !bytes.Equal(b, append(head, body...)) {
		t.Fatalf("the peer got %d bytes, not what was written", len(b))
	}
}

// iotestSlowReader reads in small pieces, so the writer finds its socket
// full now and then.
type iotestSlowReader struct{ r io.Reader }

func (s iotestSlowReader) Read(p []byte) (int, error) {
	return s.r.Read(p[:min(len(p), 3000)])
}

// The errors are net.Conn's: callers classify them (timeout, reset,
// closed) and the error log shows them.
func TestRawSocketErrors(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		r, _ := socketPair(t, "tcp")
		r.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := r.Read(make([]byte, 8))
		var oe *net.OpError
		if !isTimeout(err) || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" || oe.Net != "tcp" {
			t.Fatalf("Read past the deadline: %#v", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		r, peer := socketPair(t, "tcp")
		peer.(*net.TCPConn).SetLinger(0)
		peer.Close()
		_, err := r.Read(make([]byte, 8))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Read from a reset connection: %v", err)
		}
		if want := "read tcp " + r.conn.LocalAddr().String() + "->" + r.conn.RemoteAddr().String() + ": read: connection reset by peer"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
	t.Run("closed", func(t *testing.T) {
		r, _ := socketPair(t, "tcp")
		r.conn.Close()
		if _, err := r.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v", err)
		}
		if _, err := r.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
		if _, err := r.Writev(net.Buffers{[]byte("x")}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Writev after Close: %v", err)
		}
	})
	// Shutdown closes connections, and moves deadlines, under a read that
	// is waiting in the poller.
	t.Run("closed while waiting", func(t *testing.T) {
		r, _ := socketPair(t, "tcp")
		time.AfterFunc(50*time.Millisecond, func() { r.conn.Close() })
		if _, err := r.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read interrupted by Close: %v", err)
		}
	})
	t.Run("deadline moved while waiting", func(t *testing.T) {
		r, _ := socketPair(t, "tcp")
		time.AfterFunc(50*time.Millisecond, func() { r.conn.SetReadDeadline(time.Now()) })
		if _, err := r.Read(make([]byte, 8)); !isTimeout(err) {
			t.Errorf("Read interrupted by a deadline: %v", err)
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		r, peer := socketPair(t, "tcp")
		peer.(*net.TCPConn).SetLinger(0)
		peer.Close()
		time.Sleep(20 * time.Millisecond)
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			_, err = r.Writev(net.Buffers{[]byte("x")})
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("Writev to a reset connection: %v", err)
		}
	})
}

// Not an OS socket (the tests' in-memory connections): net.Conn it is.
func TestRawSocketFallback(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var r rawSocket
	r.init(a)
	if r.rc != nil {
		t.Fatal("a pipe read raw")
	}
	go b.Write([]byte("hi"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(&r, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("Read: %q, %v", buf, err)
	}
}

// A request costs no allocation here (BenchmarkForward* counts the rest).
func TestRawSocketAllocs(t *testing.T) {
	r, peer := socketPair(t, "tcp")
	head, body, buf := []byte("head"), []byte("body"), make([]byte, 64)
	var iov [2][]byte // as the exchange's, reused
	allocs := testing.AllocsPerRun(100, func() {
		r.Writev(append(iov[:0], head, body))
		r.Write(head)
		io.ReadFull(peer, buf[:12])
		peer.Write(buf[:12])
		io.ReadFull(r, buf[:12])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round trip, want 0", allocs)
	}
}

// Under -race, what one goroutine did before writing to a socket is seen
// by the goroutine that reads the bytes on the other end, as through
// net.Conn: tests hand state over that way (set up, then send a request).
func TestRawSocketOrdersMemoryForTheRaceDetector(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			r, peer := socketPair(t, network)
			var prepared int
			go func() {
				prepared = 42
				peer.Write([]byte("x"))
			}()
			buf := make([]byte, 1)
			if _, err := r.Read(buf); err != nil {
				t.Fatal(err)
			}
			if prepared != 42 {
				t.Fatal("the read returned before the write")
			}
			// And the other way: a write through the raw socket, a plain
			// read at the peer.
			var answered int
			done := make(chan struct{})
			go func() {
				defer close(done)
				peer.Read(buf)
				if answered != 7 {
					t.Error("the peer read before the write")
				}
			}()
			answered = 7
			if _, err := r.Writev(net.Buffers{[]byte("y")}); err != nil {
				t.Fatal(err)
			}
			<-done
		})
	}
}
