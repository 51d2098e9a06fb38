package tlsgen

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadKeyPair(t *testing.T) {
	passwordFile, err := ReadPasswordFile(fixture("password.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// One file holding the chain and the key, as HAProxy wants them.
	combined := writeFile(t, t.TempDir(), "combined.pem",
		append(readFixture(t, "ec.crt"), readFixture(t, "ec.key")...))

	rows := []struct {
		cert, key string
		passwords [][]byte
		chainLen  int
	}{
		{fixture("rsa.crt"), fixture("rsa.key"), nil, 1},
		{fixture("rsa.crt"), fixture("rsa-pkcs8.key"), nil, 1},
		{fixture("rsa.crt"), fixture("rsa-pkcs8-aes256.key"), passwordFile, 1},
		{fixture("rsa.crt"), fixture("rsa-legacy-aes256.key"), passwordFile, 1},
		{fixture("ec.crt"), fixture("ec.key"), nil, 1},
		{fixture("ec.crt"), fixture("ec-pkcs8.key"), nil, 1},
		{fixture("ec.crt"), fixture("ec-pkcs8-aes256.key"), passwordFile, 1},
		{fixture("ec.crt"), fixture("ec-pkcs8-scrypt.key"), passwordFile, 1},
		{fixture("ec.crt"), fixture("ec-legacy-aes256.key"), passwordFile, 1},
		// A password file is harmless when the key is not encrypted.
		{fixture("ec.crt"), fixture("ec.key"), passwordFile, 1},
		{fixture("chain.crt"), fixture("chain.key"), nil, 2},
		{combined, combined, nil, 1},
	}
	for _, r := range rows {
		t.Run(filepath.Base(r.cert)+"+"+filepath.Base(r.key), func(t *testing.T) {
			pair, err := loadKeyPair(r.cert, r.key, r.passwords, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := readCertificates(t, r.cert)
			if len(pair.Certificate) != r.chainLen || len(want) != r.chainLen {
				t.Fatalf("chain of %d certificates, file has %d, want %d", len(pair.Certificate), len(want), r.chainLen)
			}
			for i := range want {
				if !bytes.Equal(pair.Certificate[i], want[i].Raw) {
					t.Errorf("certificate %d is not the file's certificate %d", i, i)
				}
			}
			if !pair.Leaf.Equal(want[0]) {
				t.Error("Leaf is not the first certificate of the file")
			}
			switch key := pair.PrivateKey.(type) {
			case *rsa.PrivateKey:
				if key.N.BitLen() != 2048 {
					t.Errorf("RSA key of %d bits", key.N.BitLen())
				}
			case *ecdsa.PrivateKey:
				if key.Curve.Params().Name != "P-256" {
					t.Errorf("EC key on %s", key.Curve.Params().Name)
				}
			default:
				t.Errorf("key of type %T", key)
			}
		})
	}
}

func TestLoadKeyPairErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	empty := writeFile(t, dir, "empty.pem", nil)
	garbage := writeFile(t, dir, "garbage.pem", []byte("this is not PEM\n\x00\x01\x02"))
	// PEM armour around a body that is not a key.
	corrupt := writeFile(t, dir, "corrupt.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("not DER")}))
	openssh := writeFile(t, dir, "id_ed25519", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte("openssh-key-v1")}))
	// chain.crt with the CA first.
	chain := readCertificates(t, fixture("chain.crt"))
	reversed := writeFile(t, dir, "reversed.crt", slices.Concat(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[1].Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0].Raw}),
	))
	wrong := [][]byte{[]byte("wrong password")}
	twoWrong := [][]byte{[]byte("wrong password"), []byte("Correct Horse Battery Staple")}

	type row struct {
		name      string
		cert, key string
		passwords [][]byte
		wantErr   error  // nil: only the text is checked
		wantText  string // besides the path of the file at fault
		faulty    string // the file the message must name
	}
	rows := []row{
		{"missing certificate", missing, fixture("rsa.key"), nil, fs.ErrNotExist, "no such file", missing},
		{"missing key", fixture("rsa.crt"), missing, nil, fs.ErrNotExist, "no such file", missing},
		{"empty certificate", empty, fixture("rsa.key"), nil, errEmptyFile, "empty", empty},
		{"empty key", fixture("rsa.crt"), empty, nil, errEmptyFile, "empty", empty},
		{"garbage certificate", garbage, fixture("rsa.key"), nil, errNoCertificate, "no PEM certificate found", garbage},
		{"garbage key", fixture("rsa.crt"), garbage, nil, errNoKey, "no PEM private key found", garbage},
		{"corrupt key", fixture("rsa.crt"), corrupt, nil, nil, "RSA PRIVATE KEY", corrupt},
		{"OpenSSH key", fixture("rsa.crt"), openssh, nil, nil, `unsupported PEM block "OPENSSH PRIVATE KEY"`, openssh},
		{"key and certificate swapped", fixture("rsa.key"), fixture("rsa.crt"), nil, errNoCertificate, "swapped", fixture("rsa.key")},
		{"certificate given as key", fixture("rsa.crt"), fixture("rsa.crt"), nil, errNoKey, "swapped", fixture("rsa.crt")},
		{"EC key, another EC certificate", fixture("ec.crt"), fixture("other-ec.key"), nil, errMismatch, "does not match the key", fixture("ec.crt")},
		{"EC key, RSA certificate", fixture("rsa.crt"), fixture("ec.key"), nil, errMismatch, "does not match the key", fixture("rsa.crt")},
		{"chain with the leaf last", reversed, fixture("chain.key"), nil, nil, "must come first", reversed},
		{"expired", fixture("expired.crt"), fixture("ec.key"), nil, errExpired, "expired on 2025-01-01 00:00:00 UTC", fixture("expired.crt")},
	}
	for _, name := range []string{"rsa-pkcs8-aes256.key", "rsa-legacy-aes256.key", "ec-pkcs8-aes256.key", "ec-pkcs8-scrypt.key", "ec-legacy-aes256.key"} {
		cert := fixture("rsa.crt")
		if strings.HasPrefix(name, "ec") {
			cert = fixture("ec.crt")
		}
		rows = append(rows,
			row{name + " without password", cert, fixture(name), nil, errNoPassword, "encrypted and no password was given", fixture(name)},
			row{name + " with a wrong password", cert, fixture(name), wrong, errWrongPassword, "wrong password", fixture(name)},
			row{name + " with two wrong passwords", cert, fixture(name), twoWrong, errWrongPassword, "none of the 2 passwords", fixture(name)},
		)
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			pair, err := loadKeyPair(r.cert, r.key, r.passwords, time.Now())
			if err == nil {
				t.Fatalf("loaded %d certificates, want an error", len(pair.Certificate))
			}
			if r.wantErr != nil && !errors.Is(err, r.wantErr) {
				t.Errorf("error %q is not %q", err, r.wantErr)
			}
			if !strings.Contains(err.Error(), r.wantText) {
				t.Errorf("error %q does not say %q", err, r.wantText)
			}
			if !strings.Contains(err.Error(), `"`+r.faulty+`"`) {
				t.Errorf("error %q does not name %s", err, r.faulty)
			}
		})
	}
}

