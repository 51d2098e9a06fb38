// Go's servers refuse TLS 1.0 and 1.1 by default; this setting restores the
// old default, TLS 1.0, in the test binary, so that the tests see
// Intermediate's own MinVersion at work rather than Go's default.
//
//go:debug tls10server=1

package tlsgen

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The TLS 1.2 suites of Mozilla's intermediate profile that Go implements.
var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func TestIntermediateReturnsAFreshConfig(t *testing.T) {
	a, b := Intermediate(), Intermediate()
	a.CipherSuites[0] = 0
	a.NextProtos[0] = "h2"
	if b.CipherSuites[0] == 0 || b.NextProtos[0] != "http/1.1" {
		t.Fatal("changing one Intermediate() config changed another")
	}
}

// handshakeServers serves the RSA and the ECDSA fixture pairs on 127.0.0.1,
// one server with Intermediate() and one that accepts anything Go can do.
// A handshake the first refuses must succeed with the second, so that a
// refusal is known to come from the profile, not from a broken test client.
func handshakeServers(t *testing.T) (strict, lenient *testServer) {
	certs := []tls.Certificate{*loadFixture(t, "rsa.crt", "rsa.key"), *loadFixture(t, "ec.crt", "ec.key")}

	cfg := Intermediate()
	cfg.Certificates = certs
	strict = startServer(t, cfg)

	var all []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		all = append(all, s.ID)
	}
	lenient = startServer(t, &tls.Config{
		Certificates: certs,
		MinVersion:   tls.VersionTLS10,
		CipherSuites: all,
	})
	return strict, lenient
}

func TestIntermediateAccepts(t *testing.T) {
	strict, _ := handshakeServers(t)
	roots := rootsOf(t, "rsa.crt", "ec.crt")

	type row struct {
		name    string
		client  *tls.Config
		version uint16
		suite   uint16 // 0: any
		curve   tls.CurveID
		alpn    string
	}
	rows := []row{
		{name: "TLS 1.3, Go defaults", client: &tls.Config{}, version: tls.VersionTLS13, curve: tls.X25519},
		{name: "TLS 1.3, HTTP/1.1 and h2 offered", client: &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
			version: tls.VersionTLS13, curve: tls.X25519, alpn: "http/1.1"},
	}
	for _, suite := range intermediateSuites {
		rows = append(rows, row{
			name:    "TLS 1.2 " + tls.CipherSuiteName(suite),
			client:  &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}},
			version: tls.VersionTLS12, suite: suite, curve: tls.X25519,
		})
	}
	for _, curve := range []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384} {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			rows = append(rows, row{
				name:    fmt.Sprintf("%s only, %s", curve, tls.VersionName(version)),
				client:  &tls.Config{MinVersion: version, MaxVersion: version, CurvePreferences: []tls.CurveID{curve}},
				version: version, curve: curve,
			})
		}
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			client := r.client.Clone()
			client.RootCAs, client.ServerName = roots, "localhost"
			state, err := dial(strict.addr, client)
			if err != nil {
				t.Fatalf("client: %v; server: %v", err, strict.serverOutcome(t))
			}
			if err := strict.serverOutcome(t); err != nil {
				t.Fatalf("server: %v", err)
			}
			if state.Version != r.version {
				t.Errorf("version %s, want %s", tls.VersionName(state.Version), tls.VersionName(r.version))
			}
			if r.suite != 0 && state.CipherSuite != r.suite {
				t.Errorf("suite %s, want %s", tls.CipherSuiteName(state.CipherSuite), tls.CipherSuiteName(r.suite))
			}
			if !slices.Contains(intermediateSuites, state.CipherSuite) && state.Version == tls.VersionTLS12 {
				t.Errorf("suite %s is not in the profile", tls.CipherSuiteName(state.CipherSuite))
			}
			if state.CurveID != r.curve {
				t.Errorf("key exchange %s, want %s", state.CurveID, r.curve)
			}
			if state.NegotiatedProtocol != r.alpn {
				t.Errorf("ALPN %q, want %q", state.NegotiatedProtocol, r.alpn)
			}
		})
	}
}

