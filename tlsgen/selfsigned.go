package tlsgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// SelfSigned makes a certificate and key in memory for hosts, valid at now:
// what the proxy serves when it has no certificate of its own, typically
// behind a load balancer that encrypts to its backends without verifying
// them (AWS ALB does so). hosts are the names clients may use, such as
// os.Hostname(), "localhost", "127.0.0.1" and "::1"; IP addresses become IP
// subject alternative names, others DNS ones, empty and repeated entries are
// skipped, and the first is also the common name. The key is ECDSA P-256:
// fast to make and to sign with, and accepted by every TLS 1.2 client.
func SelfSigned(hosts []string, now time.Time) (tls.Certificate, error) {
	template := &x509.Certificate{
		// Start an hour early: a client whose clock runs a little behind
		// would otherwise reject a certificate made a moment ago. A year is
		// far beyond any process's life: the certificate is made anew at
		// every start.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(-time.Hour).AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, host := range hosts {
		if ip := net.ParseIP(host); ip != nil {
			if !slices.ContainsFunc(template.IPAddresses, ip.Equal) {
				template.IPAddresses = append(template.IPAddresses, ip)
			}
		} else if host != "" && !slices.Contains(template.DNSNames, host) {
			template.DNSNames = append(template.DNSNames, host)
		}
		if template.Subject.CommonName == "" {
			template.Subject = pkix.Name{CommonName: host}
		}
	}
	if template.Subject.CommonName == "" {
		return tls.Certificate{}, errors.New("self-signed certificate: no host name given")
	}

	// Every start makes a new certificate under the same issuer name, and
	// Firefox refuses one whose issuer and serial it has seen on different
	// contents (SEC_ERROR_REUSED_ISSUER_AND_SERIAL): 128 random bits keep
	// serials apart.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: serial number: %w", err)
	}
	template.SerialNumber = serial

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint returns the SHA-256 digest of cert's DER encoding as openssl
// x509 -fingerprint -sha256 prints it ("AB:CD:..."), so that whoever must
// trust a self-signed certificate can check it against what a client sees.
func Fingerprint(cert *x509.Certificate) string {
	const hexDigits = "0123456789ABCDEF"
	sum := sha256.Sum256(cert.Raw)
	out := make([]byte, 0, len(sum)*3-1)
	for i, b := range sum {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hexDigits[b>>4], hexDigits[b&0x0f])
	}
	return string(out)
}
