package ratelimit

import (
	"math/bits"
	"sync"
	"unsafe"
)

// entry is the state of one address. 40 bytes.
type entry struct {
	key    [16]byte // the address, IPv4 mapped into IPv6 (nginx's $binary_remote_addr)
	last   int64    // when the excess was last computed, in milliseconds
	excess int32    // thousandths of a request; at most (MaxRequests+1)*1000
	hash   uint32   // low bits of the key's hash: its home slot
	prev   int32    // LRU neighbours (towards the most recent); -1 at the ends
	next   int32
}

// shard is a fixed-capacity hash table with an LRU list, under one lock.
// The index is open addressing with linear probing and backward-shift
// deletion: no tombstones, so it never needs rebuilding, and nothing is
// ever allocated after New.
type shard struct {
	mu      sync.Mutex
	slots   []int32 // entry index + 1; 0 is empty. len is a power of two, ≥ 2 × capacity
	mask    uint32
	entries []entry
	used    int32 // entries handed out so far; beyond it they are fresh
	free    int32 // a list of entries freed by expiry, through next; -1 when empty
	head    int32 // most recently used; -1 when empty
	tail    int32 // least recently used
	_       [64]byte
}

func newShard(capacity int) shard {
	nslots := 1 << bits.Len(uint(2*capacity-1))
	return shard{
		slots:   make([]int32, nslots),
		mask:    uint32(nslots - 1),
		entries: make([]entry, capacity),
		free:    -1,
		head:    -1,
		tail:    -1,
	}
}

// memory is the bytes the shard's storage takes.
func (s *shard) memory() int {
	return len(s.slots)*4 + len(s.entries)*int(unsafe.Sizeof(entry{})) + int(unsafe.Sizeof(*s))
}

// find returns the index of key's entry, or -1.
func (s *shard) find(key *[16]byte, hash uint32) int32 {
	for i := hash & s.mask; ; i = (i + 1) & s.mask {
		slot := s.slots[i]
		if slot == 0 {
			return -1
		}
		if e := &s.entries[slot-1]; e.hash == hash && e.key == *key {
			return slot - 1
		}
	}
}

// insert puts entry idx, whose key and hash are set, into the index.
func (s *shard) insert(idx int32) {
	i := s.entries[idx].hash & s.mask
	for s.slots[i] != 0 {
		i = (i + 1) & s.mask
	}
	s.slots[i] = idx + 1
}

// remove takes entry idx out of the index and the LRU list.
func (s *shard) remove(idx int32) {
	i := s.entries[idx].hash & s.mask
	for s.slots[i] != idx+1 {
		i = (i + 1) & s.mask
	}
	// Backward shift: move later members of the probe run into the hole
	// when the hole lies between their home slot and where they are.
	for {
		s.slots[i] = 0
		j := i
		for {
			j = (j + 1) & s.mask
			slot := s.slots[j]
			if slot == 0 {
				s.unlink(idx)
				return
			}
			home := s.entries[slot-1].hash & s.mask
			// The entry at j may fill the hole at i unless its home lies
			// cyclically in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				s.slots[i] = slot
				i = j
				break
			}
		}
	}
}

func (s *shard) unlink(idx int32) {
	e := &s.entries[idx]
	if e.prev >= 0 {
		s.entries[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.entries[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *shard) pushFront(idx int32) {
	e := &s.entries[idx]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.entries[s.head].prev = idx
	}
	s.head = idx
	if s.tail < 0 {
		s.tail = idx
	}
}

// touch makes idx the most recently used.
func (s *shard) touch(idx int32) {
	if s.head != idx {
		s.unlink(idx)
		s.pushFront(idx)
	}
}

// alloc returns an entry for a new address, not yet in the index or the
// list. As nginx does before it allocates a state, it first frees up to
// two entries at the old end of the list that have been idle for a minute
// and fully drained; with none free after that, it evicts the least
// recently used entry, whatever its state (nginx's forced expiry). The
// table is never too full to take an address, so unlike nginx, which can
// fail to allocate while requests hold states, no request is refused
// for want of room.
func (s *shard) alloc(now int64, rate Rate) int32 {
	s.expire(now, rate)
	switch {
	case s.free >= 0:
		idx := s.free
		s.free = s.entries[idx].next
		return idx
	case int(s.used) < len(s.entries):
		s.used++
		return s.used - 1
	}
	idx := s.tail
	s.remove(idx)
	s.expire(now, rate)
	return idx
}

// expire frees up to two drained entries at the old end of the list.
func (s *shard) expire(now int64, rate Rate) {
	for range 2 {
		idx := s.tail
		if idx < 0 {
			return
		}
		e := &s.entries[idx]
		ms := now - e.last
		if ms < 60_000 || int64(e.excess)-drained(rate, ms) > 0 {
			return
		}
		s.remove(idx)
		e.next = s.free
		s.free = idx
	}
}
