package ratelimit

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// addresses are n distinct client addresses as the proxy passes them
// (text), IPv4 and IPv6 mixed.
func addresses(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		if i%4 == 3 {
			out[i] = []byte(fmt.Sprintf("2001:db8:%x:%x::%x", i>>16, i&0xffff, i%251))
		} else {
			out[i] = []byte(fmt.Sprintf("10.%d.%d.%d", byte(i>>16), byte(i>>8), byte(i)))
		}
	}
	return out
}

// benchmarkLimit cycles through 100 000 distinct addresses on one
// goroutine. With the default 10m table (163 840 addresses) they all fit;
// with 1m (16 384) nearly every request evicts the least recently used
// entry: the flood case.
func benchmarkLimit(b *testing.B, size int64) {
	keys := addresses(100_000)
	l, err := New(Config{Rate: 10_000, Burst: 20, Entries: EntriesForSize(size)})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys { // fill the table
		l.Limit(k)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Limit(keys[i])
		if i++; i == len(keys) {
			i = 0
		}
	}
}

func BenchmarkLimit100kAddresses(b *testing.B)         { benchmarkLimit(b, 10<<20) }
func BenchmarkLimit100kAddressesEvicting(b *testing.B) { benchmarkLimit(b, 1<<20) }

// BenchmarkLimitParallel is every core limiting at once, each goroutine
// walking the 100 000 addresses from its own offset.
func BenchmarkLimitParallel(b *testing.B) {
	keys := addresses(100_000)
	l, err := New(Config{Rate: 10_000, Burst: 20, Entries: EntriesForSize(10 << 20)})
	if err != nil {
		b.Fatal(err)
	}
	var offset atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(offset.Add(7919)) % len(keys)
		for pb.Next() {
			l.Limit(keys[i])
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
}

// BenchmarkLimitOneAddress is one busy client: the hit path.
func BenchmarkLimitOneAddress(b *testing.B) {
	l, err := New(Config{Rate: 10_000, Entries: 1024})
	if err != nil {
		b.Fatal(err)
	}
	key := []byte("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		l.Limit(key)
	}
}
