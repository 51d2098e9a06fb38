package tlsgen

import (
	"encoding/pem"
	"os"
	"testing"
)

// FuzzParseKey feeds the key and certificate parsers what a mistaken or
// damaged SSL_KEY / SSL_CRT file might hold. Each input is tried as a whole
// PEM file, and as the DER body of each kind of key block, so that mutations
// reach the ASN.1 and decryption code directly instead of mostly breaking the
// base64. Nothing may panic, and the parsers must return a key or an error.
func FuzzParseKey(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, entry := range entries {
		if entry.IsDir() { // testdata/fuzz, where go test keeps failing inputs
			continue
		}
		data := readFixture(f, entry.Name())
		f.Add(data)
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			f.Add(block.Bytes)
		}
	}

	// One wrong password first, as in the password file fixture, so that
	// both the retry and the success paths run.
	passwords := [][]byte{[]byte("wrong password"), rightPassword}
	// The legacy encryption headers of a fixture, with the IV it was made with.
	legacy, _ := pem.Decode(readFixture(f, "ec-legacy-aes256.key"))

	blocks := []*pem.Block{
		{Type: "ENCRYPTED PRIVATE KEY"},
		{Type: "RSA PRIVATE KEY"},
		{Type: "EC PRIVATE KEY"},
		{Type: "PRIVATE KEY"},
		{Type: "EC PRIVATE KEY", Headers: legacy.Headers},
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(pemData []byte) {
			key, err := parsePrivateKey(pemData, passwords)
			if (key == nil) == (err == nil) {
				t.Fatalf("parsePrivateKey returned key %v and error %v", key, err)
			}
			chain, err := parseCertificates(pemData)
			if (len(chain) == 0) == (err == nil) {
				t.Fatalf("parseCertificates returned %d certificates and error %v", len(chain), err)
			}
		}
		check(data)
		for _, b := range blocks {
			check(pem.EncodeToMemory(&pem.Block{Type: b.Type, Headers: b.Headers, Bytes: data}))
		}
	})
}
