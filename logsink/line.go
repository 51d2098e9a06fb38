package logsink

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gunicorn-proxy/gunicorn-proxy/proxy"
)

// missing stands in for a value the proxy does not have (the app was never
// reached, an empty request line): nginx writes "-" for the same cases, so
// log tooling written for luhn/gunicorn-proxy keeps working.
const missing = '-'

// AppendLine appends rec as one JSON object followed by '\n' to dst and
// returns the extended slice. Every value is a JSON string, in the fields and
// order of luhn/gunicorn-proxy's log. It allocates nothing once dst has room.
//
// Bytes a client sent are escaped so that the line is valid JSON and valid
// UTF-8 whatever they were, and the raw bytes can be recovered from the line:
// '"' and '\\' as \" and \\, control bytes as \n, \r, \t, \b, \f or \u00XX,
// DEL as \u007f, and every byte that is not part of valid UTF-8 as \u00XX
// (its value). Valid UTF-8 is copied as is, so in the raw line a \u0080–\u00ff
// escape always means one invalid byte, never a character.
func AppendLine(dst []byte, rec *proxy.AccessRecord) []byte {
	return appendLine(dst, rec, time.Local)
}

// appendLine takes the zone separately so tests can pin it without touching
// the process-wide time.Local.
func appendLine(dst []byte, rec *proxy.AccessRecord, loc *time.Location) []byte {
	dst = append(dst, `{"ip":`...)
	dst = appendText(dst, rec.ClientIP)
	dst = append(dst, `,"method":`...)
	dst = appendText(dst, rec.Method)
	dst = append(dst, `,"uri":`...)
	dst = appendText(dst, rec.URI)

	dst = append(dst, `,"status":"`...)
	if rec.Status > 0 {
		dst = strconv.AppendInt(dst, int64(rec.Status), 10)
	} else {
		dst = append(dst, missing)
	}

	dst = append(dst, `","processing_time":"`...)
	if rec.UpstreamTime >= 0 {
		dst = appendSeconds(dst, rec.UpstreamTime)
	} else {
		dst = append(dst, missing)
	}

	dst = append(dst, `","request_time":"`...)
	switch {
	case rec.Start.IsZero() || rec.End.IsZero():
		dst = append(dst, missing)
	case rec.End.Before(rec.Start):
		// A wall clock stepped back between the two readings; nginx clamps
		// $request_time at zero for the same reason.
		dst = appendSeconds(dst, 0)
	default:
		dst = appendSeconds(dst, rec.End.Sub(rec.Start))
	}

	dst = append(dst, `","request_size":"`...)
	if rec.RequestSize >= 0 {
		dst = strconv.AppendInt(dst, rec.RequestSize, 10)
	} else {
		dst = append(dst, missing)
	}

	dst = append(dst, `","time":"`...)
	if rec.Start.IsZero() {
		dst = append(dst, missing)
	} else {
		dst = appendISO8601(dst, rec.Start.In(loc))
	}
	return append(dst, "\"}\n"...)
}

// appendSeconds writes d like nginx's $request_time: whole seconds, a dot and
// exactly three digits of milliseconds, truncated rather than rounded.
func appendSeconds(dst []byte, d time.Duration) []byte {
	ms := d.Milliseconds()
	dst = strconv.AppendInt(dst, ms/1000, 10)
	ms %= 1000
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

// appendISO8601 writes t like nginx's $time_iso8601 ("2026-11-25T15:09:47+00:00").
// It is written by hand because time.AppendFormat parses its layout on every
// call, which costs more than the rest of the line.
func appendISO8601(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05-07:00")
	}
	hour, minute, sec := t.Clock()
	_, offset := t.Zone()
	dst = append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	// Whole minutes first, as time.Format does: a historical offset of
	// -30s is "+00:00", not "-00:00".
	zone, sign := offset/60, byte('+')
	if zone < 0 {
		zone, sign = -zone, '-'
	}
	oh, om := zone/60, zone%60
	return append(dst, sign, byte('0'+oh/10), byte('0'+oh%10), ':', byte('0'+om/10), byte('0'+om%10))
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes that are copied into a JSON string unescaped.
// DEL is left out although JSON allows it: a log line may end up on a
// terminal, and no legitimate request carries it.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether all 8 bytes packed in x are plain ASCII, with the
// classic SWAR tests (each exact for "any byte"): none below 0x20, none
// above 0x7e, none equal to '"' or '\\'. URIs are mostly such runs:
// testing a word at a time makes a typical line about 15% cheaper, and one
// full of escapes about 10% dearer.
func plain8(x uint64) bool {
	control := (x - ones*0x20) &^ x
	high := (x + ones) | x
	q := x ^ (ones * '"')
	quote := (q - ones) &^ q
	bs := x ^ (ones * '\\')
	backslash := (bs - ones) &^ bs
	return (control|high|quote|backslash)&highs == 0
}

// appendText writes s as a JSON string, or "-" when s is empty (see missing).
func appendText(dst, s []byte) []byte {
	if len(s) == 0 {
		return append(dst, '"', missing, '"')
	}
	dst = append(dst, '"')
	// Runs of bytes that need no escape are copied in one append: for a
	// typical request the whole value is a single run.
	run := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && plain8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		if i == len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[run:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			run = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			// Not UTF-8 (a stray byte, a truncated, overlong or surrogate
			// sequence): keep the byte's value rather than replacing it with
			// U+FFFD, which would lose what the client actually sent.
			dst = append(dst, s[run:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			i++
			run = i
			continue
		}
		i += size
	}
	dst = append(dst, s[run:]...)
	return append(dst, '"')
}
