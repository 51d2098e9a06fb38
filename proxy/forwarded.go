package proxy

import (
	"bytes"
	"net/netip"
	"unsafe"
)

// TrustedProxies are the peers whose X-Forwarded-For is believed: nginx's
// set_real_ip_from. The list is short (a handful of CIDRs), so a linear scan
// beats any tree.
type TrustedProxies []netip.Prefix

// Contains reports whether addr is in one of the ranges.
func (t TrustedProxies) Contains(addr netip.Addr) bool {
	for _, p := range t {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedFor builds the X-Forwarded-For the app receives and returns it
// with the real client address, reusing dst's storage.
//
// An untrusted peer's X-Forwarded-For is a lie until proven otherwise, so
// it is replaced by the peer itself. A trusted peer's chain is kept and the
// peer appended (nginx's $proxy_add_x_forwarded_for). The real client is the
// rightmost address of that chain that is not a trusted proxy (nginx's
// real_ip_recursive): everything to its right was added by proxies we
// trust, everything to its left was written by the client.
//
// received holds the values of every X-Forwarded-For line of the request,
// in order; a request may legally split the list over several lines.
func forwardedFor(dst []byte, received [][]byte, cc *clientConn, trusted TrustedProxies) (xff, realIP []byte) {
	if !cc.peerTrusted {
		return append(dst[:0], cc.peerText...), cc.peerText
	}
	xff = dst[:0]
	for _, v := range received {
		v = bytes.TrimSpace(v)
		if len(v) == 0 {
			continue
		}
		if len(xff) > 0 {
			xff = append(xff, ", "...)
		}
		xff = append(xff, v...)
	}
	chain := len(xff) // the client-supplied part, before the peer is added
	if len(cc.peerText) > 0 {
		if len(xff) > 0 {
			xff = append(xff, ", "...)
		}
		xff = append(xff, cc.peerText...)
	}
	return xff, realClient(xff[:chain], cc.peerText, trusted)
}

// realClient walks the received chain from the right, skipping trusted
// proxies. It stops at the first entry it cannot parse and answers with the
// last good hop: a garbage entry can only have been written by an
// untrusted party, and nginx stops there too.
func realClient(chain, peer []byte, trusted TrustedProxies) []byte {
	real := peer
	for len(chain) > 0 {
		var entry []byte
		if i := bytes.LastIndexByte(chain, ','); i >= 0 {
			entry, chain = chain[i+1:], chain[:i]
		} else {
			entry, chain = chain, nil
		}
		entry = bytes.TrimSpace(entry)
		addr, ok := parseForwardedAddr(entry)
		if !ok {
			return real
		}
		real = entry
		if !trusted.Contains(addr) {
			return real
		}
	}
	return real
}

// parseForwardedAddr accepts what proxies put in X-Forwarded-For: a bare
// IPv4 or IPv6 address, and, as some load balancers do, with a port.
func parseForwardedAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	s := unsafe.String(&b[0], len(b)) // only parsed, never kept
	if addr, err := netip.ParseAddr(s); err == nil {
		return addr.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// forwardedPort is the port the client used, as the client wrote it in
// Host; without one it is the default of the scheme. Never the port we
// listen on: behind `docker run -p 18080:8000` the client used 18080, and
// that is what a redirect must say.
func forwardedPort(host []byte, https bool) []byte {
	if port, ok := hostPort(host); ok {
		return port
	}
	if https {
		return port443
	}
	return port80
}

var (
	port80  = []byte("80")
	port443 = []byte("443")
)

// hostPort returns the port of a Host header value, if it has a valid one.
func hostPort(host []byte) ([]byte, bool) {
	i := bytes.LastIndexByte(host, ':')
	if i < 0 || bytes.IndexByte(host[i:], ']') >= 0 {
		return nil, false // no port, or the colon is inside an IPv6 literal
	}
	port := host[i+1:]
	if len(port) == 0 || len(port) > 5 {
		return nil, false
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return nil, false
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 || n > 65535 {
		return nil, false
	}
	return port, true
}
