package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"time"
	"unsafe"
)

// Config is a limiter's configuration, already parsed.
type Config struct {
	// Rate is the rate each address is held to (RATE_LIMIT).
	Rate Rate
	// Burst is how many requests over the rate an address may have
	// outstanding before further ones are refused (RATE_LIMIT_BURST).
	Burst int
	// NoDelay lets requests within the burst through at once instead of
	// spacing them at the rate (RATE_LIMIT_NODELAY).
	NoDelay bool
	// Entries is how many addresses the table holds (EntriesForSize of
	// RATE_LIMIT_SIZE).
	Entries int
	// Shards splits the table, each part under its own lock; 0 chooses
	// from Entries. It is a power of two.
	Shards int
	// Clock returns a monotonic time in milliseconds; nil uses the
	// system's monotonic clock. Tests inject their own.
	Clock func() int64
}

// Limiter is nginx's limit_req for one zone keyed by client address. It
// implements proxy.Limiter and is safe for concurrent use.
type Limiter struct {
	rate    Rate
	burst   int64 // thousandths
	delayAt int64 // excess beyond which requests wait: 0, or the burst with nodelay
	shards  []shard
	shift   uint8 // hash >> shift picks the shard
	seed    maphash.Seed
	now     func() int64
}

// New builds a Limiter and allocates its whole table.
func New(cfg Config) (*Limiter, error) {
	if cfg.Rate <= 0 || cfg.Rate > MaxRequests*1000 {
		return nil, fmt.Errorf("ratelimit: rate %d is out of range", cfg.Rate)
	}
	if cfg.Burst < 0 || cfg.Burst > MaxRequests {
		return nil, fmt.Errorf("ratelimit: burst %d is not 0–%d", cfg.Burst, MaxRequests)
	}
	if cfg.Entries < 1 {
		return nil, errors.New("ratelimit: the table must hold at least one address")
	}
	shards := cfg.Shards
	if shards == 0 {
		// Enough locks that cores rarely meet on one, few enough that
		// each shard's LRU order stays meaningful.
		shards = 1 << min(6, bits.Len(uint(cfg.Entries/256)))
	}
	if shards < 1 || shards&(shards-1) != 0 || shards > cfg.Entries {
		return nil, fmt.Errorf("ratelimit: %d shards for %d entries", shards, cfg.Entries)
	}
	l := &Limiter{
		rate:   cfg.Rate,
		burst:  int64(cfg.Burst) * 1000,
		shards: make([]shard, shards),
		shift:  uint8(64 - bits.TrailingZeros(uint(shards))),
		seed:   maphash.MakeSeed(),
		now:    cfg.Clock,
	}
	if cfg.NoDelay {
		l.delayAt = l.burst
	}
	if l.now == nil {
		start := time.Now()
		l.now = func() int64 { return time.Since(start).Milliseconds() }
	}
	per, extra := cfg.Entries/shards, cfg.Entries%shards
	for i := range l.shards {
		n := per
		if i < extra {
			n++
		}
		l.shards[i] = newShard(n)
	}
	return l, nil
}

// Memory is the bytes the table takes, all allocated by New.
func (l *Limiter) Memory() int {
	total := int(unsafe.Sizeof(*l))
	for i := range l.shards {
		total += l.shards[i].memory()
	}
	return total
}

// Limit accounts one request from the client at key (an IP address as
// text, with or without a port) and says whether it may go on, and after
// how long. As nginx, a request with an empty key is not limited.
func (l *Limiter) Limit(key []byte) (wait time.Duration, ok bool) {
	if len(key) == 0 {
		return 0, true
	}
	k := l.keyOf(key)
	h := maphash.Bytes(l.seed, k[:])
	s := &l.shards[h>>l.shift]
	now := l.now()

	s.mu.Lock()
	var excess int64
	if idx := s.find(&k, uint32(h)); idx >= 0 {
		e := &s.entries[idx]
		s.touch(idx) // refused or not, the address was just seen
		ms := max(now-e.last, 0)
		excess = max(int64(e.excess)-drained(l.rate, ms)+1000, 0)
		if excess > l.burst {
			s.mu.Unlock()
			return 0, false
		}
		e.excess = int32(excess)
		e.last = now
	} else {
		idx = s.alloc(now, l.rate)
		e := &s.entries[idx]
		*e = entry{key: k, hash: uint32(h), last: now}
		s.insert(idx)
		s.pushFront(idx)
	}
	s.mu.Unlock()

	if excess <= l.delayAt {
		return 0, true
	}
	return time.Duration((excess-l.delayAt)*1000/int64(l.rate)) * time.Millisecond, true
}

// drained is how many thousandths of a request drain in ms milliseconds,
// truncated as nginx truncates it. Beyond a day everything has drained;
// capping ms there keeps the product far from overflow.
func drained(rate Rate, ms int64) int64 {
	return int64(rate) * min(ms, 86_400_000) / 1000
}

// keyOf turns a client address into the 16 bytes the table keys on, as
// nginx's $binary_remote_addr: "203.0.113.7", "203.0.113.7:5555" and
// "::ffff:203.0.113.7" are one client. Something that is not an address
// is hashed into ff00::/8, multicast, which no client has.
func (l *Limiter) keyOf(b []byte) [16]byte {
	if a, ok := parseAddr(b); ok {
		return a.Unmap().As16()
	}
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:8], maphash.Bytes(l.seed, b))
	binary.LittleEndian.PutUint64(k[8:], maphash.Bytes(l.seed, k[:8]))
	k[0] = 0xff
	return k
}

// parseAddr reads an address with or without a port. It picks the parser
// by shape, so that a key with a port is not first failed by ParseAddr:
// a parse error allocates, and this runs on every request.
func parseAddr(b []byte) (netip.Addr, bool) {
	s := unsafe.String(&b[0], len(b)) // parsed only, never kept
	withPort := b[0] == '['
	if !withPort {
		colons := 0
		for _, c := range b {
			if c == ':' {
				colons++
			}
		}
		withPort = colons == 1
	}
	if withPort {
		ap, err := netip.ParseAddrPort(s)
		return ap.Addr(), err == nil
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}
