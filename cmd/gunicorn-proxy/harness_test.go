package main

// The integration harness: the real binary, built once, in front of a real
// gunicorn serving the Flask app in testdata/app. Nothing is mocked and
// nothing is skipped: a machine without gunicorn fails these tests.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the gunicorn-proxy built for this test run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gunicorn-proxy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "gunicorn-proxy")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Debian's gunicorn, run by Debian's Python, which has Flask; a python3
// earlier on PATH (pyenv) may not.
const gunicornPath = "/usr/bin/gunicorn"

var appDir, _ = filepath.Abs("../../testdata/app")

// child is a child started in its own child group, so that stopping it
// stops its children (gunicorn's workers) and nothing else.
type child struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

func start(t testing.TB, dir string, env []string, name string, args ...string) *child {
	t.Helper()
	p := &child{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// signal sends sig to the child alone.
func (p *child) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// stop ends the whole child group: SIGTERM, then SIGKILL after 10 s.
func (p *child) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// wait returns the exit code once the child has ended.
func (p *child) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("still running after %v; stderr:\n%s", within, p.stderr)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("waiting: %v", p.err)
	return -1
}

// gunicorn is a running gunicorn serving testdata/app.
type gunicorn struct {
	*child
	bind string // what the proxy is given: host:port or unix:/path
}

func startGunicorn(t testing.TB, workers int, bind string, extra ...string) *gunicorn {
	t.Helper()
	if _, err := os.Stat(gunicornPath); err != nil {
		t.Fatalf("gunicorn is not installed (%v): apt-get install gunicorn python3-flask", err)
	}
	if bind == "" {
		bind = freeAddr(t)
	}
	args := append([]string{"-c", "gunicorn.conf.py", "--workers", fmt.Sprint(workers), "--bind", bind}, extra...)
	args = append(args, "app:app")
	g := &gunicorn{child: start(t, appDir, os.Environ(), gunicornPath, args...), bind: bind}
	waitListening(t, g.child, bind)
	return g
}

// proxyProcess is a running gunicorn-proxy.
type proxyProcess struct {
	*child
	addr string // 127.0.0.1:port it listens on
}

func startProxy(t testing.TB, upstream string, env ...string) *proxyProcess {
	t.Helper()
	addr := freeAddr(t)
	full := append([]string{"LISTEN=" + addr, "PATH=" + os.Getenv("PATH")}, env...)
	p := &proxyProcess{child: start(t, t.TempDir(), full, binary, upstream), addr: addr}
	waitListening(t, p.child, addr)
	return p
}

func (p *proxyProcess) url(path string) string { return "http://" + p.addr + path }

// freeAddr finds a port nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(t testing.TB, p *child, bind string) {
	t.Helper()
	network, address := "tcp", bind
	if path, ok := strings.CutPrefix(bind, "unix:"); ok {
		network, address = "unix", path
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout(network, address, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("exited before listening on %s: %v\nstderr:\n%s", bind, p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 20 s\nstderr:\n%s", bind, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// client is an HTTP client that neither follows redirects nor reuses
// connections across tests.
func client() *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableCompression: true},
	}
}

func get(t testing.TB, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Add(header[i], header[i+1])
		}
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// rawRequest writes raw bytes on a new connection and returns the raw
// answer, up to the server's close or the deadline.
func rawRequest(t testing.TB, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	var b strings.Builder
	resp.Write(&b)
	return b.String()
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
