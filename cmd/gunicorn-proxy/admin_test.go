package main

// The admin listener of the real binary: /metrics after known traffic,
// /readyz, and the healthcheck subcommand.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrapeMetrics returns every sample on addr's /metrics by name, labels included.
func scrapeMetrics(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, body := get(t, "http://"+addr+"/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: bad line %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

// exchange sends one raw request on its own connection and reads the whole
// answer, up to the proxy's close: the sizes both ways are then exact.
func exchange(t testing.TB, addr, raw string) (status int, answer []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	answer, _ = io.ReadAll(c)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
	if err != nil {
		t.Fatalf("answer to %q: %v: %q", raw, err, answer)
	}
	return resp.StatusCode, answer
}

// wantSamples checks exact values.
func wantSamples(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present: %v), want %v", name, g, ok, v)
		}
	}
}

func TestMetricsAfterKnownTraffic(t *testing.T) {
	g := startGunicorn(t, 2, "")
	admin := freeAddr(t)
	p := startProxy(t, g.bind, "ADMIN_LISTEN="+admin, "MAX_BODY_SIZE=1k")

	// Phase 1: requests whose sizes are known to the byte.
	requests := []string{
		"GET /echo?a=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		"GET /echo?a=22 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
		"GET /status/404 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		"BREW /status/200 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", // Flask: 405
	}
	var in, out int
	for _, raw := range requests {
		_, answer := exchange(t, p.addr, raw)
		in += len(raw)
		out += len(answer)
	}
	// The record of a request is complete once its last byte is written,
	// which may be just after the client has read it.
	eventually(t, "six requests counted", func() bool {
		return scrapeMetrics(t, admin)["gunicorn_proxy_request_duration_seconds_count"] == 6
	})
	wantSamples(t, scrapeMetrics(t, admin), map[string]float64{
		`gunicorn_proxy_requests_total{code="2xx",method="GET"}`:   2,
		`gunicorn_proxy_requests_total{code="2xx",method="HEAD"}`:  1,
		`gunicorn_proxy_requests_total{code="2xx",method="POST"}`:  1,
		`gunicorn_proxy_requests_total{code="4xx",method="GET"}`:   1,
		`gunicorn_proxy_requests_total{code="4xx",method="other"}`: 1,
		`gunicorn_proxy_requests_total{code="5xx",method="GET"}`:   0,
		`gunicorn_proxy_upstream_duration_seconds_count`:           6,
		`gunicorn_proxy_request_bytes_total`:                       float64(in),
		`gunicorn_proxy_response_bytes_total`:                      float64(out),
		`gunicorn_proxy_connections_open`:                          0,
		`gunicorn_proxy_requests_in_flight`:                        0,
		`gunicorn_proxy_upstream_errors_total{kind="timeout"}`:     0,
	})

	// Phase 2: a body over MAX_BODY_SIZE, refused before the app sees it.
	// (Requests in flight and failures of the app have tests of their own
	// below, where the app does exactly what each needs.)
	if status, _ := exchange(t, p.addr, "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4096\r\n\r\n"); status != 413 {
		t.Errorf("over MAX_BODY_SIZE: %d", status)
	}
	eventually(t, "seven requests counted", func() bool {
		return scrapeMetrics(t, admin)["gunicorn_proxy_request_duration_seconds_count"] == 7
	})
	wantSamples(t, scrapeMetrics(t, admin), map[string]float64{
		`gunicorn_proxy_requests_total{code="4xx",method="POST"}`: 1,
		`gunicorn_proxy_upstream_duration_seconds_count`:          6,
		`gunicorn_proxy_upstream_errors_total{kind="refused"}`:    0,
		`gunicorn_proxy_requests_in_flight`:                       0,
	})

	// /readyz: the app accepts connections.
	if resp, body := get(t, "http://"+admin+"/readyz"); resp.StatusCode != 200 {
		t.Errorf("/readyz with the app up: %d %s", resp.StatusCode, body)
	}
	// Probes and scrapes are not requests: they were never counted.
	if n := scrapeMetrics(t, admin)["gunicorn_proxy_request_duration_seconds_count"]; n != 7 {
		t.Errorf("%v requests counted after the probes", n)
	}
}

