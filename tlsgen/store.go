package tlsgen

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// KeyPairStore serves a certificate chain and key loaded from PEM files and
// replaces them when Reload is called, typically on SIGHUP after certbot or
// cert-manager renewed the files. Handshakes in flight keep the pair they
// started with; new ones get the new pair. Its methods are safe for
// concurrent use.
type KeyPairStore struct {
	certFile, keyFile string
	passwords         [][]byte

	// current is read on every handshake, so it is an atomic pointer
	// rather than a field behind a lock.
	current atomic.Pointer[tls.Certificate]
}

// LoadKeyPairStore loads the certificate chain in certFile (the leaf first,
// then its intermediates) and the private key in keyFile, both PEM; one
// file may hold both. An encrypted key is decrypted with the first of
// passwords that works (see [ReadPasswordFile]); passwords are kept for
// Reload. It fails if the key does not match the leaf, or the leaf has
// expired: a proxy serving either would fail every handshake.
func LoadKeyPairStore(certFile, keyFile string, passwords [][]byte) (*KeyPairStore, error) {
	s := &KeyPairStore{certFile: certFile, keyFile: keyFile, passwords: passwords}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads and checks the files again, as LoadKeyPairStore does, and
// serves the new pair from the next handshake on. On any error the pair
// already loaded stays in service, so a renewal caught half-written, or
// a mistake, never takes the listener down; the error says what to fix.
func (s *KeyPairStore) Reload() error {
	pair, err := loadKeyPair(s.certFile, s.keyFile, s.passwords, time.Now())
	if err != nil {
		return err
	}
	s.current.Store(pair)
	return nil
}

// GetCertificate returns the current pair whatever the client asked for:
// it is meant for tls.Config.GetCertificate. It neither locks nor allocates.
func (s *KeyPairStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.current.Load(), nil
}

// Leaf returns the certificate currently served, for its NotAfter or a log
// line (see [Describe]).
func (s *KeyPairStore) Leaf() *x509.Certificate {
	return s.current.Load().Leaf
}

// Describe summarises a certificate in one line for a startup or reload log:
// subject, names, issuer (or "self-signed") and validity, for example
//
//	CN=example.com; names example.com, www.example.com; issuer CN=R11,O=Let's Encrypt,C=US; valid 2025-01-01 00:00:00 UTC to 2025-04-01 00:00:00 UTC
func Describe(leaf *x509.Certificate) string {
	names := make([]string, 0, len(leaf.DNSNames)+len(leaf.IPAddresses))
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	issuer := "issuer " + leaf.Issuer.String()
	if leaf.Issuer.String() == leaf.Subject.String() {
		issuer = "self-signed"
	}
	return fmt.Sprintf("%s; names %s; %s; valid %s to %s",
		leaf.Subject, strings.Join(names, ", "), issuer,
		leaf.NotBefore.UTC().Format(timeLayout), leaf.NotAfter.UTC().Format(timeLayout))
}
