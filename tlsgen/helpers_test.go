package tlsgen

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The password of every encrypted fixture (see testdata/README).
var rightPassword = []byte("correct horse battery staple")

const ioTimeout = 5 * time.Second

// testServer is a TLS server on 127.0.0.1 that completes each handshake,
// writes "ok" and hangs up, and reports each handshake's outcome on its side.
type testServer struct {
	addr     string
	outcomes chan error
}

func startServer(t *testing.T, cfg *tls.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &testServer{addr: ln.Addr().String(), outcomes: make(chan error, 64)}
	tlsLn := tls.NewListener(ln, cfg)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		tlsLn.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := tlsLn.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(ioTimeout))
				err := conn.(*tls.Conn).Handshake()
				if err == nil {
					_, err = conn.Write([]byte("ok"))
				}
				srv.outcomes <- err
			})
		}
	})
	return srv
}

// serverOutcome returns the server side's result of the next handshake.
func (s *testServer) serverOutcome(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.outcomes:
		return err
	case <-time.After(ioTimeout):
		t.Fatal("the server saw no handshake")
		return nil
	}
}

// dial handshakes with addr and reads the server's "ok", so that anything
// the server sends after its handshake, such as a TLS 1.3 session ticket, has
// reached the client by the time it returns.
func dial(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: ioTimeout}, Config: cfg}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(conn, make([]byte, 2)); err != nil {
		return tls.ConnectionState{}, err
	}
	return conn.(*tls.Conn).ConnectionState(), nil
}

// fixture returns the path of a file in testdata.
func fixture(name string) string {
	return filepath.Join("testdata", name)
}

// loadFixture loads a certificate and key from testdata.
func loadFixture(t *testing.T, certName, keyName string) *tls.Certificate {
	t.Helper()
	pair, err := loadKeyPair(fixture(certName), fixture(keyName), [][]byte{rightPassword}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// readCertificates returns every certificate in a PEM file, parsed
// independently of the code under test.
func readCertificates(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("no certificate in %s", path)
	}
	return certs
}

// rootsOf is a pool trusting the first certificate of each file, the
// fixtures being self-signed.
func rootsOf(t *testing.T, certNames ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, name := range certNames {
		pool.AddCert(readCertificates(t, fixture(name))[0])
	}
	return pool
}

// writeFile writes a file into dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
