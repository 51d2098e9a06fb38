package proxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// byConnection runs serve with the connection's number, from 1, so a test
// can script the first connection differently from the others.
func byConnection(serve func(n int, c net.Conn, br *bufio.Reader, a *scriptedApp)) func(net.Conn, *bufio.Reader, *scriptedApp) {
	var count atomic.Int32
	return func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
		serve(int(count.Add(1)), c, br, a)
	}
}

// firstConnDropsSecondRequest answers the first request of the first
// connection, then reads the second and closes without a word: the app
// crashed on it, or closed the idle connection just as it was sent.
func firstConnDropsSecondRequest(n int, c net.Conn, br *bufio.Reader, a *scriptedApp) {
	for i := 1; ; i++ {
		if _, ok := a.readRequest(br); !ok {
			return
		}
		if n == 1 && i == 2 {
			return
		}
		io.WriteString(c, okResponse)
	}
}

func sendSequentially(t *testing.T, p *testProxy, requests ...string) []int {
	t.Helper()
	c := p.dial(t, "203.0.113.7")
	br := bufio.NewReader(c)
	var statuses []int
	for _, r := range requests {
		io.WriteString(c, r)
		statuses = append(statuses, readResponse(t, br, false).StatusCode())
	}
	return statuses
}

const (
	getRequest  = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
	postRequest = "POST /charge HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n$10"
)

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		second       string
		wantStatuses []int
		wantRequests int // what the app received in all
	}{
		// The second GET is sent on the reused connection, lost, and sent
		// again on a new one: GET is idempotent and no answer had started.
		{"GET lost on a reused connection is retried", getRequest, []int{200, 200}, 3},
		// A POST may have been acted on before the app died: never again.
		{"POST lost on a reused connection is not retried", postRequest, []int{200, 502}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := startScriptedApp(t, byConnection(firstConnDropsSecondRequest))
			p := startProxy(t, testConfig(app.upstream()))
			got := sendSequentially(t, p, getRequest, tt.second)
			if got[0] != tt.wantStatuses[0] || got[1] != tt.wantStatuses[1] {
				p.dumpErrors(t)
				t.Fatalf("statuses %v, want %v", got, tt.wantStatuses)
			}
			if n := len(app.received()); n != tt.wantRequests {
				t.Errorf("the app received %d requests, want %d:\n%s", n, tt.wantRequests, strings.Join(app.received(), "\n"))
			}
		})
	}
}

// A request that fails on a fresh connection is not retried, whatever its
// method: the app got it and failed on it.
func TestNoRetryOnFreshConnection(t *testing.T) {
	app := startScriptedApp(t, func(c net.Conn, br *bufio.Reader, a *scriptedApp) { a.readRequest(br) })
	p := startProxy(t, testConfig(app.upstream()))
	if got := sendSequentially(t, p, getRequest); got[0] != 502 {
		t.Fatalf("status %d, want 502", got[0])
	}
	if n := len(app.received()); n != 1 {
		t.Errorf("the app received %d requests, want 1", n)
	}
}

// gunicorn's gthread worker closes a keep-alive connection after two idle
// seconds, and every connection of a worker that restarts dies with it.
// The pool must notice before sending anything: even a POST then succeeds,
// sent once, on a new connection.
func TestStalePooledConnectionIsNotUsed(t *testing.T) {
	app := startScriptedApp(t, func(c net.Conn, br *bufio.Reader, a *scriptedApp) {
		if _, ok := a.readRequest(br); ok {
			io.WriteString(c, okResponse) // keep-alive, then gone
		}
	})
	p := startProxy(t, testConfig(app.upstream()))
	c := p.dial(t, "203.0.113.7")
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		io.WriteString(c, postRequest)
		if status := readResponse(t, br, false).StatusCode(); status != 200 {
			p.dumpErrors(t)
			t.Fatalf("POST %d: status %d; app saw %d conns, requests %q", i, status, app.connections(), app.received())
		}
		time.Sleep(300 * time.Millisecond) // the app has closed the pooled connection meanwhile
	}
	if got := len(app.received()); got != 3 {
		t.Errorf("the app received %d POSTs, want each exactly once", got)
	}
	if got := app.connections(); got != 3 {
		t.Errorf("%d connections to the app, want a new one for each POST", got)
	}
}

// A pooled connection whose read deadline ran out while it sat idle is
// still healthy: with PROXY_READ_TIMEOUT shorter than the pool keeps
// connections, the stale-connection probe must not take the deadline for
// the app's close (and dial anew, closing the whole idle pool).
func TestPooledConnectionOutlivesReadTimeout(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	cfg := testConfig(app.upstream())
	cfg.ProxyReadTimeout = 100 * time.Millisecond
	p := startProxy(t, cfg)
	for i := 0; i < 3; i++ {
		sendSequentially(t, p, getRequest)
		time.Sleep(250 * time.Millisecond) // past the deadline, within the pool's idle time
	}
	if got := app.connections(); got != 1 {
		p.dumpErrors(t)
		t.Errorf("%d connections to the app for 3 requests 250 ms apart, want 1", got)
	}
}

// Under steady traffic the connection to the app is reused.
func TestKeepAliveToApp(t *testing.T) {
	app := startScriptedApp(t, answer(okResponse))
	p := startProxy(t, testConfig(app.upstream()))
	for i := 0; i < 5; i++ {
		sendSequentially(t, p, getRequest)
	}
	if got := app.connections(); got != 1 {
		t.Errorf("%d connections to the app for 5 sequential requests, want 1", got)
	}
}

// A unix-socket app, as gunicorn --bind unix:/run/app.sock.
func TestUnixSocketUpstream(t *testing.T) {
	path := t.TempDir() + "/app.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	app := &scriptedApp{ln: ln, open: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				answer(okResponse)(c, bufio.NewReader(c), app)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	p := startProxy(t, testConfig(Upstream{Network: "unix", Address: path}))
	if got := sendSequentially(t, p, getRequest, postRequest); got[0] != 200 || got[1] != 200 {
		t.Fatalf("statuses %v", got)
	}
	if got := app.received(); len(got) != 2 || !strings.Contains(got[0], "Host: h\r\n") {
		t.Errorf("app received %q", got)
	}
}
