package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunicorn-proxy/gunicorn-proxy/tlsgen"
)

// seen is what the test app reports about the request it received.
type seen struct {
	Method      string      `json:"method"`
	RawURI      string      `json:"raw_uri"`
	URL         string      `json:"url"`
	External    string      `json:"external"`
	RemoteAddr  string      `json:"remote_addr"`
	Scheme      string      `json:"scheme"`
	Headers     [][2]string `json:"headers"`
	EnvironKeys []string    `json:"environ_keys"`
	BodyLength  int         `json:"body_length"`
	BodySHA256  string      `json:"body_sha256"`
	PID         int         `json:"pid"`
}

func (s seen) header(name string) []string {
	var values []string
	for _, h := range s.Headers {
		if strings.EqualFold(h[0], name) {
			values = append(values, h[1])
		}
	}
	return values
}

func decodeSeen(t testing.TB, body []byte) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("the app's answer is not its JSON report: %v\n%s", err, body)
	}
	return s
}

// Seed 001: behind `docker run -p 18080:8000`, the client used port 18080,
// and a redirect Flask builds with url_for must say so — not 8000, not 80.
func TestRedirectKeepsTheClientsPort(t *testing.T) {
	g := startGunicorn(t, 2, "")
	tests := []struct {
		env, host, want string
	}{
		{"", "example.com:18080", "http://example.com:18080/landed"},
		{"", "example.com", "http://example.com/landed"},
		{"SCHEME=https", "example.com", "https://example.com/landed"},
		{"SCHEME=https", "example.com:8443", "https://example.com:8443/landed"},
	}
	for _, tt := range tests {
		t.Run(tt.env+" "+tt.host, func(t *testing.T) {
			var env []string
			if tt.env != "" {
				env = append(env, tt.env)
			}
			p := startProxy(t, g.bind, env...)
			resp, _ := get(t, p.url("/redirect"), "Host", tt.host)
			if resp.StatusCode != 302 || resp.Header.Get("Location") != tt.want {
				t.Errorf("%d Location %q, want %q", resp.StatusCode, resp.Header.Get("Location"), tt.want)
			}
		})
	}
}

// What the app sees, through werkzeug's ProxyFix: the client's address,
// host and port, and none of the headers a client must not be able to set.
func TestAppSeesTheClient(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind)
	_, body := get(t, p.url("/?q=1&q=%2F"),
		"Host", "example.com:18080",
		"X-Forwarded-For", "6.6.6.6",
		"X_Forwarded_For", "6.6.6.6",
		"X-Forwarded-Host", "evil.example",
		"X-Real-IP", "6.6.6.6",
		"Connection", "X-Hop",
		"X-Hop", "secret",
		"Cookie", "a=1;b=2")
	s := decodeSeen(t, body)
	if s.RemoteAddr != "127.0.0.1" || s.URL != "http://example.com:18080/?q=1&q=%2F" || s.External != "http://example.com:18080/" ||
		s.Scheme != "http" || s.RawURI != "/?q=1&q=%2F" {
		t.Errorf("the app saw remote %s, url %s, external %s, scheme %s, raw %s", s.RemoteAddr, s.URL, s.External, s.Scheme, s.RawURI)
	}
	for name, want := range map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Host": "example.com:18080",
		"X-Forwarded-Port": "18080", "X-Forwarded-Proto": "http", "Cookie": "a=1;b=2",
	} {
		if got := s.header(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s: the app saw %q, want %q", name, got, want)
		}
	}
	for _, key := range s.EnvironKeys {
		if key == "HTTP_X_HOP" || key == "HTTP_CONNECTION" {
			t.Errorf("%s reached the app", key)
		}
	}
}

