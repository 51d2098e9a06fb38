package compress

import "github.com/gunicorn-proxy/gunicorn-proxy/internal/ascii"

// Coding is a content coding the compressor can produce.
type Coding uint8

// The codings, in the order of preference when a client rates several
// equally: brotli compresses best, zstd is fastest for its ratio, gzip is
// what every client has.
const (
	Identity Coding = iota // no compression
	Gzip
	Zstd
	Brotli
	numCodings
)

// String is the coding's token in Accept-Encoding and Content-Encoding.
func (c Coding) String() string { return string(codingNames[c]) }

var codingNames = [numCodings][]byte{
	Identity: []byte("identity"),
	Gzip:     []byte("gzip"),
	Zstd:     []byte("zstd"),
	Brotli:   []byte("br"),
}

// preference lists the compressing codings from most to least preferred.
var preference = [...]Coding{Brotli, Zstd, Gzip}

// unset marks a coding the client did not name.
const unset = -1

// acceptance is what a request's Accept-Encoding says about each coding:
// a q-value in thousandths (0–1000), or unset.
type acceptance struct {
	q    [numCodings]int16
	star int16 // the q-value of "*"
	seen bool  // an Accept-Encoding field was present
}

func newAcceptance() acceptance {
	a := acceptance{star: unset}
	for i := range a.q {
		a.q[i] = unset
	}
	return a
}

// add reads one Accept-Encoding field value: a comma-separated list of
// codings, each with an optional weight, as RFC 9110 §12.5.3 writes it:
//
//	Accept-Encoding: br;q=1.0, gzip;q=0.8, *;q=0.1
//
// A request may split the list over several fields; add is called for
// each. A coding named twice keeps its lowest weight, so a refusal
// ("gzip;q=0") is never overridden. An entry whose weight cannot be read
// counts as a refusal: sending an uncompressed body is always safe.
func (a *acceptance) add(value []byte) {
	a.seen = true
	for len(value) > 0 {
		var item []byte
		item, value = cutByte(value, ',')
		token, params := cutByte(item, ';')
		token = ascii.TrimOWS(token)
		if len(token) == 0 {
			continue
		}
		q := qualityParam(params)
		switch {
		case len(token) == 1 && token[0] == '*':
			a.star = lowest(a.star, q)
		case ascii.EqualFold(token, "gzip"), ascii.EqualFold(token, "x-gzip"): // RFC 9110 §8.4.1.3
			a.q[Gzip] = lowest(a.q[Gzip], q)
		case ascii.EqualFold(token, "br"):
			a.q[Brotli] = lowest(a.q[Brotli], q)
		case ascii.EqualFold(token, "zstd"):
			a.q[Zstd] = lowest(a.q[Zstd], q)
		case ascii.EqualFold(token, "identity"):
			a.q[Identity] = lowest(a.q[Identity], q)
		}
	}
}

func lowest(old, q int16) int16 {
	if old == unset || q < old {
		return q
	}
	return old
}

// weight is the q-value a coding gets: its own, else that of "*", else 0.
func (a *acceptance) weight(c Coding) int16 {
	if q := a.q[c]; q != unset {
		return q
	}
	if a.star != unset {
		return a.star
	}
	return 0
}

// choose picks the coding for the response among those enabled: the
// compressing coding with the highest weight, br > zstd > gzip on a tie.
// Identity wins only when the request has no Accept-Encoding at all (the
// old image compressed only for clients that asked), when no compressing
// coding has a weight above 0, or when the client named identity with a
// weight above every compressing coding. (An identity the client did not
// name stays acceptable, RFC 9110 §12.5.3, but expresses no preference.)
func (a *acceptance) choose(enabled [numCodings]bool) Coding {
	if !a.seen {
		return Identity
	}
	best, bestQ := Identity, int16(0)
	for _, c := range preference {
		if !enabled[c] {
			continue
		}
		if q := a.weight(c); q > bestQ {
			best, bestQ = c, q
		}
	}
	if best != Identity && a.q[Identity] > bestQ {
		return Identity
	}
	return best
}

// qualityParam finds q=… among a coding's parameters (";q=0.5;x=y") and
// returns it in thousandths: 1000 when absent, 0 when unreadable.
func qualityParam(params []byte) int16 {
	for len(params) > 0 {
		var p []byte
		p, params = cutByte(params, ';')
		name, value := cutByte(p, '=')
		name = ascii.TrimOWS(name)
		if len(name) == 1 && (name[0] == 'q' || name[0] == 'Q') {
			q, ok := parseQValue(ascii.TrimOWS(value))
			if !ok {
				return 0
			}
			return q
		}
	}
	return 1000
}

// parseQValue reads RFC 9110's qvalue: "0" ["." 0*3DIGIT] or "1" ["." 0*3"0"].
func parseQValue(b []byte) (int16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] != '0' && b[0] != '1') {
		return 0, false
	}
	q := int16(b[0]-'0') * 1000
	if len(b) == 1 {
		return q, true
	}
	if b[1] != '.' {
		return 0, false
	}
	scale := int16(100)
	for _, c := range b[2:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int16(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

// cutByte splits b around the first sep; after is nil when there is none.
func cutByte(b []byte, sep byte) (before, after []byte) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}
