package compress

import (
	"strings"
	"testing"
)

var allCodings = [numCodings]bool{Gzip: true, Brotli: true, Zstd: true}

// choose runs the negotiation over Accept-Encoding field values, one per
// field line; nil means no Accept-Encoding at all.
func choose(enabled [numCodings]bool, fields ...string) Coding {
	a := newAcceptance()
	for _, f := range fields {
		a.add([]byte(f))
	}
	return a.choose(enabled)
}

func TestNegotiation(t *testing.T) {
	gzipOnly := [numCodings]bool{Gzip: true}
	noBrotli := [numCodings]bool{Gzip: true, Zstd: true}
	tests := []struct {
		name    string
		fields  []string
		enabled [numCodings]bool
		want    Coding
	}{
		{"no Accept-Encoding", nil, allCodings, Identity},
		{"empty Accept-Encoding", []string{""}, allCodings, Identity},
		{"gzip", []string{"gzip"}, allCodings, Gzip},
		{"x-gzip is gzip", []string{"x-gzip"}, allCodings, Gzip},
		{"case does not matter", []string{"GZip"}, allCodings, Gzip},
		{"browser", []string{"gzip, deflate, br, zstd"}, allCodings, Brotli},
		{"equal weights: br > zstd > gzip", []string{"gzip, zstd"}, allCodings, Zstd},
		{"brotli disabled", []string{"gzip, deflate, br, zstd"}, noBrotli, Zstd},
		{"only gzip offered", []string{"br, zstd, gzip;q=0.1"}, gzipOnly, Gzip},
		{"nothing offered is accepted", []string{"br, zstd"}, gzipOnly, Identity},
		{"deflate alone is not offered", []string{"deflate"}, allCodings, Identity},
		{"higher weight wins", []string{"br;q=0.5, gzip;q=0.9"}, allCodings, Gzip},
		{"weight with spaces", []string{"br ; q=0.5 , gzip ;q = 0.9"}, allCodings, Gzip},
		{"Q in upper case", []string{"br;Q=0.1, gzip"}, allCodings, Gzip},
		{"gzip refused", []string{"gzip;q=0"}, allCodings, Identity},
		{"gzip refused, 0.000", []string{"gzip;q=0.000, zstd;q=0.001"}, allCodings, Zstd},
		{"star accepts all", []string{"*"}, allCodings, Brotli},
		{"star with a refusal", []string{"*, br;q=0"}, allCodings, Zstd},
		{"star refused, gzip named", []string{"*;q=0, gzip"}, allCodings, Gzip},
		{"star refused alone", []string{"*;q=0"}, allCodings, Identity},
		{"named beats star", []string{"gzip;q=0.8, *;q=0.1"}, allCodings, Gzip},
		{"identity preferred", []string{"identity, gzip;q=0.5"}, allCodings, Identity},
		{"identity equal: compress", []string{"identity;q=0.5, gzip;q=0.5"}, allCodings, Gzip},
		{"identity refused", []string{"identity;q=0, gzip"}, allCodings, Gzip},
		{"identity alone", []string{"identity"}, allCodings, Identity},
		{"unnamed identity is no preference", []string{"gzip;q=0.1"}, allCodings, Gzip},
		{"two fields", []string{"gzip", "br"}, allCodings, Brotli},
		{"named twice: the refusal wins", []string{"br", "br;q=0, gzip"}, allCodings, Gzip},
		{"bad weight is a refusal", []string{"br;q=high, gzip"}, allCodings, Gzip},
		{"weight over 1", []string{"br;q=1.5, gzip"}, allCodings, Gzip},
		{"weight with 4 decimals", []string{"br;q=0.1234, gzip;q=0.1"}, allCodings, Gzip},
		{"1.000 is 1", []string{"gzip;q=1.000, br;q=0.999"}, allCodings, Gzip},
		{"other parameters ignored", []string{"gzip;level=9;q=0.5, br;q=0.4"}, allCodings, Gzip},
		{"empty items", []string{",, ,gzip,,"}, allCodings, Gzip},
		{"tabs", []string{"\tgzip\t;\tq=0.5\t"}, allCodings, Gzip},
		{"unknown codings ignored", []string{"compress, sdch, gzip;q=0.2"}, allCodings, Gzip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := choose(tt.enabled, tt.fields...); got != tt.want {
				t.Errorf("Accept-Encoding %q → %v, want %v", tt.fields, got, tt.want)
			}
		})
	}
}

