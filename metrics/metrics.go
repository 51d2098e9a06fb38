package metrics

import (
	"fmt"
	"io"
	"sync"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

// Prefix starts every series this package defines.
const Prefix = "gunicorn_proxy_"

// Sources are the running counts read at scrape time; a nil one reads as 0.
type Sources struct {
	// Proxy returns the proxy's own counts (proxy.Server.Stats).
	Proxy func() proxy.Stats
	// LogDropped returns the number of access-log lines lost so far
	// (logsink.Sink.Dropped); nil without an access log.
	LogDropped func() uint64
}

// Buckets are the upper bounds, in seconds, of both duration histograms:
// from a fast cached answer to PROXY_READ_TIMEOUT's default of 60 s, with
// gunicorn's default worker timeout (30 s) on a bound of its own.
var Buckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// methods are the methods counted under their own name; any other is
// "other", so a client cannot create series by inventing methods.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}

const otherMethod = len(methods) - 1

// classes are the status classes; "other" is a status outside 100–599,
// which an app can send and the proxy passes on.
var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

const otherClass = len(classes) - 1

// Metrics is a proxy.AccessLogger that counts requests, plus the scrape-time
// view of Sources. Its methods are safe for concurrent use.
type Metrics struct {
	set *vm.Set
	src Sources

	requests         [len(classes)][len(methods)]*vm.Counter
	requestDuration  *vm.PrometheusHistogram
	upstreamDuration *vm.PrometheusHistogram
	bytesIn          *vm.Counter
	bytesOut         *vm.Counter

	// Copied from src at each scrape, under scrapeMu so that two scrapes
	// at once cannot write an older value after a newer one.
	scrapeMu       sync.Mutex
	openConns      *vm.Gauge
	inFlight       *vm.Gauge
	refused        *vm.Counter
	upstreamErrors [4]*vm.Counter // refused, timeout, reset, invalid
	rateLimited    [2]*vm.Counter // refused, delayed
	logDropped     *vm.Counter
}

// New creates every series. version is exposed as
// gunicorn_proxy_build_info{version="…"} 1.
func New(version string, src Sources) *Metrics {
	// TYPE lines let Prometheus and Grafana tell the histograms and
	// counters apart. The switch is global to the library; this process
	// has no other user of it.
	vm.ExposeMetadata(true)
	s := vm.NewSet()
	m := &Metrics{set: s, src: src}
	for c, class := range classes {
		for i, method := range methods {
			m.requests[c][i] = s.NewCounter(fmt.Sprintf(`%srequests_total{code=%q,method=%q}`, Prefix, class, method))
		}
	}
	m.requestDuration = s.NewPrometheusHistogramExt(Prefix+"request_duration_seconds", Buckets)
	m.upstreamDuration = s.NewPrometheusHistogramExt(Prefix+"upstream_duration_seconds", Buckets)
	m.bytesIn = s.NewCounter(Prefix + "request_bytes_total")
	m.bytesOut = s.NewCounter(Prefix + "response_bytes_total")

	m.openConns = s.NewGauge(Prefix+"connections_open", nil)
	m.inFlight = s.NewGauge(Prefix+"requests_in_flight", nil)
	m.refused = s.NewCounter(Prefix + "connections_refused_total")
	for i, kind := range [...]string{"refused", "timeout", "reset", "invalid"} {
		m.upstreamErrors[i] = s.NewCounter(fmt.Sprintf(`%supstream_errors_total{kind=%q}`, Prefix, kind))
	}
	for i, outcome := range [...]string{"refused", "delayed"} {
		m.rateLimited[i] = s.NewCounter(fmt.Sprintf(`%srate_limited_total{outcome=%q}`, Prefix, outcome))
	}
	m.logDropped = s.NewCounter(Prefix + "access_log_dropped_total")
	s.NewGauge(fmt.Sprintf(`%sbuild_info{version=%q}`, Prefix, version), func() float64 { return 1 })
	return m
}

// Log implements proxy.AccessLogger. It runs on the request path: no
// allocation, no lock but the histograms' own.
func (m *Metrics) Log(rec *proxy.AccessRecord) {
	m.requests[statusClass(rec.Status)][methodIndex(rec.Method)].Inc()
	m.requestDuration.Update(rec.End.Sub(rec.Start).Seconds())
	if rec.UpstreamTime >= 0 {
		m.upstreamDuration.Update(rec.UpstreamTime.Seconds())
	}
	m.bytesIn.AddInt64(rec.RequestSize)
	m.bytesOut.AddInt64(rec.ResponseSize)
}

// methodIndex maps a method to its place in methods. The switch on
// string(b) compiles to comparisons without a conversion (no allocation).
func methodIndex(b []byte) int {
	switch string(b) {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	}
	return otherMethod
}

func statusClass(status int) int {
	if status < 100 || status > 599 {
		return otherClass
	}
	return status/100 - 1
}

// WritePrometheus writes every series in Prometheus text format (version
// 0.0.4), then the Go runtime's and the process's (go_*, process_*).
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.scrapeMu.Lock()
	var st proxy.Stats
	if m.src.Proxy != nil {
		st = m.src.Proxy()
	}
	m.openConns.Set(float64(st.OpenConnections))
	m.inFlight.Set(float64(st.InFlight))
	m.refused.Set(st.Refused)
	m.upstreamErrors[0].Set(st.UpstreamRefused)
	m.upstreamErrors[1].Set(st.UpstreamTimeout)
	m.upstreamErrors[2].Set(st.UpstreamReset)
	m.upstreamErrors[3].Set(st.UpstreamInvalid)
	m.rateLimited[0].Set(st.RateLimitRefused)
	m.rateLimited[1].Set(st.RateLimitDelayed)
	if m.src.LogDropped != nil {
		m.logDropped.Set(m.src.LogDropped())
	}
	m.set.WritePrometheus(w)
	m.scrapeMu.Unlock()
	vm.WriteProcessMetrics(w)
}
