// Package tlsgen is everything TLS for the proxy's client-facing listener:
//
//   - [Intermediate]: the Mozilla "intermediate" server profile as a *tls.Config.
//   - [KeyPairStore]: a certificate chain and private key loaded from PEM files
//     (the key possibly encrypted, with passwords read by [ReadPasswordFile]),
//     checked before use, and swapped in place by [KeyPairStore.Reload] when a
//     renewal lands, without dropping a connection or locking the handshake path.
//   - [SelfSigned] and [Fingerprint]: a throwaway certificate made in memory at
//     start, for a proxy behind a load balancer that does not verify its backends.
//
// The package reads the files it is given and nothing else. Environment
// variables, signals, logging and exit codes belong to the caller; errors name
// the file and what was wrong with it, so the caller only adds the name of the
// setting that pointed at it.
//
// A listener serving files from disk:
//
//	store, err := tlsgen.LoadKeyPairStore(certFile, keyFile, passwords)
//	if err != nil {
//		return err
//	}
//	cfg := tlsgen.Intermediate()
//	cfg.GetCertificate = store.GetCertificate
//	ln = tls.NewListener(ln, cfg)
//	// on SIGHUP: if err := store.Reload(); err != nil { log it; the old pair stays }
package tlsgen
