package compress

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gunicorn-proxy/gunicorn-proxy/internal/ascii"
)

// DefaultTypes are the media types compressed by default: the old image's
// gzip_types, which it took from h5bp's server-configs-nginx
// (h5bp/web_performance/compression.conf), plus text/html, which nginx
// always compresses. Formats that are already compressed (images other
// than SVG and BMP, video, audio, woff/woff2, zip) are not in it: a second
// compression costs CPU and saves nothing.
var DefaultTypes = []string{
	"text/html",
	"application/atom+xml",
	"application/geo+json",
	"application/javascript",
	"application/x-javascript",
	"application/json",
	"application/ld+json",
	"application/manifest+json",
	"application/rdf+xml",
	"application/rss+xml",
	"application/vnd.ms-fontobject",
	"application/wasm",
	"application/x-web-app-manifest+json",
	"application/xhtml+xml",
	"application/xml",
	"font/eot",
	"font/otf",
	"font/ttf",
	"image/bmp",
	"image/svg+xml",
	"text/cache-manifest",
	"text/calendar",
	"text/css",
	"text/javascript",
	"text/markdown",
	"text/plain",
	"text/xml",
	"text/vcard",
	"text/vnd.rim.location.xloc",
	"text/vtt",
	"text/x-component",
	"text/x-cross-domain-policy",
}

// ParseTypes reads a list of media types as COMPRESS_TYPES gives it:
// separated by commas or spaces ("text/*, application/json image/svg+xml",
// as nginx's gzip_types writes them), each type/subtype, type/*, or *.
func ParseTypes(list string) ([]string, error) {
	types := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if _, err := newTypeSet(types); err != nil {
		return nil, err
	}
	for i, t := range types {
		types[i] = strings.ToLower(t)
	}
	return types, nil
}

// maxMediaType bounds the media types the matcher looks up; no registered
// type is near it, and a longer one simply does not match.
const maxMediaType = 127

// typeSet matches a Content-Type against the configured media types:
// exact types ("application/json"), every subtype of a type ("text/*"),
// or everything ("*", as nginx's gzip_types *). Matching ignores case and
// parameters ("Text/HTML; charset=utf-8" is text/html).
type typeSet struct {
	exact map[string]struct{}
	major map[string]struct{} // "text" for "text/*"
	any   bool
}

func newTypeSet(types []string) (typeSet, error) {
	s := typeSet{exact: map[string]struct{}{}, major: map[string]struct{}{}}
	for _, t := range types {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if t == "*" || t == "*/*" {
			s.any = true
			continue
		}
		major, minor, ok := strings.Cut(t, "/")
		if !ok || !isToken(major) || major == "*" || len(t) > maxMediaType ||
			(minor != "*" && !isToken(minor)) {
			return typeSet{}, fmt.Errorf("%q is not a media type (type/subtype, type/*, or *)", t)
		}
		if minor == "*" {
			s.major[major] = struct{}{}
		} else {
			s.exact[t] = struct{}{}
		}
	}
	if !s.any && len(s.exact) == 0 && len(s.major) == 0 {
		return typeSet{}, errors.New("no media type given")
	}
	return s, nil
}

// match reports whether contentType (a Content-Type field value) is in
// the set. An empty Content-Type never matches, as in nginx: the proxy
// does not guess what the app did not say.
func (s *typeSet) match(contentType []byte) bool {
	mt, _ := cutByte(contentType, ';')
	mt = ascii.TrimOWS(mt)
	if len(mt) == 0 || len(mt) > maxMediaType {
		return false
	}
	if s.any {
		return true
	}
	var buf [maxMediaType]byte
	n := copy(buf[:], mt)
	slash := -1
	for i := range n {
		buf[i] = ascii.Lower(buf[i])
		if buf[i] == '/' && slash < 0 {
			slash = i
		}
	}
	if _, ok := s.exact[string(buf[:n])]; ok {
		return true
	}
	if slash > 0 {
		_, ok := s.major[string(buf[:slash])]
		return ok
	}
	return false
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
