package main

import (
	"bufio"
	"context"
	"embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// The proxies the bench compares, plus "direct": the load generator talks to
// the backend itself, the ceiling no proxy can beat.
const (
	tGunicornProxy = "gunicorn-proxy"
	tNginx         = "nginx"
	tHAProxy       = "haproxy"
	tDirect        = "direct"
)

var allTargets = []string{tGunicornProxy, tNginx, tHAProxy, tDirect}

//go:embed templates/*.tmpl
var templatesFS embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(templatesFS, "templates/*.tmpl"))

// configData fills the nginx and HAProxy templates.
type configData struct {
	Dir               string
	Port              int
	BackendPort       int
	Workers           int
	MaxConn           int
	WorkerConnections int
	RlimitNofile      int
	MaxBody           string // nginx size syntax, as MAX_BODY_SIZE
	MaxBodyBytes      int64
	Root              bool
	Gzip              bool // the scenario compresses (json64k-gzip)
}

// renderConfig renders templates/<name> into dir/<out>.
func renderConfig(name, dir, out string, d configData) (string, error) {
	p := filepath.Join(dir, out)
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := templates.ExecuteTemplate(f, name, d); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return p, f.Close()
}

// instance is one proxy (or none, for direct) in front of a fresh backend.
type instance struct {
	target    string
	backend   *proc
	proxy     *proc  // nil for direct
	addr      string // where the load generator connects
	pprofAddr string // gunicorn-proxy's PPROF_LISTEN, when profiling
}

// measured is the process group whose CPU and memory a run reports: the
// proxy, or the backend for direct.
func (in *instance) measured() *proc {
	if in.proxy != nil {
		return in.proxy
	}
	return in.backend
}

func (in *instance) stop() {
	in.proxy.stop(5 * time.Second)
	in.backend.stop(5 * time.Second)
}

