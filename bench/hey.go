package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// runHey runs hey against url for d with the same connection count as wrk:
// a second, independent load generator (Go's net/http client) to cross-check
// wrk's requests/s.
func (b *bench) runHey(ctx context.Context, sc scenario, url, dir string, d time.Duration) (loadResult, error) {
	argv := []string{b.tools["hey"], "-z", durArg(d), "-c", strconv.Itoa(b.cfg.conns), "-t", "5", "-m", sc.method}
	if sc.bodySize > 0 {
		body := filepath.Join(dir, "hey-body")
		if err := os.WriteFile(body, bytes.Repeat([]byte("x"), sc.bodySize), 0o644); err != nil {
			return loadResult{}, err
		}
		argv = append(argv, "-D", body, "-T", "application/octet-stream")
	}
	if sc.newConn {
		argv = append(argv, "-disable-keepalive")
	}
	if sc.acceptEncoding != "" {
		// Set explicitly, Go's client passes the compressed bytes through
		// rather than decompressing them, as wrk does.
		argv = append(argv, "-H", "Accept-Encoding: "+sc.acceptEncoding)
	}
	argv = append(argv, url)
	out, stderr, err := runBounded(ctx, "hey", argv, childEnv(), dir, d+30*time.Second)
	if err != nil {
		return loadResult{}, fmt.Errorf("%v %s", err, lastLines(stderr, 5))
	}
	return parseHey(out)
}

var (
	heyRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	heyTotal   = regexp.MustCompile(`Total:\s+([0-9.]+) secs`)
	heyPct     = regexp.MustCompile(`^\s*(\d+)%+ in ([0-9.]+) secs`)
	heyStatus  = regexp.MustCompile(`^\s*\[(\d{3})\]\s+(\d+) responses`)
	heyErrLine = regexp.MustCompile(`^\s*\[(\d+)\]\s+(.*)$`)
)

// parseHey reads hey's default text summary.
func parseHey(out []byte) (loadResult, error) {
	var r loadResult
	m := heyRPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("hey printed no Requests/sec: %s", lastLines(out, 10))
	}
	r.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := heyTotal.FindSubmatch(out); m != nil {
		r.Seconds, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	section := ""
	var errs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "Latency distribution"):
			section = "latency"
			continue
		case strings.HasPrefix(t, "Status code distribution"):
			section = "status"
			continue
		case strings.HasPrefix(t, "Error distribution"):
			section = "errors"
			continue
		case strings.HasSuffix(t, ":") && !strings.HasPrefix(t, "["):
			section = ""
			continue
		}
		switch section {
		case "latency":
			if m := heyPct.FindStringSubmatch(line); m != nil {
				v, _ := strconv.ParseFloat(m[2], 64)
				switch m[1] {
				case "50":
					r.P50us = v * 1e6
				case "90":
					r.P90us = v * 1e6
				case "99":
					r.P99us = v * 1e6
				}
			}
		case "status":
			if m := heyStatus.FindStringSubmatch(line); m != nil {
				code, _ := strconv.Atoi(m[1])
				n, _ := strconv.ParseInt(m[2], 10, 64)
				r.Requests += n
				if code >= 400 {
					r.Errors += n
					errs = append(errs, fmt.Sprintf("%d x status %d", n, code))
				}
			}
		case "errors":
			if m := heyErrLine.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				r.Errors += n
				msg := m[2]
				if len(msg) > 120 {
					msg = msg[:120]
				}
				errs = append(errs, fmt.Sprintf("%d x %s", n, msg))
			}
		}
	}
	if len(errs) > 0 {
		r.ErrorsText = strings.Join(errs, "; ")
	}
	return r, nil
}
