// Package logsink writes the access log: one JSON object per request, in the
// fields of the luhn/gunicorn-proxy image, to stdout, a file or a syslog
// server (the LOG variable).
//
// The request path only formats the line into a pooled buffer and copies it
// into a bounded queue; a single background goroutine writes the queue in
// batches. A slow disk, a full pipe or a dead syslog server therefore costs
// log lines, which are counted and reported on stderr, and never delays or
// fails a request.
package logsink
