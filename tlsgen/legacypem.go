// Legacy PEM encryption (RFC 1423: "Proc-Type: 4,ENCRYPTED") is deprecated in
// crypto/x509 because it does not authenticate the ciphertext: a server that
// decrypts blocks an attacker chose, and lets padding errors show, leaks the
// plaintext. Here the only input is the operator's own key file, read at start
// and on reload; and keys encrypted this way (openssl rsa or ec -aes256,
// openssl genrsa -aes256 before 3.0) are what many guides still produce and
// what nginx still reads, so refusing them would break the drop-in promise.

//lint:file-ignore SA1019 decrypting the operator's own key file, as nginx does; see above.

package tlsgen

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
)

// isLegacyEncrypted reports whether block carries OpenSSL's legacy encryption
// headers ("Proc-Type: 4,ENCRYPTED" and "DEK-Info").
func isLegacyEncrypted(block *pem.Block) bool {
	return x509.IsEncryptedPEMBlock(block)
}

// decryptLegacyPEM decrypts a key block with OpenSSL's legacy PEM encryption.
// It returns errWrongPassword when the password is to blame, and another
// error when the block is malformed and no password would do.
func decryptLegacyPEM(block *pem.Block, password []byte) (crypto.Signer, error) {
	der, err := x509.DecryptPEMBlock(block, password)
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, errWrongPassword
	}
	if err != nil {
		return nil, err
	}
	key, err := parseKeyDER(block.Type, der)
	if err != nil {
		// The padding check lets about one wrong password in 256 through;
		// what it decrypts to is not a key.
		return nil, errWrongPassword
	}
	return key, nil
}