func TestParseQValue(t *testing.T) {
	tests := []struct {
		in   string
		want int16
		ok   bool
	}{
		{"1", 1000, true}, {"1.", 1000, true}, {"1.0", 1000, true}, {"1.000", 1000, true},
		{"0", 0, true}, {"0.", 0, true}, {"0.5", 500, true}, {"0.05", 50, true}, {"0.001", 1, true},
		{"0.999", 999, true},
		{"", 0, false}, {"1.001", 0, false}, {"2", 0, false}, {"0.1234", 0, false}, {".5", 0, false},
		{"0,5", 0, false}, {"-0", 0, false}, {"0.5x", 0, false}, {"1e0", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseQValue([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseQValue(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// The request side of negotiation: besides Accept-Encoding, HEAD, HTTP/1.0
// and Range keep the identity body.
func TestNegotiateRequest(t *testing.T) {
	c := mustNew(t, Config{})
	tests := []struct {
		name string
		raw  string
		want Coding
	}{
		{"GET gzip", "GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n", Gzip},
		{"lower-case name", "GET / HTTP/1.1\r\nHost: h\r\naccept-encoding: br\r\n\r\n", Brotli},
		{"split over two lines", "GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\nAccept-Encoding: zstd\r\n\r\n", Zstd},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n", Identity},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n", Identity},
		{"Range", "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\nAccept-Encoding: gzip\r\n\r\n", Identity},
		{"range in lower case", "GET / HTTP/1.1\r\nHost: h\r\nrange: bytes=0-9\r\nAccept-Encoding: gzip\r\n\r\n", Identity},
		{"POST", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nAccept-Encoding: gzip\r\n\r\n", Gzip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.negotiate(request(t, tt.raw)); got != tt.want {
				t.Errorf("%q → %v, want %v", strings.TrimSpace(tt.raw), got, tt.want)
			}
		})
	}
}

func TestTypeSet(t *testing.T) {
	def, err := newTypeSet(DefaultTypes)
	if err != nil {
		t.Fatal(err)
	}
	custom, err := newTypeSet([]string{"text/*", " Application/JSON ", "image/svg+xml"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := newTypeSet([]string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		contentType       string
		def, custom, star bool
	}{
		{"text/html", true, true, true},
		{"text/html; charset=utf-8", true, true, true},
		{"TEXT/HTML;charset=UTF-8", true, true, true},
		{" application/json ", true, true, true},
		{"application/json;charset=utf-8", true, true, true},
		{"application/javascript", true, false, true},
		{"text/javascript", true, true, true},
		{"application/wasm", true, false, true},
		{"font/ttf", true, false, true},
		{"font/otf", true, false, true},
		{"image/svg+xml", true, true, true},
		{"application/xml", true, false, true},
		{"text/event-stream", false, true, true},
		{"text/x-unlisted", false, true, true},
		{"image/png", false, false, true},
		{"font/woff2", false, false, true},
		{"application/octet-stream", false, false, true},
		{"application/zip", false, false, true},
		{"application/jsonx", false, false, true},
		{"", false, false, false},
		{";charset=utf-8", false, false, false},
		{"text", false, false, true}, // no subtype: only * matches
		{strings.Repeat("a", 200) + "/json", false, false, false},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			name string
			set  *typeSet
			want bool
		}{{"default", &def, tt.def}, {"custom", &custom, tt.custom}, {"*", &all, tt.star}} {
			if got := c.set.match([]byte(tt.contentType)); got != c.want {
				t.Errorf("%s types: match(%q) = %v, want %v", c.name, tt.contentType, got, c.want)
			}
		}
	}

	for _, bad := range [][]string{{"json"}, {"*/json"}, {"text/"}, {"/json"}, {"text/ html"}, {"a/b/c"}, {" , "}, {"text/h(t)ml"}} {
		if _, err := newTypeSet(bad); err == nil {
			t.Errorf("newTypeSet(%q) accepted", bad)
		}
	}
}

func TestParseTypes(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"text/*,application/json", "text/* application/json", true},
		{" text/html  Application/JSON,image/svg+xml ", "text/html application/json image/svg+xml", true},
		{"*", "*", true},
		{"", "", false},
		{" , ", "", false},
		{"json", "", false},
		{"text/html;charset=utf-8", "", false},
	}
	for _, tt := range tests {
		got, err := ParseTypes(tt.in)
		if (err == nil) != tt.ok || strings.Join(got, " ") != tt.want {
			t.Errorf("ParseTypes(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
