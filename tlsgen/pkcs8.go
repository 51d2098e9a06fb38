package tlsgen

import (
	"crypto"
	"crypto/aes"
	"crypto/des"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/youmark/pkcs8"
)

// Encrypted PKCS#8 keys ("BEGIN ENCRYPTED PRIVATE KEY": RFC 5958 with PBES2
// from RFC 8018, as openssl pkcs8 -topk8 -v2 writes them) are decrypted by
// github.com/youmark/pkcs8. That library trusts the file: an IV of the wrong
// length, or data that is not whole cipher blocks, panics inside
// crypto/cipher, and it runs scrypt or PBKDF2 at whatever cost the file names,
// so a corrupt file could exhaust memory or stall the start for hours. It also
// reports an unsupported algorithm and a wrong password alike, as errors.
//
// checkEncryptedPKCS8 therefore reads the same structure first and refuses
// what would hurt and what the library cannot decrypt. What it lets through,
// the library can decrypt with the right password, so any failure after it is
// the password's.

var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
)

// pbes2BlockSizes holds the block size, which is also the IV size, of each
// cipher the library decrypts, by OID. All are CBC. The library registers the
// AES-GCM OIDs too but runs them as CBC; OpenSSL never writes them.
var pbes2BlockSizes = map[string]int{
	"2.16.840.1.101.3.4.1.2":  aes.BlockSize, // aes-128-cbc
	"2.16.840.1.101.3.4.1.22": aes.BlockSize, // aes-192-cbc
	"2.16.840.1.101.3.4.1.42": aes.BlockSize, // aes-256-cbc
	"1.2.840.113549.3.7":      des.BlockSize, // des-ede3-cbc
}

const (
	// scrypt needs 128·r·(N+p) bytes. OpenSSL refuses more than 32 MiB
	// (SCRYPT_MAX_MEM) unless told otherwise, so nginx could not read such a
	// key either.
	maxScryptMemory = 32 << 20
	// scrypt's time grows with N·r·p: this allows 32 times what
	// openssl pkcs8 -scrypt writes (N=16384, r=8, p=1), a few seconds.
	maxScryptWork = 1 << 22
	// openssl writes 2048 PBKDF2 rounds; OWASP advises 600,000 with SHA-256.
	// Ten million take a few seconds.
	maxPBKDF2Iterations = 10_000_000
)

// The ASN.1 structures, shaped as the library reads them.
type (
	encryptedPrivateKeyInfo struct {
		Algorithm     pkix.AlgorithmIdentifier
		EncryptedData []byte
	}
	pbes2Params struct {
		KeyDerivationFunc pkix.AlgorithmIdentifier
		EncryptionScheme  pkix.AlgorithmIdentifier
	}
	pbkdf2Params struct {
		Salt           []byte
		IterationCount int
		PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
	}
	scryptParams struct {
		Salt            []byte
		CostParameter   int // N
		BlockSize       int // r
		Parallelization int // p
	}
)

// checkEncryptedPKCS8 returns an error if der is not an encrypted PKCS#8 key
// that decryptPKCS8 can safely try passwords on.
func checkEncryptedPKCS8(der []byte) error {
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return fmt.Errorf("malformed encrypted PKCS#8 key: %w", err)
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return fmt.Errorf("key is encrypted with %v, not PBES2: re-encrypt it with openssl pkcs8 -topk8 -v2 aes256",
			info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return fmt.Errorf("malformed PBES2 parameters: %w", err)
	}

	blockSize, ok := pbes2BlockSizes[params.EncryptionScheme.Algorithm.String()]
	if !ok {
		return fmt.Errorf("key is encrypted with cipher %v: expected AES-CBC or DES-EDE3-CBC",
			params.EncryptionScheme.Algorithm)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(iv) != blockSize {
		return errors.New("malformed PBES2 parameters: bad IV")
	}
	if n := len(info.EncryptedData); n == 0 || n%blockSize != 0 {
		return errors.New("malformed encrypted PKCS#8 key: the data is not whole cipher blocks")
	}

	kdf := params.KeyDerivationFunc
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
			return fmt.Errorf("malformed PBKDF2 parameters: %w", err)
		}
		if prf := p.PRF.Algorithm; len(prf) > 0 && !prf.Equal(oidHMACWithSHA1) && !prf.Equal(oidHMACWithSHA256) {
			return fmt.Errorf("PBKDF2 with hash %v is not supported: re-encrypt the key with openssl pkcs8 -topk8 -v2 aes256 -v2prf hmacWithSHA256", prf)
		}
		if p.IterationCount < 1 || p.IterationCount > maxPBKDF2Iterations {
			return fmt.Errorf("PBKDF2 iteration count %d is out of range: expected 1 to %d", p.IterationCount, maxPBKDF2Iterations)
		}
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
			return fmt.Errorf("malformed scrypt parameters: %w", err)
		}
		return checkScrypt(p.CostParameter, p.BlockSize, p.Parallelization)
	default:
		return fmt.Errorf("key derivation function %v is not supported: expected PBKDF2 or scrypt", kdf.Algorithm)
	}
	return nil
}

func checkScrypt(n, r, p int) error {
	if n < 2 || n&(n-1) != 0 || r < 1 || p < 1 {
		return fmt.Errorf("invalid scrypt parameters N=%d r=%d p=%d", n, r, p)
	}
	// The single bounds keep 128·r·(N+p) from overflowing, and once it is
	// within bounds N·r is small enough to multiply by p.
	tooCostly := n > maxScryptMemory || r > maxScryptMemory || p > maxScryptWork ||
		128*r*(n+p) > maxScryptMemory || n*r*p > maxScryptWork
	if tooCostly {
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d cost more than %d MiB or %d times N=16384,r=8,p=1",
			n, r, p, maxScryptMemory>>20, maxScryptWork/(16384*8))
	}
	return nil
}

// decryptPKCS8 decrypts a key that checkEncryptedPKCS8 has accepted.
func decryptPKCS8(der, password []byte) (crypto.Signer, error) {
	if len(password) == 0 {
		// The library would take the key for an unencrypted one.
		return nil, errWrongPassword
	}
	key, err := pkcs8.ParsePKCS8PrivateKey(der, password)
	if err != nil {
		// checkEncryptedPKCS8 has ruled out every other cause: what this
		// password decrypted to is not a key.
		return nil, errWrongPassword
	}
	return tlsSigner(key)
}