func TestLoadKeyPairAcceptsNotYetValid(t *testing.T) {
	// Only expiry is fatal: a certificate valid from tomorrow is a clock or
	// issuance problem the caller can warn about from Leaf().NotBefore.
	leaf := readCertificates(t, fixture("rsa.crt"))[0]
	if _, err := loadKeyPair(fixture("rsa.crt"), fixture("rsa.key"), nil, leaf.NotBefore.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKeyPair(fixture("rsa.crt"), fixture("rsa.key"), nil, leaf.NotAfter.Add(time.Second)); !errors.Is(err, errExpired) {
		t.Fatalf("a second after NotAfter: %v, want %v", err, errExpired)
	}
}

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	rows := []struct {
		name, content string
		want          []string
	}{
		{"LF", "first\nsecond\n", []string{"first", "second"}},
		{"CRLF", "first\r\nsecond\r\n", []string{"first", "second"}},
		{"no final newline", "first\nsecond", []string{"first", "second"}},
		{"one line", "only\n", []string{"only"}},
		{"empty lines skipped", "\n\nfirst\n\r\n\nsecond\n\n", []string{"first", "second"}},
		{"spaces kept", " spaced out \t\n", []string{" spaced out \t"}},
		{"lone CR kept inside", "a\rb\n", []string{"a\rb"}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got, err := ReadPasswordFile(writeFile(t, dir, "pw", []byte(r.content)))
			if err != nil {
				t.Fatal(err)
			}
			var gotStrings []string
			for _, p := range got {
				gotStrings = append(gotStrings, string(p))
			}
			if !slices.Equal(gotStrings, r.want) {
				t.Fatalf("got %q, want %q", gotStrings, r.want)
			}
		})
	}

	t.Run("fixture", func(t *testing.T) {
		got, err := ReadPasswordFile(fixture("password.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !bytes.Equal(got[1], rightPassword) {
			t.Fatalf("got %q, want a wrong password then %q", got, rightPassword)
		}
	})

	for _, r := range []struct{ name, content, want string }{
		{"empty", "", "empty"},
		{"only newlines", "\n\r\n\n", "only empty lines"},
	} {
		t.Run(r.name, func(t *testing.T) {
			path := writeFile(t, dir, "pw", []byte(r.content))
			_, err := ReadPasswordFile(path)
			if err == nil || !strings.Contains(err.Error(), r.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, path, r.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing")
		if _, err := ReadPasswordFile(path); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("error %v, want one naming %s and wrapping fs.ErrNotExist", err, path)
		}
	})
}

// pbes2Envelope builds an encrypted PKCS#8 structure from its parts, with
// ciphertext that is no key: enough for what checkEncryptedPKCS8 looks at.
func pbes2Envelope(t *testing.T, kdf asn1.ObjectIdentifier, kdfParams any, cipher asn1.ObjectIdentifier, iv []byte, data []byte) []byte {
	t.Helper()
	mustMarshal := func(v any) []byte {
		der, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	params := pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: kdf, Parameters: asn1.RawValue{FullBytes: mustMarshal(kdfParams)}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: cipher, Parameters: asn1.RawValue{FullBytes: mustMarshal(iv)}},
	}
	return mustMarshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: mustMarshal(params)}},
		EncryptedData: data,
	})
}

