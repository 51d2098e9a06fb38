package ratelimit

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseRate: whatever RATE_LIMIT holds, the parser does not panic, a
// rate it accepts is positive and in range, and writing it back in nginx's
// syntax reads back the same (for whole requests per second) or within
// the truncation of r/m.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10r/s", "600r/m", "1r/m", "10", "10r", "r/s", " 5R/S ", "0r/s", "9999999r/s", "1.5r/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if r != 0 {
				t.Fatalf("%q: error with rate %d", s, r)
			}
			return
		}
		if r <= 0 || r > MaxRequests*1000 {
			t.Fatalf("%q: rate %d out of range", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil {
			t.Fatalf("%q → %d → %q does not parse: %v", s, r, r.String(), err)
		}
		if strings.HasSuffix(strings.ToLower(strings.TrimSpace(s)), "r/m") {
			if d := back - r; d < 0 || d > 16 {
				t.Fatalf("%q → %d → %q → %d", s, r, r.String(), back)
			}
		} else if back != r {
			t.Fatalf("%q → %d → %q → %d", s, r, r.String(), back)
		}
	})
}

// FuzzLimitKey: any key bytes (the proxy passes what X-Forwarded-For
// yields) are accepted without panic, and a key and its form with a
// port are the same client when the key is an address.
func FuzzLimitKey(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "203.0.113.7:80", "[2001:db8::1]:443", "2001:db8::1", "fe80::1%eth0", "", ":", "[", "[]:1", "unix:", "1.2.3.4:99999"} {
		f.Add(s)
	}
	l, err := New(Config{Rate: 1000, Entries: 64, Clock: func() int64 { return 0 }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		l.Limit([]byte(key))
		if len(key) == 0 {
			return
		}
		if a, ok := parseAddr([]byte(key)); ok && a.Zone() == "" {
			withPort := netip.AddrPortFrom(a, 1).String()
			if l.keyOf([]byte(withPort)) != l.keyOf([]byte(key)) {
				t.Fatalf("%q and %q are different clients", key, withPort)
			}
		}
	})
}
