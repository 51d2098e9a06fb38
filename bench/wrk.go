package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// loadResult is what one load-generator run measured.
type loadResult struct {
	Requests   int64   `json:"requests"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us,omitempty"`
	P99us      float64 `json:"p99_us"`
	MaxUs      float64 `json:"max_us,omitempty"`
	Errors     int64   `json:"errors"`
	ErrorsText string  `json:"errors_detail,omitempty"`
}

// wrkScript is the Lua script for one scenario: the request to send, and a
// done() that prints the summary as one JSON line (exact microseconds, no
// unit parsing). Lines starting with BENCHJSON are read by parseWrk.
func wrkScript(sc scenario) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = %q\n", sc.method)
	if sc.bodySize > 0 {
		fmt.Fprintf(&b, "wrk.body = string.rep(\"x\", %d)\n", sc.bodySize)
		b.WriteString("wrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n")
	}
	if sc.newConn {
		b.WriteString("wrk.headers[\"Connection\"] = \"close\"\n")
	}
	if sc.acceptEncoding != "" {
		fmt.Fprintf(&b, "wrk.headers[\"Accept-Encoding\"] = %q\n", sc.acceptEncoding)
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`)
	return b.String()
}

// runWrk runs wrk against url for d with the bench's fixed settings.
// It also returns the CPU time wrk used.
func (b *bench) runWrk(ctx context.Context, sc scenario, url, dir string, d time.Duration) (loadResult, time.Duration, error) {
	script := filepath.Join(dir, "wrk-"+sc.name+".lua")
	if err := os.WriteFile(script, []byte(wrkScript(sc)), 0o644); err != nil {
		return loadResult{}, 0, err
	}
	argv := []string{b.tools["wrk"],
		"-t" + strconv.Itoa(b.cfg.threads), "-c" + strconv.Itoa(b.cfg.conns),
		"-d" + durArg(d), "--timeout", "5s", "--latency", "-s", script, url}
	out, stderr, cpu, err := runBoundedCPU(ctx, "wrk", argv, childEnv(), dir, d+30*time.Second)
	if err != nil {
		return loadResult{}, cpu, fmt.Errorf("%v %s", err, lastLines(stderr, 5))
	}
	r, err := parseWrk(out)
	return r, cpu, err
}

// durArg formats d in whole seconds (at least 1) for wrk and hey.
func durArg(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s) + "s"
}

var wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// parseWrk reads the BENCHJSON line printed by wrkScript's done().
func parseWrk(out []byte) (loadResult, error) {
	var r loadResult
	i := bytes.Index(out, []byte("BENCHJSON "))
	if i < 0 {
		return r, fmt.Errorf("wrk printed no summary: %s", lastLines(out, 10))
	}
	line := out[i+len("BENCHJSON "):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	var s struct {
		Requests   int64   `json:"requests"`
		DurationUs int64   `json:"duration_us"`
		Connect    int64   `json:"connect"`
		Read       int64   `json:"read"`
		Write      int64   `json:"write"`
		Status     int64   `json:"status"`
		Timeout    int64   `json:"timeout"`
		P50        float64 `json:"p50"`
		P90        float64 `json:"p90"`
		P99        float64 `json:"p99"`
		Max        float64 `json:"max"`
	}
	if err := json.Unmarshal(line, &s); err != nil {
		return r, fmt.Errorf("wrk summary %q: %w", line, err)
	}
	r.Requests = s.Requests
	r.Seconds = float64(s.DurationUs) / 1e6
	if r.Seconds > 0 {
		r.RPS = float64(s.Requests) / r.Seconds
	}
	// wrk's own figure, when present, is the same quotient; prefer ours.
	if r.RPS == 0 {
		if m := wrkRPS.FindSubmatch(out); m != nil {
			r.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
		}
	}
	r.P50us, r.P90us, r.P99us, r.MaxUs = s.P50, s.P90, s.P99, s.Max
	r.Errors = s.Connect + s.Read + s.Write + s.Status + s.Timeout
	if r.Errors > 0 {
		r.ErrorsText = fmt.Sprintf("connect %d, read %d, write %d, non-2xx/3xx %d, timeout %d",
			s.Connect, s.Read, s.Write, s.Status, s.Timeout)
	}
	return r, nil
}
