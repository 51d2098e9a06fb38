package compress

import (
	"github.com/klauspost/compress/gzip"
	brrr "github.com/molecule-man/go-brrr"
)

// encoders are one state's gzip and brotli writers, made on first use and
// then reset for every response: their tables (hundreds of KiB for brotli)
// are what pooling saves. zstd needs none here: the Compressor's encoder
// pools its own state.
type encoders struct {
	out  sliceWriter
	gzip *gzip.Writer
	br   *brrr.Writer
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
		if e.gzip == nil {
			// The level was checked in New.
			e.gzip, _ = gzip.NewWriterLevel(&e.out, c.levels.Gzip)
		} else {
			e.gzip.Reset(&e.out)
		}
		e.gzip.Write(src) //nolint:errcheck // writes to memory
		e.gzip.Close()    //nolint:errcheck
	case Brotli:
		if e.br == nil {
			// The level is one of LevelsFor's, all valid.
			e.br, _ = brrr.NewWriterOptions(&e.out, c.levels.Brotli, brrr.WriterOptions{SizeHint: uint(len(src))})
		} else {
			// The size hint lets brotli pick tables for the real size.
			e.br.ResetWithSizeHint(&e.out, uint(len(src)))
		}
		e.br.Write(src) //nolint:errcheck // writes to memory
		e.br.Close()    //nolint:errcheck
	case Zstd:
		e.out.b = c.zstd.EncodeAll(src, e.out.b)
	}
	out := e.out.b
	e.out.b = nil
	return out
}
