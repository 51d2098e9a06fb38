package ratelimit

import (
	"errors"
	"strconv"
	"strings"
)

// Rate is a request rate in thousandths of a request per second, the unit
// nginx computes in: 10r/s is 10000, 1r/m is 16 (1000/60, truncated as
// nginx truncates it).
type Rate int64

// MaxRequests bounds the number in a rate (and RATE_LIMIT_BURST), so that
// the arithmetic in thousandths can never overflow.
const MaxRequests = 1_000_000

var errRate = errors.New("a rate such as 10r/s or 600r/m")

// ParseRate reads nginx's rate syntax: a whole number of requests per
// second ("10r/s") or per minute ("600r/m"). A bare number is per second,
// as nginx reads it.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	scale := int64(1)
	if len(s) >= 3 {
		switch strings.ToLower(s[len(s)-3:]) {
		case "r/s":
			s = s[:len(s)-3]
		case "r/m":
			scale = 60
			s = s[:len(s)-3]
		}
	}
	if s == "" || len(s) > 7 {
		return 0, errRate
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errRate
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > MaxRequests {
		return 0, errRate
	}
	return Rate(n * 1000 / scale), nil
}

// String writes the rate back in nginx's syntax.
func (r Rate) String() string {
	if r%1000 == 0 {
		return strconv.FormatInt(int64(r)/1000, 10) + "r/s"
	}
	return strconv.FormatInt((int64(r)*60+999)/1000, 10) + "r/m"
}

// EntrySize is the memory budgeted per address when a zone size is turned
// into a number of entries: nginx's documented 64 bytes per state
// ("one megabyte zone can keep about 16 thousand 64-byte states"). An
// entry here takes 40 bytes plus its share of the index, at most 56, so a
// table sized this way stays within the size given.
const EntrySize = 64

// EntriesForSize is how many addresses a zone of size bytes holds:
// 10m → 163840.
func EntriesForSize(size int64) int {
	return int(min(size/EntrySize, 1<<30))
}
