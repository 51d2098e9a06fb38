package ascii

import "testing"

func TestEqualFold(t *testing.T) {
	tests := []struct {
		b, s string
		want bool
	}{
		{"Content-Length", "content-length", true},
		{"CONTENT-LENGTH", "Content-Length", true},
		{"gzip", "gzip", true},
		{"", "", true},
		{"gzip", "gzi", false},
		{"gzip", "gzap", false},
		{"[", "{", false},      // 0x5B and 0x7B differ by 0x20 but are not letters
		{"K", "\u212a", false}, // Kelvin sign: bytes.EqualFold would say yes
	}
	for _, tt := range tests {
		if got := EqualFold([]byte(tt.b), tt.s); got != tt.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tt.b, tt.s, got, tt.want)
		}
	}
}

func TestTrimOWS(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"gzip", "gzip"},
		{" \tgzip\t ", "gzip"},
		{"  ", ""},
		{"a b", "a b"},
		{"\r\ngzip", "\r\ngzip"}, // CR and LF are not optional whitespace
	}
	for _, tt := range tests {
		if got := string(TrimOWS([]byte(tt.in))); got != tt.want {
			t.Errorf("TrimOWS(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkEqualFold(b *testing.B) {
	name := []byte("Transfer-Encoding")
	for b.Loop() {
		if !EqualFold(name, "transfer-encoding") {
			b.Fatal("not equal")
		}
	}
}

func TestEqualFoldBytes(t *testing.T) {
	if !EqualFold([]byte("keep-alive"), []byte("Keep-Alive")) {
		t.Error("keep-alive and Keep-Alive differ")
	}
	if EqualFold([]byte("keep-alive"), []byte("keep-alivE!")) {
		t.Error("lengths differ, yet equal")
	}
}
