//go:build race

package proxy

import (
	"runtime"
	"syscall"
	"unsafe"
)

// Under the race detector, reads and writes go through syscall.Read and
// syscall.Write. Besides the memory each call touches, those tell the
// detector that a write to a socket happens before the read that receives
// it — the order a test's goroutines rely on when one sets something up and
// then sends a request — and a raw system call cannot say that. Race builds
// are for tests, where the cost this saves does not matter.

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

func sysWritev(fd uintptr, iov []syscall.Iovec) (int, syscall.Errno) {
	// A write of nothing, for syscall.Write's happens-before edge; on a
	// stream socket it sends nothing.
	syscall.Write(int(fd), nil) //nolint:errcheck // nothing written, nothing to fail
	n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}

// raceReadBuffers tells the detector that writev reads bufs.
func raceReadBuffers(bufs [][]byte) {
	for _, p := range bufs {
		if len(p) > 0 {
			runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
		}
	}
}
