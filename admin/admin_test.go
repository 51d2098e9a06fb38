package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

type fakeMetrics struct{}

func (fakeMetrics) WritePrometheus(w io.Writer) { io.WriteString(w, "up 1\n") }

func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, "http://" + ln.Addr().String()
}

func fetch(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestEndpoints(t *testing.T) {
	appDown := errors.New("connection refused")
	tests := []struct {
		name       string
		cfg        Config
		drain      bool
		method     string
		path       string
		status     int
		body       string
		contentTyp string
	}{
		{"healthz", Config{}, false, "GET", "/healthz", 200, "ok\n", "text/plain; charset=utf-8"},
		{"healthz HEAD", Config{}, false, "HEAD", "/healthz", 200, "", ""},
		{"healthz while draining", Config{}, true, "GET", "/healthz", 200, "ok\n", ""},
		{"readyz, no check", Config{}, false, "GET", "/readyz", 200, "ok\n", ""},
		{"readyz, app up", Config{Ready: func(context.Context) error { return nil }}, false, "GET", "/readyz", 200, "ok\n", ""},
		{"readyz, app down", Config{Ready: func(context.Context) error { return appDown }}, false, "GET", "/readyz", 503, "app unreachable: connection refused\n", ""},
		{"readyz while draining", Config{Ready: func(context.Context) error { return nil }}, true, "GET", "/readyz", 503, "shutting down\n", ""},
		{"metrics", Config{Metrics: fakeMetrics{}}, false, "GET", "/metrics", 200, "up 1\n", "text/plain; version=0.0.4; charset=utf-8"},
		{"no metrics", Config{}, false, "GET", "/metrics", 404, "", ""},
		{"other path", Config{}, false, "GET", "/", 404, "", ""},
		{"POST", Config{}, false, "POST", "/healthz", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, tt.cfg)
			if tt.drain {
				s.Drain()
			}
			status, body, h := fetch(t, tt.method, base+tt.path)
			if status != tt.status || (tt.body != "" && body != tt.body) {
				t.Errorf("%d %q", status, body)
			}
			if tt.contentTyp != "" && h.Get("Content-Type") != tt.contentTyp {
				t.Errorf("Content-Type %q", h.Get("Content-Type"))
			}
		})
	}
}

func TestDialCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := ln.Addr().String()
	check := DialCheck("tcp", up, 5*time.Second)
	if err := check(context.Background()); err != nil {
		t.Errorf("listening app: %v", err)
	}
	ln.Close()
	if err := check(context.Background()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("closed app: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := DialCheck("tcp", up, 5*time.Second)(ctx); err == nil {
		t.Error("a cancelled probe succeeded")
	}
}