// TestEncryptedPKCS8Checks feeds structures that would make
// github.com/youmark/pkcs8 panic, exhaust memory, or fail for a reason other
// than the password.
func TestEncryptedPKCS8Checks(t *testing.T) {
	aes256CBC := asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	aes256GCM := asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
	hmacWithSHA512 := asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	salt := []byte("saltsalt")
	iv := make([]byte, 16)
	data := make([]byte, 64)
	sha256PRF := pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue}
	pbkdf2With := func(iterations int) pbkdf2Params {
		return pbkdf2Params{Salt: salt, IterationCount: iterations, PRF: sha256PRF}
	}
	scryptWith := func(n, r, p int) scryptParams {
		return scryptParams{Salt: salt, CostParameter: n, BlockSize: r, Parallelization: p}
	}

	pbes1 := pbes2Envelope(t, oidPBKDF2, pbkdf2With(2048), aes256CBC, iv, data)
	// Swap the PBES2 OID (1.2.840.113549.1.5.13) for PBES1's pbeWithSHA1AndDES-CBC (…1.5.10).
	pbes1 = bytes.Replace(pbes1, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d}, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0a}, 1)

	rows := []struct {
		name string
		der  []byte
		want string // "": accepted
	}{
		{"PBKDF2-SHA256, AES-256-CBC", pbes2Envelope(t, oidPBKDF2, pbkdf2With(2048), aes256CBC, iv, data), ""},
		{"PBKDF2 without PRF (SHA-1)", pbes2Envelope(t, oidPBKDF2, struct {
			Salt []byte
			N    int
		}{salt, 2048}, aes256CBC, iv, data), ""},
		{"scrypt as openssl writes it", pbes2Envelope(t, oidScrypt, scryptWith(16384, 8, 1), aes256CBC, iv, data), ""},
		{"not DER", []byte("garbage"), "malformed encrypted PKCS#8 key"},
		{"PBES1", pbes1, "not PBES2"},
		{"AES-GCM", pbes2Envelope(t, oidPBKDF2, pbkdf2With(2048), aes256GCM, make([]byte, 12), data), "expected AES-CBC"},
		{"short IV", pbes2Envelope(t, oidPBKDF2, pbkdf2With(2048), aes256CBC, make([]byte, 12), data), "bad IV"},
		{"partial block", pbes2Envelope(t, oidPBKDF2, pbkdf2With(2048), aes256CBC, iv, make([]byte, 65)), "whole cipher blocks"},
		{"no data", pbes2Envelope(t, oidPBKDF2, pbkdf2With(2048), aes256CBC, iv, nil), "whole cipher blocks"},
		{"PBKDF2 zero iterations", pbes2Envelope(t, oidPBKDF2, pbkdf2With(0), aes256CBC, iv, data), "out of range"},
		{"PBKDF2 a billion iterations", pbes2Envelope(t, oidPBKDF2, pbkdf2With(1e9), aes256CBC, iv, data), "out of range"},
		{"PBKDF2-SHA512", pbes2Envelope(t, oidPBKDF2, pbkdf2Params{Salt: salt, IterationCount: 2048,
			PRF: pkix.AlgorithmIdentifier{Algorithm: hmacWithSHA512, Parameters: asn1.NullRawValue}}, aes256CBC, iv, data), "not supported"},
		{"unknown KDF", pbes2Envelope(t, aes256CBC, pbkdf2With(2048), aes256CBC, iv, data), "not supported"},
		{"scrypt N not a power of 2", pbes2Envelope(t, oidScrypt, scryptWith(16383, 8, 1), aes256CBC, iv, data), "invalid scrypt"},
		{"scrypt r=0", pbes2Envelope(t, oidScrypt, scryptWith(16384, 0, 1), aes256CBC, iv, data), "invalid scrypt"},
		{"scrypt 1 GiB", pbes2Envelope(t, oidScrypt, scryptWith(1<<20, 8, 1), aes256CBC, iv, data), "cost more"},
		{"scrypt huge N", pbes2Envelope(t, oidScrypt, scryptWith(1<<62, 8, 1), aes256CBC, iv, data), "cost more"},
		{"scrypt huge r", pbes2Envelope(t, oidScrypt, scryptWith(2, 1<<40, 1), aes256CBC, iv, data), "cost more"},
		{"scrypt p=1000", pbes2Envelope(t, oidScrypt, scryptWith(16384, 8, 1000), aes256CBC, iv, data), "cost more"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			err := checkEncryptedPKCS8(r.der)
			if r.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				// What passes the checks decrypts to garbage here: the
				// password is blamed, and nothing panics.
				if _, err := decryptPKCS8(r.der, rightPassword); !errors.Is(err, errWrongPassword) {
					t.Fatalf("decrypting: %v, want %v", err, errWrongPassword)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), r.want) {
				t.Fatalf("error %v, want one saying %q", err, r.want)
			}
			// The same through the whole key path: the structure is at fault,
			// not the password, whichever is given.
			block := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: r.der})
			if _, err := parsePrivateKey(block, [][]byte{rightPassword}); err == nil || errors.Is(err, errWrongPassword) {
				t.Fatalf("parsePrivateKey: %v, want the structure's error", err)
			}
		})
	}
}

// TestParsePrivateKeyTypes covers the PKCS#8 key types openssl can also
// write (openssl genpkey -algorithm ed25519 or x25519): Ed25519 signs TLS
// handshakes, X25519 only agrees keys.
func TestParsePrivateKeyTypes(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	xKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		name string
		key  any
		want string // "": accepted
	}{
		{"Ed25519", edKey, ""},
		{"X25519", xKey, "cannot sign TLS handshakes"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			der, err := x509.MarshalPKCS8PrivateKey(r.key)
			if err != nil {
				t.Fatal(err)
			}
			key, err := parsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
			if r.want == "" && err != nil {
				t.Fatal(err)
			}
			if r.want != "" && (err == nil || !strings.Contains(err.Error(), r.want)) {
				t.Fatalf("got %T, %v; want an error saying %q", key, err, r.want)
			}
		})
	}
}
