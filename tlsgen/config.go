package tlsgen

import "crypto/tls"

// Intermediate returns a new server configuration following Mozilla's
// "intermediate" profile (https://ssl-config.mozilla.org, guideline 5.7): TLS 1.2
// and 1.3, forward-secret key exchange and AEAD ciphers only. It is what
// nginx's generated intermediate configuration does, within what Go can do.
// The caller adds the certificate, through Certificates or GetCertificate.
func Intermediate() *tls.Config {
	return &tls.Config{
		// MaxVersion stays zero, meaning the newest version Go implements
		// (today TLS 1.3): a newer one will never be weaker.
		MinVersion: tls.VersionTLS12,

		// Only consulted for TLS 1.2: Go does not let TLS 1.3 suites be chosen,
		// and all three of them are AEAD, as Mozilla lists. Mozilla 5.7 also
		// lists DHE-RSA suites, which Go does not implement (guideline 5.8
		// drops them too); they serve only old clients that lack ECDHE with
		// AES-GCM or ChaCha20. The order does not matter: Go orders suites
		// itself, putting ChaCha20 first for clients without AES hardware,
		// which is what Mozilla's "ssl_prefer_server_ciphers off" leaves to the
		// client.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},

		// Guideline 5.7's groups. Naming them leaves out P-521 and the
		// post-quantum hybrid X25519MLKEM768 that Go offers by default (and that
		// guideline 5.8 adds; adding it here is a one-line change).
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},

		// Mozilla: "ssl_session_tickets off". Tickets are sealed with a key
		// kept in memory for days (Go rotates it daily and honours it for a
		// week); whoever obtains it can decrypt every session recorded in that
		// window, which undoes forward secrecy. A full handshake costs little
		// next to a request proxied to an app server.
		SessionTicketsDisabled: true,

		// HTTP/1.1 only: fasthttp has no HTTP/2. Announcing it keeps an h2-only
		// client from mistaking this server for an h2 one: it is refused during
		// the handshake instead of failing after it.
		NextProtos: []string{"http/1.1"},
	}
}