// heldApp is an app whose /hold requests wait until the test releases them.
type heldApp struct {
	addr    string
	arrived chan struct{}
	release chan struct{}
}

func startHeldApp(t testing.TB) *heldApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &heldApp{addr: ln.Addr().String(), arrived: make(chan struct{}, 16), release: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			a.arrived <- struct{}{}
			<-a.release
		}
		io.WriteString(w, "ok\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		select {
		case <-a.release:
		default:
			close(a.release) // a request the test left held
		}
		srv.Close()
	})
	return a
}

// MAX_CONNECTIONS=1 with one request held at the app: the next connection
// is refused and counted.
func TestMetricsOfRefusedConnections(t *testing.T) {
	app := startHeldApp(t)
	admin := freeAddr(t)
	p := startProxy(t, app.addr, "ADMIN_LISTEN="+admin, "MAX_CONNECTIONS=1")

	// The held request may itself meet a 503 if the connection that
	// checked the proxy was listening still holds the one slot; it tries
	// again until the app has it.
	held := make(chan int, 1)
	go func() {
		for {
			status, _ := exchange(t, p.addr, "GET /hold HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
			if status != 503 {
				held <- status
				return
			}
		}
	}()
	<-app.arrived
	before := scrapeMetrics(t, admin)
	wantSamples(t, before, map[string]float64{
		"gunicorn_proxy_connections_open":   1,
		"gunicorn_proxy_requests_in_flight": 1,
	})
	if status, _ := exchange(t, p.addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); status != 503 {
		t.Errorf("over MAX_CONNECTIONS: %d", status)
	}
	if got := scrapeMetrics(t, admin)["gunicorn_proxy_connections_refused_total"] - before["gunicorn_proxy_connections_refused_total"]; got != 1 {
		t.Errorf("connections_refused_total went up by %v, want 1", got)
	}
	close(app.release)
	if status := <-held; status != 200 {
		t.Errorf("the held request: %d", status)
	}
}

// No app, an access log that cannot be written, an app that never answers.
func TestMetricsOfFailures(t *testing.T) {
	admin := freeAddr(t)
	dead := freeAddr(t) // nothing listens there
	p := startProxy(t, dead, "ADMIN_LISTEN="+admin, "LOG=syslog:server=unix:/nonexistent/log.sock")
	for i := 0; i < 2; i++ {
		if status, _ := exchange(t, p.addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); status != 502 {
			t.Errorf("no app: %d", status)
		}
	}
	eventually(t, "both lines dropped", func() bool {
		return scrapeMetrics(t, admin)["gunicorn_proxy_access_log_dropped_total"] == 2
	})
	wantSamples(t, scrapeMetrics(t, admin), map[string]float64{
		`gunicorn_proxy_upstream_errors_total{kind="refused"}`:   2,
		`gunicorn_proxy_requests_total{code="5xx",method="GET"}`: 2,
		`gunicorn_proxy_upstream_duration_seconds_count`:         0,
		`gunicorn_proxy_connections_refused_total`:               0,
	})

	// An app that never answers: a timeout, however slow the machine.
	held := startHeldApp(t)
	slowAdmin := freeAddr(t)
	slow := startProxy(t, held.addr, "ADMIN_LISTEN="+slowAdmin, "PROXY_READ_TIMEOUT=1s")
	if status, _ := exchange(t, slow.addr, "GET /hold HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); status != 504 {
		t.Errorf("an app that never answers: %d", status)
	}
	eventually(t, "the 504 counted", func() bool {
		return scrapeMetrics(t, slowAdmin)["gunicorn_proxy_request_duration_seconds_count"] == 1
	})
	wantSamples(t, scrapeMetrics(t, slowAdmin), map[string]float64{
		`gunicorn_proxy_upstream_errors_total{kind="timeout"}`:   1,
		`gunicorn_proxy_requests_total{code="5xx",method="GET"}`: 1,
	})

	resp, body := get(t, "http://"+admin+"/readyz")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "app unreachable") || !strings.Contains(string(body), "refused") {
		t.Errorf("/readyz with no app: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, "http://"+admin+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz with no app: %d (the proxy itself is fine)", resp.StatusCode)
	}
}

// healthcheckCmd runs `gunicorn-proxy healthcheck args…` with env.
func healthcheckCmd(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"healthcheck"}, args...)...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

