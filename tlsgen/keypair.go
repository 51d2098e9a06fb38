package tlsgen

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// The problems a key pair on disk can have, for errors.Is in tests. Messages
// wrap them with the file's path and the details.
var (
	errEmptyFile     = errors.New("file is empty")
	errNoCertificate = errors.New("no PEM certificate found")
	errNoKey         = errors.New("no PEM private key found")
	errNoPassword    = errors.New("key is encrypted and no password was given")
	errWrongPassword = errors.New("wrong password")
	errMismatch      = errors.New("does not match the key")
	errExpired       = errors.New("expired")
)

// timeLayout prints certificate dates in the UTC that X.509 stores them in.
const timeLayout = "2006-01-02 15:04:05 UTC"

// ReadPasswordFile returns the passwords in the file at path, one per line,
// for decrypting a private key: nginx's ssl_password_file. Line ends (LF or
// CRLF) are not part of a password, empty lines are skipped, and nothing else
// is trimmed, since a space may belong to a password.
func ReadPasswordFile(path string) ([][]byte, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file %q: %w", path, err)
	}
	var passwords [][]byte
	for line := range bytes.Lines(data) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 {
			passwords = append(passwords, line)
		}
	}
	if len(passwords) == 0 {
		return nil, fmt.Errorf("password file %q: only empty lines", path)
	}
	return passwords, nil
}

// loadKeyPair reads a certificate chain and its private key, as nginx's
// ssl_certificate and ssl_certificate_key, and checks that they belong
// together and that the certificate has not expired at now: a server that
// starts with a broken pair fails every handshake, so it should not start.
// The returned certificate's Leaf is set.
func loadKeyPair(certFile, keyFile string, passwords [][]byte, now time.Time) (*tls.Certificate, error) {
	certPEM, err := readFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %q: %w", certFile, err)
	}
	chain, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %q: %w", certFile, err)
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", keyFile, err)
	}
	key, err := parsePrivateKey(keyPEM, passwords)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", keyFile, err)
	}

	leaf := chain[0]
	if !samePublicKey(leaf.PublicKey, key.Public()) {
		for i, c := range chain[1:] {
			if samePublicKey(c.PublicKey, key.Public()) {
				return nil, fmt.Errorf("certificate %q: the certificate for key %q is number %d in the file; it must come first, followed by the chain",
					certFile, keyFile, i+2)
			}
		}
		return nil, fmt.Errorf("certificate %q: %w in %q", certFile, errMismatch, keyFile)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate %q: %w on %s", certFile, errExpired, leaf.NotAfter.UTC().Format(timeLayout))
	}

	pair := &tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		pair.Certificate = append(pair.Certificate, c.Raw)
	}
	return pair, nil
}

// readFile is os.ReadFile with the path left out of the error, since every
// caller puts it in its own message, and with an empty file as an error.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if pathErr, ok := errors.AsType[*fs.PathError](err); ok {
		return nil, pathErr.Err
	}
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, errEmptyFile
	}
	return data, nil
}

// parseCertificates returns the certificates of the CERTIFICATE blocks in
// pemData, in file order, which for a server is the leaf then its chain.
// Other blocks are skipped, so one file may hold both key and chain.
func parseCertificates(pemData []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	sawKey := false
	for block, rest := pem.Decode(pemData); block != nil; block, rest = pem.Decode(rest) {
		switch {
		case block.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate number %d in the file: %w", len(chain)+1, err)
			}
			chain = append(chain, c)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			sawKey = true
		}
	}
	if len(chain) == 0 && sawKey {
		return nil, fmt.Errorf("%w, only a private key: are the key and certificate files swapped?", errNoCertificate)
	}
	if len(chain) == 0 {
		return nil, errNoCertificate
	}
	return chain, nil
}

// parsePrivateKey returns the first private key in pemData, decrypting it
// with the first of passwords that works. Other blocks are skipped, such as
// the "EC PARAMETERS" that openssl ecparam writes before the key.
func parsePrivateKey(pemData []byte, passwords [][]byte) (crypto.Signer, error) {
	sawCertificate := false
	for block, rest := pem.Decode(pemData); block != nil; block, rest = pem.Decode(rest) {
		switch {
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			return decodePrivateKey(block, passwords)
		case block.Type == "CERTIFICATE":
			sawCertificate = true
		}
	}
	if sawCertificate {
		return nil, fmt.Errorf("%w, only a certificate: are the key and certificate files swapped?", errNoKey)
	}
	return nil, errNoKey
}

// decodePrivateKey decodes one PEM block of any of the kinds openssl writes:
// PKCS#1 (RSA), SEC 1 (EC) and PKCS#8, each either in the clear, encrypted
// with a password inside PKCS#8 ("ENCRYPTED PRIVATE KEY"), or, for PKCS#1 and
// SEC 1, encrypted with OpenSSL's legacy PEM headers ("Proc-Type: 4,ENCRYPTED").
func decodePrivateKey(block *pem.Block, passwords [][]byte) (crypto.Signer, error) {
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		if err := checkEncryptedPKCS8(block.Bytes); err != nil {
			return nil, err
		}
		return tryPasswords(passwords, func(password []byte) (crypto.Signer, error) {
			return decryptPKCS8(block.Bytes, password)
		})

	case isLegacyEncrypted(block):
		return tryPasswords(passwords, func(password []byte) (crypto.Signer, error) {
			return decryptLegacyPEM(block, password)
		})

	default:
		return parseKeyDER(block.Type, block.Bytes)
	}
}

// tryPasswords calls decrypt with each password in turn until one is not
// wrong, as nginx tries each line of its ssl_password_file.
func tryPasswords(passwords [][]byte, decrypt func(password []byte) (crypto.Signer, error)) (crypto.Signer, error) {
	if len(passwords) == 0 {
		return nil, errNoPassword
	}
	for _, password := range passwords {
		key, err := decrypt(password)
		if !errors.Is(err, errWrongPassword) {
			return key, err
		}
	}
	if len(passwords) > 1 {
		return nil, fmt.Errorf("%w: none of the %d passwords decrypts the key", errWrongPassword, len(passwords))
	}
	return nil, errWrongPassword
}

// parseKeyDER parses an unencrypted key by its PEM block type.
func parseKeyDER(blockType string, der []byte) (crypto.Signer, error) {
	var key any
	var err error
	switch blockType {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q: expected RSA, EC or PKCS#8 PRIVATE KEY", blockType)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", blockType, err)
	}
	return tlsSigner(key)
}

// tlsSigner admits the key types crypto/tls can sign handshakes with.
func tlsSigner(key any) (crypto.Signer, error) {
	switch key := key.(type) {
	case *rsa.PrivateKey:
		return key, nil
	case *ecdsa.PrivateKey:
		return key, nil
	case ed25519.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("a %T cannot sign TLS handshakes: expected an RSA, ECDSA or Ed25519 key", key)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
