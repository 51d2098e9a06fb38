package ratelimit

import (
	"fmt"
	"testing"
)

// A full table evicts the least recently used address, as nginx's zone
// does; an address seen again moves to the recent end, refused or not.
func TestEvictionOrder(t *testing.T) {
	l, c := newLimiter(t, Config{Rate: 1000, Entries: 4, Shards: 1})
	for _, k := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		l.Limit([]byte(k))
		c.ms += 10
	}
	if _, ok := l.Limit([]byte("10.0.0.1")); ok { // refused, but touched
		t.Fatal("10.0.0.1 passed twice within 40 ms at 1r/s")
	}
	l.Limit([]byte("10.0.0.5")) // evicts 10.0.0.2, the least recently used
	for k, want := range map[string]bool{"10.0.0.1": true, "10.0.0.2": false, "10.0.0.3": true, "10.0.0.4": true, "10.0.0.5": true} {
		if l.has(k) != want {
			t.Errorf("after eviction, %s in the table: %v, want %v", k, !want, want)
		}
	}
	checkShard(t, &l.shards[0])

	// An evicted address comes back with a fresh state: the price of a
	// bounded table, as with nginx.
	l.Limit([]byte("10.0.0.6")) // evicts 10.0.0.3
	l.Limit([]byte("10.0.0.7")) // evicts 10.0.0.4
	l.Limit([]byte("10.0.0.8")) // evicts 10.0.0.1
	if _, ok := l.Limit([]byte("10.0.0.1")); !ok {
		t.Error("10.0.0.1 was evicted, yet still limited")
	}
	checkShard(t, &l.shards[0])
}

// Before it evicts anyone, the table frees entries that have been idle a
// minute and fully drained (nginx's expiry of zero states), so a quiet
// address goes before a busy one that is still over its rate.
func TestExpiryBeforeEviction(t *testing.T) {
	l, c := newLimiter(t, Config{Rate: 1000, Burst: 100, NoDelay: true, Entries: 3, Shards: 1})
	l.Limit([]byte("10.0.0.1")) // quiet: one request
	for i := 0; i < 100; i++ {
		l.Limit([]byte("10.0.0.2")) // busy: excess 99 000, drains in 99 s
	}
	l.Limit([]byte("10.0.0.3"))
	c.ms += 61_000
	// The LRU order is 1, 2, 3 (oldest first). 1 is drained and idle: it is
	// freed. 2 is still over: the expiry stops there, as nginx's does.
	l.Limit([]byte("10.0.0.4"))
	if l.has("10.0.0.1") || !l.has("10.0.0.2") || !l.has("10.0.0.3") || !l.has("10.0.0.4") {
		t.Errorf("after expiry: 1 %v, 2 %v, 3 %v, 4 %v", l.has("10.0.0.1"), l.has("10.0.0.2"), l.has("10.0.0.3"), l.has("10.0.0.4"))
	}
	checkShard(t, &l.shards[0])
}

// A flood of spoofed addresses cannot grow the table: a million distinct
// addresses through a table of 1000 allocate nothing, leave it at its
// capacity with its index consistent, and an abuser who keeps sending
// stays limited, since each of its requests makes it the most recent.
func TestFlood(t *testing.T) {
	l, c := newLimiter(t, Config{Rate: 1000, Burst: 5, NoDelay: true, Entries: 1000, Shards: 4})
	memory := l.Memory()
	keys := make([][]byte, 1<<20)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("%d.%d.%d.%d", 1+i>>24, byte(i>>16), byte(i>>8), byte(i)))
	}
	abuser := []byte("203.0.113.66")
	var abuserPassed int
	var start int64
	// AllocsPerRun runs the flood twice (once to warm up): the second
	// runs into a table already full of the first's addresses.
	allocs := testing.AllocsPerRun(1, func() {
		abuserPassed, start = 0, c.ms
		for i, k := range keys {
			if i%100 == 0 {
				c.ms++ // the abuser: 1 request per ms, 1000 times its rate
				if _, ok := l.Limit(abuser); ok {
					abuserPassed++
				}
			}
			l.Limit(k)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations for a flood of %d addresses", allocs, len(keys))
	}
	if l.Memory() != memory {
		t.Errorf("memory %d → %d", memory, l.Memory())
	}
	total := 0
	for i := range l.shards {
		checkShard(t, &l.shards[i])
		for idx := l.shards[i].head; idx >= 0; idx = l.shards[i].entries[idx].next {
			total++
		}
	}
	if total != 1000 {
		t.Errorf("%d addresses in a table of 1000", total)
	}
	// 1 + burst 5 at once, then 1 per 1000 ms of the ~10 486 ms the flood took.
	elapsed := c.ms - start
	if max := 6 + elapsed/1000; int64(abuserPassed) > max {
		t.Errorf("the abuser passed %d times in %d ms, at most %d allowed", abuserPassed, elapsed, max)
	}
}

// Random inserts, hits and evictions keep the index and the lists
// consistent; backward-shift deletion is the delicate part.
func TestTableInvariants(t *testing.T) {
	for _, entries := range []int{1, 2, 3, 7, 64, 333} {
		l, c := newLimiter(t, Config{Rate: 1000, Burst: 2, Entries: entries, Shards: 1})
		for i := 0; i < 20000; i++ {
			c.ms += int64(i % 7 * 3000)
			l.Limit([]byte(fmt.Sprintf("10.1.%d.%d", (i*7919)%13, (i*104729)%(entries*3+1))))
			if i%997 == 0 {
				checkShard(t, &l.shards[0])
			}
		}
		checkShard(t, &l.shards[0])
	}
}
