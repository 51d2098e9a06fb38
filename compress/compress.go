package compress

import (
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"
)

// Config is the compressor's configuration, already parsed.
type Config struct {
	// Level is the gzip level, 1 (fastest) to 9 (smallest); brotli and
	// zstd get the level of comparable cost (see Levels). 0 means 5, the
	// old image's gzip_comp_level.
	Level int
	// MinLength is the smallest body compressed, in bytes (nginx's
	// gzip_min_length; the old image's 256). Negative means 0.
	MinLength int
	// Types are the media types compressed: "application/json",
	// "text/*", or "*" for all. Empty means DefaultTypes.
	Types []string
	// Codings are the codings offered; empty means gzip, brotli and zstd.
	Codings []Coding
}

// DefaultLevel and DefaultMinLength are the old image's gzip settings.
const (
	DefaultLevel     = 5
	DefaultMinLength = 256
)

// Compressor compresses the app's answers; it implements
// proxy.ResponseFilter and is safe for concurrent use.
type Compressor struct {
	levels    Levels
	minLength int
	types     typeSet
	enabled   [numCodings]bool
	zstd      *zstd.Encoder // EncodeAll is safe for concurrent use
	states    sync.Pool     // *state
}

// Levels are the levels each coding is run at.
type Levels struct {
	Gzip   int               // 1–9
	Brotli int               // 0–11
	Zstd   zstd.EncoderLevel // SpeedFastest … SpeedBestCompression
}

// LevelsFor maps a gzip level to the brotli quality and zstd level that
// cost about as much CPU or less on a typical API answer (a 64 KiB JSON
// document; see BenchmarkLevels), so that a client preferring brotli or
// zstd never makes COMPRESS_LEVEL more expensive than it says, and gets a
// smaller body for it.
//
//	gzip    1  2  3  4  5  6  7  8  9
//	brotli  1  1  2  2  2  3  4  5  6
//	zstd    1  1  1  2  2  2  3  3  4   (klauspost levels: fastest, default, better, best)
func LevelsFor(gzipLevel int) Levels {
	gzipLevel = min(max(gzipLevel, 1), 9)
	brotli := [...]int{1, 1, 2, 2, 2, 3, 4, 5, 6}
	zstdLevels := [...]zstd.EncoderLevel{
		zstd.SpeedFastest, zstd.SpeedFastest, zstd.SpeedFastest,
		zstd.SpeedDefault, zstd.SpeedDefault, zstd.SpeedDefault,
		zstd.SpeedBetterCompression, zstd.SpeedBetterCompression,
		zstd.SpeedBestCompression,
	}
	return Levels{Gzip: gzipLevel, Brotli: brotli[gzipLevel-1], Zstd: zstdLevels[gzipLevel-1]}
}

// New checks cfg and builds a Compressor.
func New(cfg Config) (*Compressor, error) {
	level := cfg.Level
	if level == 0 {
		level = DefaultLevel
	}
	if level < 1 || level > 9 {
		return nil, fmt.Errorf("compress: level %d is not 1–9", level)
	}
	types := cfg.Types
	if len(types) == 0 {
		types = DefaultTypes
	}
	ts, err := newTypeSet(types)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	c := &Compressor{levels: LevelsFor(level), minLength: max(cfg.MinLength, 0), types: ts}
	codings := cfg.Codings
	if len(codings) == 0 {
		codings = []Coding{Gzip, Brotli, Zstd}
	}
	for _, cd := range codings {
		if cd == Identity || cd >= numCodings {
			return nil, fmt.Errorf("compress: cannot offer coding %d", cd)
		}
		c.enabled[cd] = true
	}
	if c.enabled[Zstd] {
		// One encoder per core: EncodeAll borrows one of them for each
		// call, so the state is pooled by the library itself.
		c.zstd, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(c.levels.Zstd),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("compress: zstd: %w", err)
		}
	}
	c.states.New = func() any { return new(state) }
	return c, nil
}

