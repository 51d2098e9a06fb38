package proxy

import (
	"net/netip"
	"testing"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var privateRanges = TrustedProxies{
	mustPrefix("10.0.0.0/8"), mustPrefix("172.16.0.0/12"), mustPrefix("192.168.0.0/16"), mustPrefix("fc00::/7"),
}

func TestForwardedFor(t *testing.T) {
	tests := []struct {
		name       string
		peer       string // "" for a unix-socket peer
		received   []string
		wantXFF    string
		wantRealIP string
	}{
		{"untrusted peer, no header", "203.0.113.7", nil, "203.0.113.7", "203.0.113.7"},
		{"untrusted peer's header is replaced, not appended to", "203.0.113.7", []string{"1.2.3.4"}, "203.0.113.7", "203.0.113.7"},
		{"trusted peer, no header", "10.0.0.2", nil, "10.0.0.2", "10.0.0.2"},
		{"trusted peer's chain is kept and the peer appended", "10.0.0.2", []string{"198.51.100.9"}, "198.51.100.9, 10.0.0.2", "198.51.100.9"},
		{"real client is the rightmost untrusted", "10.0.0.2", []string{"6.6.6.6, 198.51.100.9, 192.168.1.1"}, "6.6.6.6, 198.51.100.9, 192.168.1.1, 10.0.0.2", "198.51.100.9"},
		{"several header lines form one list", "10.0.0.2", []string{"6.6.6.6", " 198.51.100.9 "}, "6.6.6.6, 198.51.100.9, 10.0.0.2", "198.51.100.9"},
		{"all trusted: the leftmost", "10.0.0.2", []string{"10.1.1.1, 172.16.0.1"}, "10.1.1.1, 172.16.0.1, 10.0.0.2", "10.1.1.1"},
		{"garbage stops the walk at the last good hop", "10.0.0.2", []string{"1.1.1.1, <script>, 192.168.0.5"}, "1.1.1.1, <script>, 192.168.0.5, 10.0.0.2", "192.168.0.5"},
		{"garbage right at the peer", "10.0.0.2", []string{"evil"}, "evil, 10.0.0.2", "10.0.0.2"},
		{"IPv6 and a port", "fd00::1", []string{"2001:db8::1, 203.0.113.7:4711"}, "2001:db8::1, 203.0.113.7:4711, fd00::1", "203.0.113.7:4711"},
		{"empty values are skipped", "10.0.0.2", []string{"", " "}, "10.0.0.2", "10.0.0.2"},
		{"unix peer: chain kept, nothing appended", "", []string{"198.51.100.9"}, "198.51.100.9", "198.51.100.9"},
		{"unix peer, no header", "", nil, "", ""},
	}
	s := &Server{trusted: privateRanges}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &clientConn{srv: s}
			if tt.peer == "" {
				cc.peerTrusted = true
			} else {
				cc.peer = netip.MustParseAddr(tt.peer)
				cc.peerTrusted = privateRanges.Contains(cc.peer)
				cc.peerText = []byte(tt.peer)
			}
			var received [][]byte
			for _, v := range tt.received {
				received = append(received, []byte(v))
			}
			xff, real := forwardedFor(nil, received, cc, privateRanges)
			if string(xff) != tt.wantXFF || string(real) != tt.wantRealIP {
				t.Errorf("got X-Forwarded-For %q, real %q; want %q, %q", xff, real, tt.wantXFF, tt.wantRealIP)
			}
		})
	}
}

func TestForwardedPort(t *testing.T) {
	tests := []struct {
		host  string
		https bool
		want  string
	}{
		{"example.com:18080", false, "18080"},
		{"example.com", false, "80"},
		{"example.com", true, "443"},
		{"example.com:8443", true, "8443"},
		{"[2001:db8::1]:8080", false, "8080"},
		{"[2001:db8::1]", true, "443"},
		{"example.com:", false, "80"},
		{"example.com:abc", false, "80"},
		{"example.com:99999", false, "80"},
		{"example.com:0", true, "443"},
		{"", false, "80"},
	}
	for _, tt := range tests {
		if got := forwardedPort([]byte(tt.host), tt.https); string(got) != tt.want {
			t.Errorf("forwardedPort(%q, https=%v) = %q, want %q", tt.host, tt.https, got, tt.want)
		}
	}
}

func FuzzForwardedFor(f *testing.F) {
	for _, seed := range []string{"1.2.3.4", "1.1.1.1, 10.0.0.1", "::1, fd00::2", ",,,", "a, b, c", "[::1]:80"} {
		f.Add(seed, true)
	}
	s := &Server{trusted: privateRanges}
	f.Fuzz(func(t *testing.T, value string, trustedPeer bool) {
		cc := &clientConn{srv: s, peerText: []byte("10.0.0.2"), peerTrusted: trustedPeer}
		xff, real := forwardedFor(nil, [][]byte{[]byte(value)}, cc, privateRanges)
		if !trustedPeer && (string(xff) != "10.0.0.2" || string(real) != "10.0.0.2") {
			t.Fatalf("an untrusted peer's header leaked: %q %q", xff, real)
		}
		if len(real) == 0 {
			t.Fatal("no real client address")
		}
		if string(real) != "10.0.0.2" {
			if _, ok := parseForwardedAddr(real); !ok {
				t.Fatalf("real client %q is not an address", real)
			}
		}
	})
}