func TestBodiesAndTheLimit(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind, "MAX_BODY_SIZE=1m", "HEADER_X_FRAME_OPTIONS=DENY")
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB exactly
	sum := sha256.Sum256(body)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var reader io.Reader = bytes.NewReader(body)
			if chunked {
				reader = io.MultiReader(reader) // unknown length: Go sends chunked
			}
			req, _ := http.NewRequest("POST", p.url("/"), reader)
			resp, got := do(t, req)
			s := decodeSeen(t, got)
			if resp.StatusCode != 200 || s.BodyLength != len(body) || s.BodySHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("status %d, the app got %d bytes", resp.StatusCode, s.BodyLength)
			}

			over := io.MultiReader(bytes.NewReader(body), strings.NewReader("x"))
			req, _ = http.NewRequest("POST", p.url("/"), over)
			if !chunked {
				req.ContentLength = int64(len(body) + 1)
			}
			resp, got = do(t, req)
			if resp.StatusCode != 413 || string(got) != "413 Request Entity Too Large\n" || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("one byte over: %d %q %v", resp.StatusCode, got, resp.Header)
			}
		})
	}
}

func TestAppFailures(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind, "PROXY_READ_TIMEOUT=1", "HEADER_X_FRAME_OPTIONS=DENY")
	down := startProxy(t, freeAddr(t), "HEADER_X_FRAME_OPTIONS=DENY")
	tests := []struct {
		url    string
		status int
	}{
		{p.url("/sleep/3"), 504},
		{p.url("/die"), 502},
		{p.url("/crash"), 502},
		{down.url("/"), 502},
		{p.url("/status/503"), 503},
	}
	for _, tt := range tests {
		resp, body := get(t, tt.url)
		if resp.StatusCode != tt.status || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %d %q %v, want %d", tt.url, resp.StatusCode, body, resp.Header, tt.status)
		}
	}
	if !strings.Contains(p.stderr.String(), "PROXY_READ_TIMEOUT") {
		t.Errorf("the cause of the 504 is not in the error log:\n%s", p.stderr)
	}
	if resp, _ := get(t, p.url("/pid")); resp.StatusCode != 200 {
		t.Errorf("after the failures: %d", resp.StatusCode)
	}
}

func TestResponseHeaders(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind, "HEADER_STRICT_TRANSPORT_SECURITY=max-age=31536000")
	resp, _ := get(t, p.url("/hop-by-hop"))
	h := resp.Header
	if h.Get("Server") != "" || h.Get("Keep-Alive") != "" || h.Get("Proxy-Authenticate") != "" || h.Get("Upgrade") != "" {
		t.Errorf("hop-by-hop or Server headers reached the client: %v", h)
	}
	if got := h.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q", got)
	}
	if got := h.Values("Set-Cookie"); len(got) != 2 || h.Get("X-Kept") != "yes" {
		t.Errorf("app headers lost: %v", h)
	}
}

