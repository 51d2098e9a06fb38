package tlsgen

import (
	"crypto/tls"
	"errors"
	"sync"
	"testing"
)

func TestKeyPairStoreReload(t *testing.T) {
	dir := t.TempDir()
	install := func(certName, keyName string) (certFile, keyFile string) {
		return writeFile(t, dir, "tls.crt", readFixture(t, certName)),
			writeFile(t, dir, "tls.key", readFixture(t, keyName))
	}
	certFile, keyFile := install("rsa.crt", "rsa-pkcs8-aes256.key")

	store, err := LoadKeyPairStore(certFile, keyFile, [][]byte{[]byte("wrong"), rightPassword})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Intermediate()
	cfg.GetCertificate = store.GetCertificate
	srv := startServer(t, cfg)
	client := &tls.Config{RootCAs: rootsOf(t, "rsa.crt", "ec.crt"), ServerName: "localhost"}

	// served checks that a new handshake gets the first certificate of certName.
	served := func(certName string) {
		t.Helper()
		state, err := dial(srv.addr, client)
		if err != nil {
			t.Fatalf("client: %v; server: %v", err, srv.serverOutcome(t))
		}
		if err := srv.serverOutcome(t); err != nil {
			t.Fatal(err)
		}
		want := readCertificates(t, fixture(certName))[0]
		if !state.PeerCertificates[0].Equal(want) {
			t.Fatalf("served %s, want %s's %s", Describe(state.PeerCertificates[0]), certName, Describe(want))
		}
		if !store.Leaf().Equal(want) {
			t.Fatalf("Leaf() is %s, want %s's", Describe(store.Leaf()), certName)
		}
	}
	served("rsa.crt")

	// A renewal: a new pair, of another key type and encoding.
	install("ec.crt", "ec-legacy-aes256.key")
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	served("ec.crt")

	// Broken renewals: each is refused and the pair in service stays.
	for _, broken := range []struct {
		name, cert, key string
		want            error
	}{
		{"new certificate, old key", "rsa.crt", "ec-legacy-aes256.key", errMismatch},
		{"half-written key", "ec.crt", "", errEmptyFile},
		{"expired", "expired.crt", "ec.key", errExpired},
		{"garbage", "password.txt", "password.txt", errNoCertificate},
	} {
		t.Run(broken.name, func(t *testing.T) {
			writeFile(t, dir, "tls.crt", readFixture(t, broken.cert))
			key := []byte(nil)
			if broken.key != "" {
				key = readFixture(t, broken.key)
			}
			writeFile(t, dir, "tls.key", key)
			if err := store.Reload(); !errors.Is(err, broken.want) {
				t.Fatalf("Reload: %v, want %v", err, broken.want)
			}
			served("ec.crt")
		})
	}

	// Mended: the next Reload serves the files again.
	install("rsa.crt", "rsa.key")
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	served("rsa.crt")
}

func TestLoadKeyPairStoreFails(t *testing.T) {
	store, err := LoadKeyPairStore(fixture("ec.crt"), fixture("other-ec.key"), nil)
	if store != nil || !errors.Is(err, errMismatch) {
		t.Fatalf("got %v, %v; want no store and %v", store, err, errMismatch)
	}
}

// TestKeyPairStoreConcurrentReload lets the race detector watch handshakes
// read the pair while Reload replaces it.
func TestKeyPairStoreConcurrentReload(t *testing.T) {
	store, err := LoadKeyPairStore(fixture("ec.crt"), fixture("ec.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if c, _ := store.GetCertificate(nil); c == nil || c.Leaf == nil {
					t.Error("no certificate")
					return
				}
			}
		})
	}
	for range 10 {
		if err := store.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

func TestGetCertificateDoesNotAllocate(t *testing.T) {
	store, err := LoadKeyPairStore(fixture("ec.crt"), fixture("ec.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "localhost"}
	if n := testing.AllocsPerRun(1000, func() { store.GetCertificate(hello) }); n != 0 {
		t.Fatalf("%v allocations per GetCertificate, want 0", n)
	}
}

func BenchmarkGetCertificate(b *testing.B) {
	store, err := LoadKeyPairStore(fixture("ec.crt"), fixture("ec.key"), nil)
	if err != nil {
		b.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "localhost"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c, _ := store.GetCertificate(hello); c == nil {
				b.Fatal("no certificate")
			}
		}
	})
}

func TestDescribe(t *testing.T) {
	rows := []struct{ cert, want string }{
		{"rsa.crt", "CN=localhost; names localhost, 127.0.0.1; self-signed; valid 2020-01-01 00:00:00 UTC to 2125-01-01 00:00:00 UTC"},
		{"chain.crt", "CN=localhost; names localhost, 127.0.0.1; issuer CN=tlsgen test CA; valid 2020-01-01 00:00:00 UTC to 2125-01-01 00:00:00 UTC"},
		{"expired.crt", "CN=localhost; names localhost, 127.0.0.1; self-signed; valid 2024-01-01 00:00:00 UTC to 2025-01-01 00:00:00 UTC"},
	}
	for _, r := range rows {
		if got := Describe(readCertificates(t, fixture(r.cert))[0]); got != r.want {
			t.Errorf("Describe(%s) = %q, want %q", r.cert, got, r.want)
		}
	}
}
