package metrics

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

// scrape returns every sample of m's exposition by its full name (labels
// included), after checking that each family has exactly one TYPE line,
// before its samples.
func scrape(t testing.TB, m *Metrics) map[string]float64 {
	t.Helper()
	var b bytes.Buffer
	m.WritePrometheus(&b)
	samples := map[string]float64{}
	typed := map[string]bool{}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			family := strings.Fields(rest)[0]
			if typed[family] {
				t.Errorf("second TYPE line for %s", family)
			}
			typed[family] = true
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		name := line[:i]
		if _, dup := samples[name]; dup {
			t.Errorf("sample %s twice", name)
		}
		samples[name] = v
	}
	return samples
}

func record(method string, status int, took, upstream time.Duration, in, out int64) *proxy.AccessRecord {
	start := time.Unix(1700000000, 0)
	return &proxy.AccessRecord{
		ClientIP: []byte("203.0.113.7"), Method: []byte(method), URI: []byte("/"),
		Status: status, Start: start, End: start.Add(took), UpstreamTime: upstream,
		RequestSize: in, ResponseSize: out,
	}
}

func TestRequestsAreCountedByClassAndMethod(t *testing.T) {
	m := New("v1.2.3", Sources{})
	records := []*proxy.AccessRecord{
		record("GET", 200, 3*time.Millisecond, 2*time.Millisecond, 100, 1000),
		record("GET", 204, 30*time.Millisecond, 20*time.Millisecond, 100, 200),
		record("POST", 201, 300*time.Millisecond, 200*time.Millisecond, 5000, 300),
		record("POST", 413, time.Millisecond, -1, 2000, 150),
		record("BREW", 502, 2*time.Second, -1, 50, 150),
		record("get", 404, time.Millisecond, time.Millisecond, 50, 150),
		record("DELETE", 999, time.Millisecond, time.Millisecond, 50, 150),
		record("GET", 301, 90*time.Second, 90*time.Second, 50, 150),
	}
	for _, r := range records {
		m.Log(r)
	}
	got := scrape(t, m)
	tests := []struct {
		name string
		want float64
	}{
		{`gunicorn_proxy_requests_total{code="2xx",method="GET"}`, 2},
		{`gunicorn_proxy_requests_total{code="2xx",method="POST"}`, 1},
		{`gunicorn_proxy_requests_total{code="4xx",method="POST"}`, 1},
		{`gunicorn_proxy_requests_total{code="5xx",method="other"}`, 1},
		{`gunicorn_proxy_requests_total{code="4xx",method="other"}`, 1}, // methods are case-sensitive (RFC 9110 §9.1)
		{`gunicorn_proxy_requests_total{code="other",method="DELETE"}`, 1},
		{`gunicorn_proxy_requests_total{code="3xx",method="GET"}`, 1},
		{`gunicorn_proxy_requests_total{code="1xx",method="OPTIONS"}`, 0},
		{`gunicorn_proxy_request_duration_seconds_count`, 8},
		{`gunicorn_proxy_request_duration_seconds_bucket{le="0.005"}`, 4},
		{`gunicorn_proxy_request_duration_seconds_bucket{le="0.05"}`, 5},
		{`gunicorn_proxy_request_duration_seconds_bucket{le="60"}`, 7},
		{`gunicorn_proxy_request_duration_seconds_bucket{le="+Inf"}`, 8},
		{`gunicorn_proxy_upstream_duration_seconds_count`, 6}, // the 413 and the 502 never reached the app
		{`gunicorn_proxy_upstream_duration_seconds_bucket{le="0.005"}`, 3},
		{`gunicorn_proxy_request_bytes_total`, 7400},
		{`gunicorn_proxy_response_bytes_total`, 2250},
		{`gunicorn_proxy_build_info{version="v1.2.3"}`, 1},
	}
	for _, tt := range tests {
		if v, ok := got[tt.name]; !ok || v != tt.want {
			t.Errorf("%s = %v (present %v), want %v", tt.name, v, ok, tt.want)
		}
	}
	// Bounded cardinality: 6 classes × 8 methods, whatever was sent.
	n := 0
	for name := range got {
		if strings.HasPrefix(name, "gunicorn_proxy_requests_total{") {
			n++
		}
	}
	if n != len(classes)*len(methods) {
		t.Errorf("%d requests_total series", n)
	}
}

func TestScrapeReadsSources(t *testing.T) {
	stats := proxy.Stats{OpenConnections: 3, InFlight: 2, Refused: 7,
		UpstreamRefused: 1, UpstreamTimeout: 2, UpstreamReset: 3, UpstreamInvalid: 4,
		RateLimitRefused: 5, RateLimitDelayed: 6}
	dropped := uint64(11)
	m := New("dev", Sources{
		Proxy:      func() proxy.Stats { return stats },
		LogDropped: func() uint64 { return dropped },
	})
	want := map[string]float64{
		"gunicorn_proxy_connections_open":                      3,
		"gunicorn_proxy_requests_in_flight":                    2,
		"gunicorn_proxy_connections_refused_total":             7,
		`gunicorn_proxy_upstream_errors_total{kind="refused"}`: 1,
		`gunicorn_proxy_upstream_errors_total{kind="timeout"}`: 2,
		`gunicorn_proxy_upstream_errors_total{kind="reset"}`:   3,
		`gunicorn_proxy_upstream_errors_total{kind="invalid"}`: 4,
		`gunicorn_proxy_rate_limited_total{outcome="refused"}`: 5,
		`gunicorn_proxy_rate_limited_total{outcome="delayed"}`: 6,
		"gunicorn_proxy_access_log_dropped_total":              11,
	}
	check := func() {
		t.Helper()
		got := scrape(t, m)
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%s = %v, want %v", name, got[name], v)
			}
		}
		if _, ok := got["go_goroutines"]; !ok {
			t.Error("no go_* runtime series")
		}
	}
	check()
	// Read again at the next scrape, not cached.
	stats.OpenConnections, stats.UpstreamReset, dropped = 0, 9, 12
	want["gunicorn_proxy_connections_open"] = 0
	want[`gunicorn_proxy_upstream_errors_total{kind="reset"}`] = 9
	want["gunicorn_proxy_access_log_dropped_total"] = 12
	check()
}

func TestNoSourcesReadsZero(t *testing.T) {
	got := scrape(t, New("dev", Sources{}))
	if v, ok := got["gunicorn_proxy_access_log_dropped_total"]; !ok || v != 0 {
		t.Errorf("access_log_dropped_total = %v, %v", v, ok)
	}
}

// The request path must not allocate.
func TestLogDoesNotAllocate(t *testing.T) {
	m := New("dev", Sources{})
	recs := []*proxy.AccessRecord{
		record("GET", 200, time.Millisecond, time.Millisecond, 1, 1),
		record("PROPFIND", 207, time.Second, -1, 1, 1),
	}
	for _, r := range recs {
		if n := testing.AllocsPerRun(1000, func() { m.Log(r) }); n != 0 {
			t.Errorf("%s: %v allocations per request", r.Method, n)
		}
	}
}

func BenchmarkLog(b *testing.B) {
	m := New("dev", Sources{})
	r := record("GET", 200, 12*time.Millisecond, 11*time.Millisecond, 512, 2048)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Log(r)
		}
	})
}
