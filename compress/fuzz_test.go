package compress

import (
	"strings"
	"testing"
)

// FuzzAcceptEncoding feeds arbitrary Accept-Encoding values to the
// negotiation. Whatever the input: no panic, weights stay in 0–1000, the
// coding chosen is one that is enabled and that the client gave a weight
// above 0, and no other enabled coding has a higher weight.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"gzip", "gzip, deflate, br, zstd", "br;q=0.5, gzip;q=0.9", "*;q=0, identity",
		"gzip;q=0", "x-gzip", ";;,,q=1", "br;q=1.0000", "zstd;q=0.", "*", "identity;q=0",
		"gzip;q=0.5;q=1", "\tbr\t;\tQ=0.1", "br;q=", "gzip ; level=9 ; q=0.25",
	} {
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, value string, mask uint8) {
		var enabled [numCodings]bool
		enabled[Gzip], enabled[Zstd], enabled[Brotli] = mask&1 != 0, mask&2 != 0, mask&4 != 0
		a := newAcceptance()
		for _, field := range strings.Split(value, "\n") {
			a.add([]byte(field))
		}
		for c := Coding(0); c < numCodings; c++ {
			if q := a.q[c]; q != unset && (q < 0 || q > 1000) {
				t.Fatalf("%q: weight of %v is %d", value, c, q)
			}
		}
		if a.star != unset && (a.star < 0 || a.star > 1000) {
			t.Fatalf("%q: weight of * is %d", value, a.star)
		}
		got := a.choose(enabled)
		if got == Identity {
			return
		}
		if !enabled[got] {
			t.Fatalf("%q: chose %v, which is not enabled", value, got)
		}
		q := a.weight(got)
		if q <= 0 {
			t.Fatalf("%q: chose %v with weight %d", value, got, q)
		}
		for _, c := range preference {
			if enabled[c] && a.weight(c) > q {
				t.Fatalf("%q: chose %v (%d) over %v (%d)", value, got, q, c, a.weight(c))
			}
		}
	})
}

// FuzzTypes feeds arbitrary COMPRESS_TYPES lists and Content-Types to the
// parser and the matcher: no panic, a list ParseTypes accepts builds a
// Compressor, and every exact type accepted into the set matches itself,
// whatever its case and parameters.
func FuzzTypes(f *testing.F) {
	for _, s := range []string{
		"text/html,application/json", "text/*", "*", "a/b,c/*", "json", "*/x", "text/", " , ",
	} {
		f.Add(s, "text/html; charset=utf-8")
	}
	f.Fuzz(func(t *testing.T, list, contentType string) {
		if types, err := ParseTypes(list); err == nil {
			if _, err := New(Config{Types: types}); err != nil {
				t.Fatalf("ParseTypes(%q) = %q, which New refuses: %v", list, types, err)
			}
		}
		set, err := newTypeSet(strings.Split(list, ","))
		if err != nil {
			return
		}
		set.match([]byte(contentType))
		for _, item := range strings.Split(list, ",") {
			item = strings.TrimSpace(item)
			if item == "" || strings.HasSuffix(item, "/*") || item == "*" || item == "*/*" {
				continue
			}
			ct := []byte(strings.ToUpper(item) + "; charset=utf-8")
			if !set.match(ct) {
				t.Fatalf("%q accepted %q but does not match %q", list, item, ct)
			}
		}
	})
}
