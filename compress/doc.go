// Package compress compresses the app's answers on their way to the
// client, as nginx's gzip module did in the luhn/gunicorn-proxy image:
// gzip, and brotli or zstd when the client prefers them.
//
// A Compressor is a proxy.ResponseFilter. It decides in three steps:
//
//   - eligible.go: is this answer one that compression applies to at all
//     (its status, media type, size, no Content-Encoding of its own, no
//     Cache-Control: no-transform)? If so, its representation varies with
//     Accept-Encoding, and Vary says so whatever happens next.
//   - negotiate.go: which coding does this request accept, by the q-values
//     of its Accept-Encoding (RFC 9110 §12.5.3)? Preference br > zstd >
//     gzip when the client rates them equally.
//   - encode.go: compress the body with pooled encoders into a pooled
//     scratch buffer, copy it into the response's body, and fix the
//     headers (Content-Encoding, a weakened ETag, no Accept-Ranges).
//
// An answer larger than BUFFER_MEMORY reaches the compressor as a file the
// proxy spooled (FilterStream): it is compressed a block at a time into a
// writer the proxy spools in turn, before the first byte goes out, so an
// encoder is held while compressing, never while a slow client reads.
//
// In steady state a compressed response allocates nothing: encoder state
// and scratch buffers are pooled, and the response's body buffer is
// fasthttp's own, recycled by fasthttp once the response is written. (The
// one exception is zstd on a spooled body: two small arrays per stream
// inside klauspost/compress.)
package compress
