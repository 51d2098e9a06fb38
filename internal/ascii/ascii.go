// Package ascii compares and trims the ASCII parts of HTTP messages — header
// names, tokens, list items — without allocating. bytes.EqualFold would do
// for the comparisons but also folds Unicode, which HTTP tokens never need,
// and wants two slices where the other side is almost always a constant.
package ascii

// EqualFold reports whether b and s are the same ASCII text, ignoring case.
// s is a constant name as often as another header's bytes.
func EqualFold[T ~string | ~[]byte](b []byte, s T) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if Lower(b[i]) != Lower(s[i]) {
			return false
		}
	}
	return true
}

// Lower returns c in lower case if it is an ASCII capital letter.
func Lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// TrimOWS removes HTTP's optional whitespace (spaces and tabs, RFC 9110
// §5.6.3) from both ends of b.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