func TestIntermediateRefuses(t *testing.T) {
	strict, lenient := handshakeServers(t)
	roots := rootsOf(t, "rsa.crt", "ec.crt")

	type row struct {
		name   string
		client *tls.Config
		server string // what the server's handshake error says
	}
	rows := []row{
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
			"client offered only unsupported versions"},
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
			"client offered only unsupported versions"},
		{"P-521 only, TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.CurveP521}},
			"no key exchanges supported by both"},
		// Without a common curve, TLS 1.2 has no ECDHE, hence no suite.
		{"P-521 only, TLS 1.2", &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP521}},
			"no cipher suite supported by both"},
		{"h2 only", &tls.Config{NextProtos: []string{"h2"}},
			"unsupported application protocols"},
	}
	// Every other TLS 1.2 suite Go implements: CBC (TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
	// and its kin), RSA key exchange without forward secrecy, 3DES, RC4.
	for _, suite := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Contains(suite.SupportedVersions, tls.VersionTLS12) || slices.Contains(intermediateSuites, suite.ID) {
			continue
		}
		rows = append(rows, row{
			"TLS 1.2 " + suite.Name,
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite.ID}},
			"no cipher suite supported by both",
		})
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			client := r.client.Clone()
			client.RootCAs, client.ServerName = roots, "localhost"

			if _, err := dial(lenient.addr, client); err != nil {
				t.Fatalf("a server accepting anything refused this client too, so the test proves nothing: client: %v; server: %v",
					err, lenient.serverOutcome(t))
			}
			lenient.serverOutcome(t)

			if state, err := dial(strict.addr, client); err == nil {
				t.Fatalf("handshake succeeded: %s, %s", tls.VersionName(state.Version), tls.CipherSuiteName(state.CipherSuite))
			}
			if err := strict.serverOutcome(t); err == nil || !strings.Contains(err.Error(), r.server) {
				t.Fatalf("server error %v, want one saying %q", err, r.server)
			}
		})
	}
}

// countingCache counts the sessions a client is given to resume.
type countingCache struct {
	tls.ClientSessionCache
	stored int
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.stored++
	}
	c.ClientSessionCache.Put(key, cs)
}

func TestIntermediateIssuesNoSessionTickets(t *testing.T) {
	roots := rootsOf(t, "ec.crt")
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		// The control run enables tickets, to show the test can see them.
		for _, ticketsDisabled := range []bool{true, false} {
			name := tls.VersionName(version) + ", Intermediate()"
			if !ticketsDisabled {
				name += " with tickets enabled"
			}
			t.Run(name, func(t *testing.T) {
				cfg := Intermediate()
				cfg.Certificates = []tls.Certificate{*loadFixture(t, "ec.crt", "ec.key")}
				if !ticketsDisabled {
					cfg.SessionTicketsDisabled = false
				}
				srv := startServer(t, cfg)

				cache := &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
				client := &tls.Config{
					RootCAs: roots, ServerName: "localhost",
					MinVersion: version, MaxVersion: version,
					ClientSessionCache: cache,
				}
				var resumed bool
				for range 2 {
					state, err := dial(srv.addr, client)
					if err != nil {
						t.Fatal(err)
					}
					if err := srv.serverOutcome(t); err != nil {
						t.Fatal(err)
					}
					resumed = state.DidResume
				}
				if ticketsDisabled && (cache.stored > 0 || resumed) {
					t.Fatalf("%d tickets issued, second handshake resumed: %t", cache.stored, resumed)
				}
				if !ticketsDisabled && (cache.stored == 0 || !resumed) {
					t.Fatalf("control: tickets enabled but %d issued, second handshake resumed: %t", cache.stored, resumed)
				}
			})
		}
	}
}