// FilterResponse compresses resp for the client that sent req, if both
// allow it. It implements proxy.ResponseFilter: resp holds the app's
// complete answer with the proxy's header filtering done.
//
// resp must not invent a Content-Type the app did not send (the proxy's
// server runs with NoDefaultContentType): an answer without one is never
// compressed.
func (c *Compressor) FilterResponse(req *fasthttp.RequestHeader, resp *fasthttp.Response) {
	if resp.IsBodyStream() {
		return
	}
	st, h, coding := c.begin(req, resp, bodyLength(req, resp))
	if st == nil {
		return
	}
	defer c.release(st)
	body := resp.Body()
	st.out = c.encode(st, coding, st.out[:0], body)
	if len(st.out) >= len(body) {
		return // nothing saved: the identity body is the better answer
	}
	// The compressed bytes are copied into a body buffer of fasthttp's,
	// which it owns until the response is written: nothing of ours is
	// referred to after we return, so no lifetime crosses the write, and
	// the scratch buffer goes straight back to our pool. The copy (a few
	// KiB) is cheap next to the compression. Swapping buffers instead
	// would be worse: fasthttp's body pool sizes itself by the length of
	// the buffers it gets back and drops those with a larger capacity, so
	// handing it 64 KiB buffers holding 5 KiB bodies makes it drop every
	// buffer big enough for the next answer (it cost 3 allocations and
	// 74 KB per request in BenchmarkForwardJSON64KZstd). ResetBody first
	// returns the app's buffer to that pool with its full length.
	resp.ResetBody()
	resp.AppendBody(st.out)
	resp.Header.SetContentEncodingBytes(codingNames[coding])
	resp.Header.SetContentLength(len(resp.Body()))
	fixHeadersForCoding(&resp.Header, &h, st)
}

// FilterStream compresses a body the proxy spooled to a file (one larger
// than BUFFER_MEMORY): it reads body a block at a time and writes the
// compressed bytes to out, which the proxy spools in turn, then sends with
// their length. All of it happens before FilterStream returns, while the
// client waits, as the proxy waits for the whole answer of the app: an
// encoder (1–5 MiB of tables) is held for the time it takes to compress,
// never for the time a slow client takes to read. It implements
// proxy.ResponseFilter.
func (c *Compressor) FilterStream(req *fasthttp.RequestHeader, resp *fasthttp.Response, body io.Reader, size int64, out io.Writer) bool {
	if size < 0 {
		return false
	}
	st, h, coding := c.begin(req, resp, size)
	if st == nil {
		return false
	}
	defer c.release(st)
	written, err := c.encodeStream(st, coding, out, body, size)
	if err != nil || written >= size {
		// A write to BUFFER_DIR failed, or nothing was saved: the
		// identity body goes, and the headers still describe it.
		return false
	}
	resp.Header.SetContentEncodingBytes(codingNames[coding])
	fixHeadersForCoding(&resp.Header, &h, st)
	return true
}

// begin decides for both filters whether the answer is compressed, and
// how. An answer that could be compressed varies with Accept-Encoding
// whatever this client accepts, so Vary is added before the coding is
// chosen. It returns a nil state when the answer goes as it is, and
// otherwise the state, to be released, the answer's headers as scanned,
// and the coding.
func (c *Compressor) begin(req *fasthttp.RequestHeader, resp *fasthttp.Response, size int64) (*state, responseHeaders, Coding) {
	if !c.eligible(resp, size) {
		return nil, responseHeaders{}, Identity
	}
	h := scanResponse(&resp.Header)
	if h.noTransform {
		return nil, h, Identity
	}
	st := c.states.Get().(*state)
	if !h.varyHasAcceptEncoding {
		addVary(&resp.Header, &h, st)
	}
	coding := c.negotiate(req)
	if coding == Identity {
		c.release(st)
		return nil, h, Identity
	}
	return st, h, coding
}

// maxPooledBuffer is the largest scratch buffer kept for the next
// response; bigger ones are left to the garbage collector rather than
// pinned (the proxy applies the same bound to request bodies).
const maxPooledBuffer = 1 << 20

// state is the per-call scratch: the output buffer, the encoders that
// write into it, room to rebuild header values, and for a spooled body the
// block it is read through.
type state struct {
	out     []byte
	scratch []byte
	enc     encoders
	block   []byte
}

func (c *Compressor) release(st *state) {
	if cap(st.out) > maxPooledBuffer {
		st.out = nil
	}
	c.states.Put(st)
}