// haproxyMaxConn is MAX_CONNECTIONS, lowered when the file limit cannot
// hold it: HAProxy refuses to start unless it can have 2 descriptors per
// connection (client and server side) plus a few.
func haproxyMaxConn(nofile uint64) int {
	return min(maxConnections, (int(nofile)-200)/2)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the driver's environment without anything that configures
// gunicorn-proxy (LOG above all), plus extra.
func childEnv(extra ...string) []string {
	drop := map[string]bool{}
	for _, k := range []string{"LISTEN", "PORT", "LOG", "MAX_CONNECTIONS", "MAX_BODY_SIZE", "SCHEME",
		"SSL_KEY", "SSL_CRT", "AUTO_SSL", "TRUSTED_PROXIES", "CLIENT_HEADER_TIMEOUT", "CLIENT_BODY_TIMEOUT",
		"KEEPALIVE_TIMEOUT", "PROXY_CONNECT_TIMEOUT", "PROXY_READ_TIMEOUT", "SHUTDOWN_TIMEOUT",
		"BUFFER_DIR", "BUFFER_MEMORY", "ADMIN_LISTEN", "PPROF_LISTEN", "GOMAXPROCS",
		"COMPRESS", "COMPRESS_LEVEL", "COMPRESS_MIN_LENGTH", "COMPRESS_TYPES",
		"RATE_LIMIT", "RATE_LIMIT_BURST", "RATE_LIMIT_NODELAY", "RATE_LIMIT_STATUS", "RATE_LIMIT_SIZE"} {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] || strings.HasPrefix(k, "HEADER_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startInstance starts a backend and the target in front of it, in dir, and
// waits until a request goes through. sc says whether the proxy compresses.
func (b *bench) startInstance(ctx context.Context, sc scenario, target, dir string, pprof bool) (*instance, error) {
	in := &instance{target: target}
	bport, err := freePort()
	if err != nil {
		return nil, err
	}
	baddr := "127.0.0.1:" + strconv.Itoa(bport)
	in.backend, err = startProc("backend", []string{b.backendBin, "-addr", baddr}, childEnv(), dir, filepath.Join(dir, "backend.log"), nil)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, baddr, in.backend); err != nil {
		in.stop()
		return nil, err
	}
	if target == tDirect {
		in.addr = baddr
		return in, nil
	}

	port, err := freePort()
	if err != nil {
		in.stop()
		return nil, err
	}
	in.addr = "127.0.0.1:" + strconv.Itoa(port)
	d := configData{
		Dir:               dir,
		Port:              port,
		BackendPort:       bport,
		Workers:           b.cfg.workers,
		MaxConn:           haproxyMaxConn(b.nofile),
		WorkerConnections: maxConnections + 240,
		RlimitNofile:      int(b.nofile),
		MaxBody:           maxBodySize,
		MaxBodyBytes:      maxBodyBytes,
		Root:              os.Geteuid() == 0,
		Gzip:              sc.compress,
	}
	logPath := filepath.Join(dir, target+".log")
	var argv, env []string
	switch target {
	case tGunicornProxy:
		argv = []string{b.proxyBin, baddr}
		env = childEnv(
			"LISTEN="+in.addr,
			"GOMAXPROCS="+strconv.Itoa(b.cfg.workers),
			"MAX_BODY_SIZE="+maxBodySize,
			"MAX_CONNECTIONS="+strconv.Itoa(maxConnections),
			"KEEPALIVE_TIMEOUT=65s",
			"CLIENT_HEADER_TIMEOUT=5s",
			"CLIENT_BODY_TIMEOUT=5s",
			"PROXY_CONNECT_TIMEOUT=5s",
			"PROXY_READ_TIMEOUT=60s",
			"BUFFER_MEMORY=64k",
			"BUFFER_DIR="+dir,
			"SHUTDOWN_TIMEOUT=2s",
		)
		// nginx's gzip is off unless the scenario compresses; so is ours.
		env = append(env, compressEnv(sc)...)
		if pprof {
			pp, err := freePort()
			if err != nil {
				in.stop()
				return nil, err
			}
			in.pprofAddr = "127.0.0.1:" + strconv.Itoa(pp)
			env = append(env, "PPROF_LISTEN="+in.pprofAddr)
		}
		env = append(env, b.cfg.proxyEnv...)
	case tNginx:
		conf, err := renderConfig("nginx.conf.tmpl", dir, "nginx.conf", d)
		if err != nil {
			in.stop()
			return nil, err
		}
		argv = []string{b.tools["nginx"], "-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;"}
		env = childEnv()
	case tHAProxy:
		conf, err := renderConfig("haproxy.cfg.tmpl", dir, "haproxy.cfg", d)
		if err != nil {
			in.stop()
			return nil, err
		}
		argv = []string{b.tools["haproxy"], "-f", conf, "-db"}
		env = childEnv()
	default:
		in.stop()
		return nil, fmt.Errorf("unknown proxy %q", target)
	}
	in.proxy, err = startProc(target, argv, env, dir, logPath, nil)
	if err != nil {
		in.stop()
		return nil, err
	}
	if err := waitReady(ctx, in.addr, in.proxy); err != nil {
		tail := in.proxy.logTail()
		if target == tNginx {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				tail += "\n" + lastLines(b, 10)
			}
		}
		in.stop()
		return nil, fmt.Errorf("%w\n%s", err, tail)
	}
	return in, nil
}

// compressEnv is gunicorn-proxy's compression setting for sc: off, or the
// old image's gzip settings (level 5 from 256 bytes), which are the
// defaults, written out so the run says what it measured.
func compressEnv(sc scenario) []string {
	if sc.compress {
		return []string{"COMPRESS=on", "COMPRESS_LEVEL=5", "COMPRESS_MIN_LENGTH=256"}
	}
	return []string{"COMPRESS=off"}
}

// contentEncoding makes one GET with Accept-Encoding and returns the
// answer's Content-Encoding.
func contentEncoding(addr, path, acceptEncoding string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: %s\r\nConnection: close\r\n\r\n", path, addr, acceptEncoding); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("Content-Encoding"), err
}

// waitReady polls GET /small on addr until it answers 200, p exits, or 15 s
// pass.
func waitReady(ctx context.Context, addr string, p *proc) error {
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited during start (%v): %s", p.name, p.err, p.logTail())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		status, err := getOnce(addr, "/small", time.Second)
		if err == nil && status == 200 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s on %s not ready after 15s: %v", p.name, addr, last)
}

// getOnce makes one GET on a new connection and reads the whole answer.
func getOnce(addr, path string, timeout time.Duration) (int, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		return 0, err
	}
	return readResponse(bufio.NewReader(c))
}

// readResponse reads one HTTP/1.1 response, body included, and returns its
// status.
func readResponse(br *bufio.Reader) (int, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}
