package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Profiles come from gunicorn-proxy's own net/http/pprof listener: the bench
// starts it with PPROF_LISTEN=127.0.0.1:PORT when -cpuprofile or -memprofile
// is given, and fetches /debug/pprof/profile (CPU, during the measured wrk
// run) and /debug/pprof/heap (after it) in round 1 of each scenario.

// profiling reports whether this run of target collects profiles.
func (b *bench) profiling(target string, round int) bool {
	return target == tGunicornProxy && round == 1 && (b.cfg.cpuprofile != "" || b.cfg.memprofile != "")
}

// profilePath is base itself when one scenario runs, else base with the
// scenario's name before the extension (cpu.prof -> cpu-small.prof).
func (b *bench) profilePath(base string, sc scenario) string {
	if len(b.cfg.scenarios) == 1 {
		return base
	}
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "-" + sc.name + ext
}

func (b *bench) fetchCPUProfile(ctx context.Context, in *instance, sc scenario, secs int) string {
	if secs < 1 {
		secs = 1
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", in.pprofAddr, secs)
	return b.fetchProfile(ctx, url, b.profilePath(b.cfg.cpuprofile, sc), time.Duration(secs+15)*time.Second)
}

func (b *bench) fetchHeapProfile(ctx context.Context, in *instance, sc scenario) string {
	url := fmt.Sprintf("http://%s/debug/pprof/heap", in.pprofAddr)
	return b.fetchProfile(ctx, url, b.profilePath(b.cfg.memprofile, sc), 15*time.Second)
}

func (b *bench) fetchProfile(ctx context.Context, url, path string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		logf("profile: %v", err)
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logf("profile: %v (does gunicorn-proxy honour PPROF_LISTEN?)", err)
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		logf("profile: %s: status %d", url, resp.StatusCode)
		return ""
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		logf("profile: %v", err)
		return ""
	}
	f, err := os.Create(path)
	if err != nil {
		logf("profile: %v", err)
		return ""
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		logf("profile: %v", err)
		return ""
	}
	if err := f.Close(); err != nil {
		logf("profile: %v", err)
		return ""
	}
	logf("profile written: %s (go tool pprof -top %s)", path, path)
	return path
}