func TestTLS(t *testing.T) {
	g := startGunicorn(t, 2, "")
	testdata, _ := filepath.Abs("../../tlsgen/testdata")
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(filepath.Join(testdata, "rsa.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pem)
	for _, env := range [][]string{
		{"SSL_CRT=" + filepath.Join(testdata, "rsa.crt"), "SSL_KEY=" + filepath.Join(testdata, "rsa.key")},
		{"SSL_CRT=" + filepath.Join(testdata, "rsa.crt"), "SSL_KEY=" + filepath.Join(testdata, "rsa-pkcs8-aes256.key"),
			"SSL_PASSWORD_FILE=" + filepath.Join(testdata, "password.txt")},
	} {
		t.Run(filepath.Base(env[1]), func(t *testing.T) {
			p := startProxy(t, g.bind, env...)
			c := client()
			c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}
			resp, err := c.Get("https://" + p.addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			s := decodeSeen(t, body)
			_, port, _ := net.SplitHostPort(p.addr)
			if resp.TLS.Version < tls.VersionTLS12 || resp.TLS.NegotiatedProtocol == "h2" || s.Scheme != "https" ||
				s.URL != "https://"+p.addr+"/" || s.header("X-Forwarded-Port")[0] != port {
				t.Errorf("TLS %x %q; the app saw %s %s %q", resp.TLS.Version, resp.TLS.NegotiatedProtocol, s.Scheme, s.URL, s.header("X-Forwarded-Port"))
			}
			// Plain HTTP to the TLS port is refused, not served.
			if c, err := net.Dial("tcp", p.addr); err == nil {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				got, _ := io.ReadAll(c)
				c.Close()
				if bytes.Contains(got, []byte("HTTP/1.1 200")) {
					t.Error("plain HTTP was served on the TLS port")
				}
			}
		})
	}
}

func TestAutoSSL(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind, "AUTO_SSL=1")
	printed := regexp.MustCompile(`SHA-256 fingerprint ([0-9A-F:]{95})`).FindStringSubmatch(p.stderr.String())
	if printed == nil {
		t.Fatalf("no fingerprint on stderr:\n%s", p.stderr)
	}
	conn, err := tls.Dial("tcp", p.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cert := conn.ConnectionState().PeerCertificates[0]
	if got := tlsgen.Fingerprint(cert); got != printed[1] {
		t.Errorf("served certificate %s, printed %s", got, printed[1])
	}
	if err := cert.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("over AUTO_SSL: %v %v", resp, err)
	}
}

func TestUnixSocketUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	g := startGunicorn(t, 1, "unix:"+sock)
	p := startProxy(t, g.bind)
	resp, body := get(t, p.url("/redirect"), "Host", "example.com:18080")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://example.com:18080/landed" {
		t.Errorf("%d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// The point of the whole product: a client trickling its body holds no
// gunicorn worker. With one sync worker, other requests keep being served
// while the slow upload is still arriving.
func TestSlowUploadDoesNotHoldTheWorker(t *testing.T) {
	g := startGunicorn(t, 1, "")
	p := startProxy(t, g.bind)
	const size = 30
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", size)
	var sent sync.WaitGroup
	var progress int
	var mu sync.Mutex
	sent.Add(1)
	go func() {
		defer sent.Done()
		for i := 0; i < size; i++ {
			time.Sleep(100 * time.Millisecond)
			c.Write([]byte("x"))
			mu.Lock()
			progress++
			mu.Unlock()
		}
	}()
	for i := 0; i < 10; i++ {
		if resp, _ := get(t, p.url("/pid")); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	mu.Lock()
	during := progress
	mu.Unlock()
	if during >= size {
		t.Fatalf("the fast requests only finished after the upload (%d/%d bytes sent)", during, size)
	}
	sent.Wait()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if s := decodeSeen(t, body); s.BodyLength != size {
		t.Errorf("the app got %d bytes of the slow upload", s.BodyLength)
	}
}

// The other direction: a client reading a 32 MiB answer slowly holds no
// worker either. The proxy has the whole answer before it writes a byte.
func TestSlowReaderDoesNotHoldTheWorker(t *testing.T) {
	g := startGunicorn(t, 1, "")
	p := startProxy(t, g.bind)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	io.WriteString(c, "GET /big/32 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReaderSize(c, 16<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.ContentLength != 32<<20 {
		t.Fatalf("%v, Content-Length %d", err, resp.ContentLength)
	}
	chunk := make([]byte, 64<<10)
	read := 0
	if n, err := io.ReadFull(resp.Body, chunk); err == nil {
		read += n
	}
	// The single worker is free while most of the answer is still unread.
	if r, _ := get(t, p.url("/pid")); r.StatusCode != 200 {
		t.Fatalf("the worker is still busy: %d", r.StatusCode)
	}
	if read >= 32<<20 {
		t.Fatal("the whole answer was read before the check")
	}
	offset := 0
	check := func(b []byte) {
		for _, x := range b {
			if x != byte(offset%256) {
				t.Fatalf("byte %d is %d", offset, x)
			}
			offset++
		}
	}
	check(chunk[:read])
	for {
		n, err := resp.Body.Read(chunk)
		check(chunk[:n])
		read += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", read, err)
		}
	}
	if read != 32<<20 {
		t.Errorf("read %d bytes", read)
	}
}

// SIGTERM: stop accepting, let the requests in flight finish, exit 0.
func TestGracefulShutdown(t *testing.T) {
	g := startGunicorn(t, 2, "")
	p := startProxy(t, g.bind, "SHUTDOWN_TIMEOUT=10s")
	result := make(chan int, 1)
	go func() {
		resp, err := client().Get(p.url("/sleep/1"))
		if err != nil {
			result <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond) // the request is at the app
	p.signal(syscall.SIGTERM)
	if status := <-result; status != 200 {
		t.Errorf("the request in flight got %d", status)
	}
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d; stderr:\n%s", code, p.stderr)
	}
	if _, err := net.Dial("tcp", p.addr); err == nil {
		t.Error("still accepting after shutdown")
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args     []string
		env      []string
		code     int
		stderr   string
		stdout   string
		oneLiner bool
	}{
		{nil, nil, 1, "The server argument must be set.\n", "", true},
		{[]string{"--version"}, nil, 0, "", "gunicorn-proxy ", false},
		{[]string{"--help"}, nil, 0, "", "MAX_BODY_SIZE", false},
		{[]string{"app:8080"}, []string{"MAX_BODY_SIZE=big"}, 2, `gunicorn-proxy: MAX_BODY_SIZE="big": expected a size`, "", true},
		{[]string{"app:8080"}, []string{"TRUSTED_PROXIES=everyone"}, 2, `gunicorn-proxy: TRUSTED_PROXIES="everyone": expected`, "", true},
		{[]string{"app:8080"}, []string{"LOG=syslog:server=127.0.0.1,facilty=local0"}, 2, `gunicorn-proxy: LOG="syslog:server=127.0.0.1,facilty=local0": `, "", true},
		{[]string{"app:8080"}, []string{"SSL_KEY=/nonexistent.key", "SSL_CRT=/nonexistent.crt"}, 2, `gunicorn-proxy: SSL_CRT="/nonexistent.crt", SSL_KEY="/nonexistent.key": `, "", true},
		{[]string{"app"}, nil, 2, `gunicorn-proxy: server argument "app": expected host:port`, "", true},
		{[]string{"app:1", "app:2"}, nil, 2, "gunicorn-proxy: expected one server argument, got 2", "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.env, tt.args...), " "), func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Env = append([]string{"LISTEN=" + freeAddr(t)}, tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tt.code || !strings.HasPrefix(stderr.String(), tt.stderr) || !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("exit %d, stderr %q, stdout %.80q", code, stderr.String(), stdout.String())
			}
			if tt.oneLiner && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", stderr.String())
			}
		})
	}
}

