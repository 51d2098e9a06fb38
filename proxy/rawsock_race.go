//go:build race

package proxy

import (
	"runtime"
	"unsafe"
)

// The race detector cannot see what a raw system call reads or writes in
// memory; these tell it, as syscall.Read and syscall.Write do for theirs.

func raceWritten(p []byte) {
	if len(p) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), len(p))
	}
}

func raceRead(p []byte) {
	if len(p) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
	}
}
