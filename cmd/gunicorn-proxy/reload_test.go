package main

// SIGHUP after a certificate renewal: new handshakes get the new pair,
// connections already open carry on, and a broken pair is refused with the
// reason while the old one stays in service.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func tlsTestdata(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../tlsgen/testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// install puts a certificate and key where the proxy reads them the way
// certbot renews: write aside, then rename over, so the proxy never reads
// half a file unless the test means it to.
func install(t testing.TB, dir string, crt, key []byte) {
	t.Helper()
	for name, data := range map[string][]byte{"tls.crt": crt, "tls.key": key} {
		tmp := filepath.Join(dir, name+".new")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlsConn is a keep-alive client connection to the proxy.
type tlsConn struct {
	conn *tls.Conn
	r    *bufio.Reader
}

func dialTLS(t testing.TB, addr string) *tlsConn {
	t.Helper()
	// Which certificate comes back is the point, not whether it verifies.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}) //nolint:gosec
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tlsConn{conn: c, r: bufio.NewReader(c)}
}

// leaf is the certificate the server presented, as PEM-free DER.
func (c *tlsConn) leaf() []byte { return c.conn.ConnectionState().PeerCertificates[0].Raw }

// get sends a keep-alive request on the connection and reads the answer.
func (c *tlsConn) get(t testing.TB, path string) int {
	t.Helper()
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.conn, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatalf("writing on the open connection: %v", err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("reading on the open connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Errorf("the proxy closed the keep-alive connection")
	}
	return resp.StatusCode
}

func derOf(t testing.TB, pemFile string) []byte {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(pemFile, strings.TrimSuffix(pemFile, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return pair.Certificate[0]
}

func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	g := startGunicorn(t, 2, "")
	td := tlsTestdata(t)
	dir := t.TempDir()
	rsaCrt, rsaKey := readFile(t, td+"/rsa.crt"), readFile(t, td+"/rsa.key")
	ecCrt, ecKey := readFile(t, td+"/ec.crt"), readFile(t, td+"/ec.key")
	rsaDER, ecDER := derOf(t, td+"/rsa.crt"), derOf(t, td+"/ec.crt")
	install(t, dir, rsaCrt, rsaKey)
	p := startProxy(t, g.bind, "SSL_CRT="+dir+"/tls.crt", "SSL_KEY="+dir+"/tls.key")

	old := dialTLS(t, p.addr)
	if !bytes.Equal(old.leaf(), rsaDER) {
		t.Fatal("the proxy did not start with the RSA certificate")
	}
	if status := old.get(t, "/"); status != 200 {
		t.Fatalf("before the reload: %d", status)
	}

	// The renewal.
	install(t, dir, ecCrt, ecKey)
	p.signal(syscall.SIGHUP)
	eventually(t, "the reload reported", func() bool {
		return strings.Contains(p.stderr.String(), "SIGHUP: TLS certificate reloaded")
	})
	if status := old.get(t, "/"); status != 200 {
		t.Errorf("the connection open across the reload: %d", status)
	}
	if !bytes.Equal(dialTLS(t, p.addr).leaf(), ecDER) {
		t.Error("a new handshake after the reload did not get the new certificate")
	}

	// Broken renewals: each refused, with why, and the EC pair kept.
	broken := []struct {
		name     string
		crt, key []byte
		why      string
	}{
		{"key from another pair", ecCrt, rsaKey, "does not match the key"},
		{"certificate half written", ecCrt[:len(ecCrt)/2], ecKey, "no PEM certificate"},
		{"expired certificate", readFile(t, td+"/expired.crt"), ecKey, "expired"},
		{"empty key", ecCrt, nil, "empty"},
	}
	for i, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			install(t, dir, tt.crt, tt.key)
			p.signal(syscall.SIGHUP)
			eventually(t, "the refusal reported", func() bool {
				return strings.Count(p.stderr.String(), "new certificate refused, still serving the old one") == i+1
			})
			lines := strings.Split(p.stderr.String(), "\n")
			var refusal string
			for _, l := range lines {
				if strings.Contains(l, "new certificate refused") {
					refusal = l
				}
			}
			if !strings.Contains(refusal, tt.why) {
				t.Errorf("the refusal does not say why (%q): %s", tt.why, refusal)
			}
			if !bytes.Equal(dialTLS(t, p.addr).leaf(), ecDER) {
				t.Error("a new handshake did not get the certificate kept")
			}
			if status := old.get(t, "/"); status != 200 {
				t.Errorf("the connection open since the start: %d", status)
			}
		})
	}
	if strings.Count(p.stderr.String(), "TLS certificate reloaded") != 1 {
		t.Errorf("a broken pair was reported as loaded:\n%s", p.stderr)
	}
}
