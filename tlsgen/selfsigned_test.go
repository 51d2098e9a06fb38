package tlsgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedHandshake(t *testing.T) {
	cert, err := SelfSigned([]string{"proxy-host", "localhost", "127.0.0.1", "::1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Intermediate()
	cfg.Certificates = []tls.Certificate{cert}
	srv := startServer(t, cfg)
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)

	for _, r := range []struct {
		serverName string
		ok         bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"proxy-host", true},
		// Controls: the client does check names.
		{"example.com", false},
		{"10.0.0.1", false},
	} {
		t.Run(r.serverName, func(t *testing.T) {
			state, err := dial(srv.addr, &tls.Config{RootCAs: roots, ServerName: r.serverName})
			srv.serverOutcome(t)
			if r.ok && err != nil {
				t.Fatal(err)
			}
			if !r.ok {
				if _, ok := errors.AsType[*tls.CertificateVerificationError](err); !ok {
					t.Fatalf("error %v, want a certificate verification error", err)
				}
				return
			}
			if !state.PeerCertificates[0].Equal(cert.Leaf) {
				t.Fatal("served another certificate")
			}
		})
	}
}

func TestSelfSignedFields(t *testing.T) {
	now := time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)
	cert, err := SelfSigned([]string{"", "proxy-host", "localhost", "127.0.0.1", "::1", "localhost", "::1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	// Check what was encoded, not the template.
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(cert.Leaf) || len(cert.Certificate) != 1 {
		t.Fatal("Leaf is not the certificate served")
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"CommonName", leaf.Subject.CommonName, "proxy-host"},
		{"DNSNames", leaf.DNSNames, []string{"proxy-host", "localhost"}},
		{"IPAddresses", leaf.IPAddresses, []net.IP{net.ParseIP("127.0.0.1").To4(), net.ParseIP("::1")}},
		{"NotBefore", leaf.NotBefore, now.Add(-time.Hour)},
		{"NotAfter", leaf.NotAfter, now.Add(-time.Hour).AddDate(1, 0, 0)},
		{"KeyUsage", leaf.KeyUsage, x509.KeyUsageDigitalSignature},
		{"ExtKeyUsage", leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{"IsCA", leaf.IsCA, false},
		{"Issuer", leaf.Issuer.String(), leaf.Subject.String()},
	}
	for _, c := range checks {
		if !equalValues(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Errorf("key %T is not the certificate's ECDSA P-256 key", cert.PrivateKey)
	}
	if n := leaf.SerialNumber.BitLen(); n < 64 || n > 128 {
		t.Errorf("serial of %d bits, want up to 128 random bits", n)
	}
	again, err := SelfSigned([]string{"proxy-host"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if again.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates with the same serial")
	}
}

// equalValues compares the few kinds of value TestSelfSignedFields checks.
func equalValues(got, want any) bool {
	switch want := want.(type) {
	case []string:
		return slices.Equal(got.([]string), want)
	case []x509.ExtKeyUsage:
		return slices.Equal(got.([]x509.ExtKeyUsage), want)
	case []net.IP:
		return slices.EqualFunc(got.([]net.IP), want, net.IP.Equal)
	case time.Time:
		return got.(time.Time).Equal(want)
	}
	return got == want
}

func TestSelfSignedNeedsAHost(t *testing.T) {
	for _, hosts := range [][]string{nil, {""}, {"", ""}} {
		if _, err := SelfSigned(hosts, time.Now()); err == nil || !strings.Contains(err.Error(), "no host name") {
			t.Errorf("SelfSigned(%q): %v, want an error saying there is no host name", hosts, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	// What openssl x509 -noout -fingerprint -sha256 printed for the fixture.
	out := strings.TrimSpace(string(readFixture(t, "rsa.crt.sha256")))
	_, want, ok := strings.Cut(out, "Fingerprint=")
	if !ok {
		t.Fatalf("unexpected openssl output %q", out)
	}
	if got := Fingerprint(readCertificates(t, fixture("rsa.crt"))[0]); got != want {
		t.Errorf("Fingerprint(rsa.crt) = %s, openssl says %s", got, want)
	}

	cert, err := SelfSigned([]string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	var pairs []string
	for _, b := range sum {
		pairs = append(pairs, strings.ToUpper(hex.EncodeToString([]byte{b})))
	}
	if got, want := Fingerprint(cert.Leaf), strings.Join(pairs, ":"); got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
}