// SIGTERM or SIGQUIT under load: every request the proxy accepted gets its
// whole answer; the others are refused at connect, never half-served.
func TestShutdownUnderLoad(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			g := startGunicorn(t, 4, "")
			p := startProxy(t, g.bind, "SHUTDOWN_TIMEOUT=20s")
			var (
				mu       sync.Mutex
				answered int
				refused  int
				bad      []string
				wg       sync.WaitGroup
			)
			stop := time.Now().Add(3 * time.Second)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					c := client()
					for i := 0; time.Now().Before(stop); i++ {
						path := "/big/1"
						if i%3 == 0 {
							path = "/sleep/0.3"
						}
						resp, err := c.Get(p.url(path))
						if err != nil {
							isRefused := strings.Contains(err.Error(), "connection refused")
							mu.Lock()
							if isRefused {
								refused++
							} else {
								bad = append(bad, err.Error())
							}
							mu.Unlock()
							if isRefused {
								return // the listener is closed: done
							}
							continue
						}
						body, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						mu.Lock()
						switch {
						case err != nil || resp.StatusCode != 200:
							bad = append(bad, fmt.Sprintf("%s: %d, %v", path, resp.StatusCode, err))
						case path == "/big/1" && len(body) != 1<<20:
							bad = append(bad, fmt.Sprintf("%s: %d bytes", path, len(body)))
						default:
							answered++
						}
						mu.Unlock()
					}
				}(w)
			}
			time.Sleep(time.Second)
			p.signal(sig)
			wg.Wait()
			if code := p.wait(t, 30*time.Second); code != 0 {
				t.Errorf("exit code %d\n%s", code, p.stderr)
			}
			if len(bad) > 0 {
				t.Errorf("%d requests half-served or failed, e.g. %q", len(bad), bad[0])
			}
			if answered == 0 {
				t.Error("no request was answered")
			}
			t.Logf("%v: %d answered, %d refused after the listener closed", sig, answered, refused)
		})
	}
}