func TestHealthcheckSubcommand(t *testing.T) {
	g := startGunicorn(t, 1, "")
	testdata := tlsTestdata(t)
	admin := freeAddr(t)
	withAdmin := startProxy(t, g.bind, "ADMIN_LISTEN="+admin)
	_, adminPort, _ := net.SplitHostPort(admin)
	adminNoApp := freeAddr(t)
	noApp := startProxy(t, freeAddr(t), "ADMIN_LISTEN="+adminNoApp).addr
	plain := startProxy(t, g.bind)
	tlsProxy := startProxy(t, g.bind, "SSL_CRT="+testdata+"/ec.crt", "SSL_KEY="+testdata+"/ec.key")
	gone := freeAddr(t)
	adminSock := filepath.Join(t.TempDir(), "admin.sock")
	startProxy(t, g.bind, "ADMIN_LISTEN=unix:"+adminSock)

	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		output string
	}{
		{"admin /healthz", []string{"ADMIN_LISTEN=" + admin}, nil, 0, "http://" + admin + "/healthz: ok"},
		{"wildcard admin address", []string{"ADMIN_LISTEN=:" + adminPort}, nil, 0, "http://127.0.0.1:" + adminPort + "/healthz: ok"},
		{"admin on a unix socket", []string{"ADMIN_LISTEN=unix:" + adminSock}, nil, 0, "unix:" + adminSock + " /healthz: ok"},
		{"admin /readyz", []string{"ADMIN_LISTEN=" + admin}, []string{"--ready"}, 0, "/readyz: ok"},
		{"no app: healthy", []string{"LISTEN=" + noApp, "ADMIN_LISTEN=" + adminNoApp}, nil, 0, "/healthz: ok"},
		{"no app: not ready", []string{"LISTEN=" + noApp, "ADMIN_LISTEN=" + adminNoApp}, []string{"--ready"}, 1, "503 app unreachable"},
		{"no admin: the listener", []string{"LISTEN=" + plain.addr}, nil, 0, plain.addr + " accepts connections"},
		{"no admin: TLS handshake", []string{"LISTEN=" + tlsProxy.addr, "SSL_CRT=x", "SSL_KEY=y"}, nil, 0, "accepts connections"},
		{"no admin: without SSL_* a connection is all it checks", []string{"LISTEN=" + tlsProxy.addr}, nil, 0, "accepts connections"},
		{"no admin: TLS expected, plain found", []string{"LISTEN=" + plain.addr, "AUTO_SSL=1"}, nil, 1, "TLS handshake"},
		{"nothing there", []string{"LISTEN=" + gone}, nil, 1, "connection refused"},
		{"admin not there", []string{"ADMIN_LISTEN=" + gone}, nil, 1, "connection refused"},
		{"--ready without admin", []string{"LISTEN=" + plain.addr}, []string{"--ready"}, 1, "--ready needs ADMIN_LISTEN"},
		{"bad argument", nil, []string{"--bogus"}, 1, `unknown argument "--bogus"`},
		{"bad configuration: 1, not 2", []string{"ADMIN_LISTEN=9100"}, nil, 1, `ADMIN_LISTEN="9100": expected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := healthcheckCmd(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.output) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, tt.code, tt.output)
			}
		})
	}
	// The checks went to the admin listener, never to the app.
	if n := scrapeMetrics(t, admin)["gunicorn_proxy_request_duration_seconds_count"]; n != 0 {
		t.Errorf("%v requests forwarded by the health checks", n)
	}
	withAdmin.signal(syscall.SIGTERM)
	withAdmin.wait(t, 15*time.Second)
	if code, _, _ := healthcheckCmd(t, []string{"ADMIN_LISTEN=" + admin}); code != 1 {
		t.Errorf("healthcheck after exit: %d", code)
	}
}
