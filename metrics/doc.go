// Package metrics counts what the proxy does and writes it in Prometheus
// text format, for the admin listener's /metrics.
//
// Per-request counts and histograms come from the access records the proxy
// already produces: a *Metrics is a proxy.AccessLogger, added beside the
// access log with proxy.AccessLoggers. Every series is created in New, so
// recording a request is a few atomic adds and a histogram update, with no
// allocation and no map lookup. Methods outside a fixed set are counted as
// "other" and statuses by class (2xx…), so the number of series is fixed
// whatever clients send.
//
// Values the proxy and the access log keep themselves (open connections,
// requests in flight, refusals, upstream failures, dropped log lines) are
// read only when /metrics is scraped.
//
// The text is written by github.com/VictoriaMetrics/metrics: small,
// allocation-free counters and classic Prometheus histograms (le buckets),
// plus the usual go_* and process_* series.
package metrics
