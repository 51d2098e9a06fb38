package proxy

import (
	"strings"
	"testing"
)

func TestHopByHop(t *testing.T) {
	for _, name := range []string{"Connection", "connection", "Keep-Alive", "Proxy-Connection", "TE", "te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate", "PROXY-AUTHENTICATE"} {
		if !hopByHop([]byte(name)) {
			t.Errorf("%s should be hop-by-hop", name)
		}
	}
	for _, name := range []string{"Content-Type", "Authorization", "Cookie", "Upgrade-Insecure-Requests", "Tee", "Trailers", "X-Connection"} {
		if hopByHop([]byte(name)) {
			t.Errorf("%s should not be hop-by-hop", name)
		}
	}
}

func TestConnectionTokens(t *testing.T) {
	tests := []struct{ value, want string }{
		{"close", "close"},
		{"keep-alive, X-Foo", "keep-alive|X-Foo"},
		{" ,X-A ,, x-b,", "X-A|x-b"},
		{"", ""},
	}
	for _, tt := range tests {
		var got []string
		for _, tok := range connectionTokens(nil, []byte(tt.value)) {
			got = append(got, string(tok))
		}
		if strings.Join(got, "|") != tt.want {
			t.Errorf("connectionTokens(%q) = %q, want %q", tt.value, got, tt.want)
		}
	}
}

func TestRequestVerdict(t *testing.T) {
	connTokens := [][]byte{[]byte("X-Hop")}
	tests := []struct {
		name    string
		trusted bool
		want    requestHeaderVerdict
	}{
		{"Accept", false, keepHeader},
		{"Cookie", false, keepHeader},
		{"Authorization", false, keepHeader},
		{"X_Forwarded_For", true, dropHeader},
		{"Foo_Bar", false, dropHeader},
		{"x-hop", false, dropHeader},
		{"Connection", false, dropHeader},
		{"Proxy-Connection", true, dropHeader},
		{"Host", false, dropHeader},
		{"Content-Length", false, dropHeader},
		{"Transfer-Encoding", false, dropHeader},
		{"Expect", false, dropHeader},
		{"X-Real-IP", true, dropHeader},
		{"x-forwarded-for", false, forwardedForHeader},
		{"X-Forwarded-For", true, forwardedForHeader},
		{"X-Forwarded-Proto", true, dropHeader},
		{"X-Forwarded-Host", true, dropHeader},
		{"X-Forwarded-Port", true, dropHeader},
		{"X-Forwarded-Prefix", true, keepHeader},
		{"X-Forwarded-Prefix", false, dropHeader},
		{"X-Forwarded-Ssl", false, dropHeader},
		{"Forwarded", false, dropHeader},
		{"Forwarded", true, keepHeader},
	}
	for _, tt := range tests {
		if got := requestVerdict([]byte(tt.name), tt.trusted, connTokens); got != tt.want {
			t.Errorf("requestVerdict(%q, trusted=%v) = %v, want %v", tt.name, tt.trusted, got, tt.want)
		}
	}
}

func TestResponseVerdict(t *testing.T) {
	operator := []Header{{Name: []byte("Strict-Transport-Security"), Value: []byte("max-age=1")}}
	connTokens := [][]byte{[]byte("X-Hop")}
	tests := []struct {
		name string
		want bool
	}{
		{"Content-Type", true},
		{"Set-Cookie", true},
		{"Location", true},
		{"Server", false},
		{"server", false},
		{"Date", false},
		{"Content-Length", false},
		{"Transfer-Encoding", false},
		{"Keep-Alive", false},
		{"Upgrade", false},
		{"Proxy-Authenticate", false},
		{"x-hop", false},
		{"strict-transport-security", false},
	}
	for _, tt := range tests {
		if got := responseVerdict([]byte(tt.name), connTokens, operator); got != tt.want {
			t.Errorf("responseVerdict(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestValidField(t *testing.T) {
	for _, name := range []string{"X-Ok", "a", "!#$%&'*+-.^_`|~09AZaz"} {
		if !validFieldName([]byte(name)) {
			t.Errorf("%q should be a valid name", name)
		}
	}
	for _, name := range []string{"", "X Bad", "X:Bad", "X\x00", "Ä", "X(1)"} {
		if validFieldName([]byte(name)) {
			t.Errorf("%q should not be a valid name", name)
		}
	}
	for _, value := range []string{"", "text/html; q=0.9", "a\tb", "\x80\xff obs-text"} {
		if !validFieldValue([]byte(value)) {
			t.Errorf("%q should be a valid value", value)
		}
	}
	for _, value := range []string{"a\x00b", "a\rb", "a\nb", "\x7f", "\x01"} {
		if validFieldValue([]byte(value)) {
			t.Errorf("%q should not be a valid value", value)
		}
	}
}
