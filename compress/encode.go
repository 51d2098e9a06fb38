package compress

import (
	"errors"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	brrr "github.com/molecule-man/go-brrr"
)

// encoders are one state's gzip and brotli writers, made on first use and
// then reset for every response: their tables (hundreds of KiB for brotli)
// are what pooling saves. zstd needs none here: the Compressor's encoder
// pools its own state.
type encoders struct {
	out  sliceWriter    // where whole bodies are compressed to
	dst  countingWriter // where spooled bodies are compressed to
	gzip *gzip.Writer
	br   *brrr.Writer
	zstd *zstd.Encoder // spooled bodies only; whole ones use the Compressor's
}

// sliceWriter appends to a byte slice; the encoders write into it.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// encode appends src compressed with coding to dst. Writing to memory
// cannot fail, so neither can encoding.
func (c *Compressor) encode(st *state, coding Coding, dst, src []byte) []byte {
	e := &st.enc
	e.out.b = dst
	switch coding {
	case Gzip:
		c.resetGzip(e, &e.out)
		e.gzip.Write(src) //nolint:errcheck // writes to memory
		e.gzip.Close()    //nolint:errcheck
	case Brotli:
		c.resetBrotli(e, &e.out, len(src))
		e.br.Write(src) //nolint:errcheck // writes to memory
		e.br.Close()    //nolint:errcheck
	case Zstd:
		e.out.b = c.zstd.EncodeAll(src, e.out.b)
	}
	out := e.out.b
	e.out.b = nil
	return out
}

func (c *Compressor) resetGzip(e *encoders, w io.Writer) {
	if e.gzip == nil {
		// The level was checked in New.
		e.gzip, _ = gzip.NewWriterLevel(w, c.levels.Gzip)
	} else {
		e.gzip.Reset(w)
	}
}

// brotliWindow bounds brotli's window to 1 MiB (2^20): for a large spooled
// body the window is most of the encoder's memory; for one in memory, the
// size hint makes it smaller still.
const brotliWindow = 20

func (c *Compressor) resetBrotli(e *encoders, w io.Writer, size int) {
	if e.br == nil {
		// The level is one of LevelsFor's, all valid.
		e.br, _ = brrr.NewWriterOptions(w, c.levels.Brotli, brrr.WriterOptions{LGWin: brotliWindow, SizeHint: uint(size)})
	} else {
		// The size hint lets brotli pick tables for the real size.
		e.br.ResetWithSizeHint(w, uint(size))
	}
}

// zstdStreamWindow bounds the streaming zstd encoder's window (most of its
// memory) to 1 MiB, as brotliWindow does.
const zstdStreamWindow = 1 << 20

func (c *Compressor) resetZstd(e *encoders, w io.Writer, size int64) {
	if e.zstd == nil {
		// One goroutine: the handler's.
		e.zstd, _ = zstd.NewWriter(w,
			zstd.WithEncoderLevel(c.levels.Zstd),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdStreamWindow),
			zstd.WithLowerEncoderMem(true))
	}
	e.zstd.ResetContentSize(w, size)
}

// streamBlock is how much of a spooled body is read and compressed at a
// time: the size of the proxy's own copy buffers.
const streamBlock = 32 << 10

// encodeStream compresses size bytes from src into dst a block at a time
// and returns how many compressed bytes it wrote, or the first error
// (dst's: a full BUFFER_DIR; src's: a read error).
func (c *Compressor) encodeStream(st *state, coding Coding, dst io.Writer, src io.Reader, size int64) (int64, error) {
	e := &st.enc
	e.dst = countingWriter{w: dst}
	var w io.WriteCloser
	switch coding {
	case Gzip:
		c.resetGzip(e, &e.dst)
		w = e.gzip
	case Brotli:
		c.resetBrotli(e, &e.dst, int(min(size, 1<<30)))
		w = e.br
	case Zstd:
		c.resetZstd(e, &e.dst, size)
		w = e.zstd
	}
	if cap(st.block) < streamBlock {
		st.block = make([]byte, streamBlock)
	}
	block := st.block[:streamBlock]
	var err error
	for err == nil {
		var n int
		n, err = src.Read(block)
		if n > 0 {
			if _, werr := w.Write(block[:n]); werr != nil {
				err = werr
			}
		}
	}
	if errors.Is(err, io.EOF) {
		err = w.Close()
	}
	written := e.dst.n
	e.dst = countingWriter{}
	return written, err
}

// countingWriter passes writes on and counts the bytes.
type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}
