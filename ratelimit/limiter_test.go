package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// clock is a settable time for the limiter, in milliseconds.
type clock struct{ ms int64 }

func (c *clock) now() int64 { return c.ms }

func newLimiter(t testing.TB, cfg Config) (*Limiter, *clock) {
	t.Helper()
	c := &clock{ms: 1_000_000}
	if cfg.Clock == nil {
		cfg.Clock = c.now
	}
	if cfg.Entries == 0 {
		cfg.Entries = 1024
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func mustRate(t testing.TB, s string) Rate {
	t.Helper()
	r, err := ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"10r/s", 10000, true},
		{"1r/s", 1000, true},
		{"600r/m", 10000, true},
		{"30r/m", 500, true},
		{"1r/m", 16, true}, // 1000/60 truncated, as nginx
		{"10R/S", 10000, true},
		{" 5r/s ", 5000, true},
		{"10", 10000, true}, // nginx reads a bare number per second
		{"1000000r/s", 1_000_000_000, true},
		{"", 0, false},
		{"10r", 0, false},
		{"r/s", 0, false},
		{"0r/s", 0, false},
		{"-1r/s", 0, false},
		{"1.5r/s", 0, false},
		{"10r/h", 0, false},
		{"10 r/s", 0, false},
		{"10r/s/s", 0, false},
		{"1000001r/s", 0, false},
		{"99999999999999999999r/s", 0, false},
		{"+5r/s", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && err.Error() != "a rate such as 10r/s or 600r/m" {
			t.Errorf("ParseRate(%q) error %q", tt.in, err)
		}
	}
	for r, want := range map[Rate]string{10000: "10r/s", 500: "30r/m", 16: "1r/m"} {
		if got := r.String(); got != want {
			t.Errorf("Rate(%d).String() = %s, want %s", r, got, want)
		}
	}
}

func TestEntriesForSize(t *testing.T) {
	if got := EntriesForSize(10 << 20); got != 163840 {
		t.Errorf("10m → %d entries", got)
	}
	if got := EntriesForSize(1 << 20); got != 16384 {
		t.Errorf("1m → %d entries, nginx's docs say about 16 thousand", got)
	}
	// The table sized for a zone fits in it.
	for _, size := range []int64{32 << 10, 1 << 20, 10 << 20, 100 << 20} {
		l, _ := newLimiter(t, Config{Rate: 1000, Entries: EntriesForSize(size)})
		if l.Memory() > int(size) {
			t.Errorf("a %d-byte zone takes %d bytes", size, l.Memory())
		}
	}
}

// step is one request in a timeline: at ms after the start, from key,
// expect ok and (when ok) that wait.
type step struct {
	at   int64
	key  string
	ok   bool
	wait time.Duration
}

func runTimeline(t *testing.T, cfg Config, steps []step) {
	t.Helper()
	l, c := newLimiter(t, cfg)
	start := c.ms
	for i, s := range steps {
		c.ms = start + s.at
		key := s.key
		if key == "" {
			key = "203.0.113.7"
		}
		wait, ok := l.Limit([]byte(key))
		if ok != s.ok || wait != s.wait {
			t.Fatalf("step %d (t=%dms, %s): got ok=%v wait=%v, want ok=%v wait=%v", i, s.at, key, ok, wait, s.ok, s.wait)
		}
	}
}

// The leaky bucket, request by request, against nginx's arithmetic.
func TestLeakyBucket(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		rate  string
		burst int
		nod   bool
		steps []step
	}{
		{"5r/s, no burst: the second at once is refused", "5r/s", 0, false, []step{
			{0, "", true, 0},
			{0, "", false, 0},
			{100, "", false, 0}, // half drained: excess 500 > 0
			{199, "", false, 0},
			{200, "", true, 0}, // refusals changed nothing: 200 ms since the last pass
			{200, "", false, 0},
			{400, "", true, 0},
		}},
		{"other addresses are other buckets", "5r/s", 0, false, []step{
			{0, "203.0.113.7", true, 0},
			{0, "203.0.113.8", true, 0},
			{0, "2001:db8::1", true, 0},
			{0, "203.0.113.7", false, 0},
			{0, "2001:db8::2", true, 0},
		}},
		{"1r/s, burst 3: delayed, then refused", "1r/s", 3, false, []step{
			{0, "", true, 0},
			{0, "", true, 1000 * ms},
			{0, "", true, 2000 * ms},
			{0, "", true, 3000 * ms},
			{0, "", false, 0},
			{500, "", false, 0},         // 3000 − 500 + 1000 = 3500 > 3000
			{1000, "", true, 3000 * ms}, // 3000 − 1000 + 1000
			{1000, "", false, 0},
			{5000, "", true, 0}, // 3000 − 4000 + 1000 = 0
		}},
		{"1r/s, burst 3, nodelay: at once, then refused", "1r/s", 3, true, []step{
			{0, "", true, 0},
			{0, "", true, 0},
			{0, "", true, 0},
			{0, "", true, 0},
			{0, "", false, 0},
			{1000, "", true, 0},
			{1000, "", false, 0},
		}},
		{"10r/s, burst 5: the delay is the excess at the rate", "10r/s", 5, false, []step{
			{0, "", true, 0},
			{0, "", true, 100 * ms},
			{0, "", true, 200 * ms},
			{50, "", true, 250 * ms}, // 2000 − 500 + 1000 = 2500
			{50, "", true, 350 * ms},
		}},
		{"600r/m is 10r/s", "600r/m", 0, false, []step{
			{0, "", true, 0},
			{99, "", false, 0},
			{100, "", true, 0},
		}},
		{"1r/m is one per 62.5 s, as nginx truncates 1000/60", "1r/m", 0, false, []step{
			{0, "", true, 0},
			{60_000, "", false, 0}, // 1000 − 16×60 = 40 left
			{62_499, "", false, 0},
			{62_500, "", true, 0},
		}},
		{"a port does not make another client", "5r/s", 0, false, []step{
			{0, "203.0.113.7", true, 0},
			{0, "203.0.113.7:5555", false, 0},
			{0, "::ffff:203.0.113.7", false, 0},
			{0, "[::ffff:203.0.113.7]:80", false, 0},
			{0, "[2001:db8::7]:80", true, 0},
			{0, "2001:db8::7", false, 0},
			{0, "2001:DB8:0::7", false, 0},
		}},
		{"not an address: keyed as given", "5r/s", 0, false, []step{
			{0, "unix:", true, 0},
			{0, "unix:", false, 0},
			{0, "unix", true, 0},
		}},
		{"a long idle drains everything", "1r/s", 2, false, []step{
			{0, "", true, 0},
			{0, "", true, 1000 * ms},
			{0, "", true, 2000 * ms},
			{365 * 24 * 3600 * 1000, "", true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runTimeline(t, Config{Rate: mustRate(t, tt.rate), Burst: tt.burst, NoDelay: tt.nod}, tt.steps)
		})
	}
}

// As nginx, an empty key is not limited.
func TestEmptyKey(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 1000})
	for i := 0; i < 10; i++ {
		if wait, ok := l.Limit(nil); !ok || wait != 0 {
			t.Fatalf("empty key: %v %v", wait, ok)
		}
	}
}

// reference is nginx's limit_req transcribed as plainly as possible, with
// an unbounded map: the model the table must agree with while nothing is
// evicted.
type reference struct {
	rate, burst, delayAt int64
	states               map[string]*struct{ excess, last int64 }
}

func (r *reference) limit(key string, now int64) (time.Duration, bool) {
	st, found := r.states[key]
	if !found {
		r.states[key] = &struct{ excess, last int64 }{0, now}
		return 0, true
	}
	ms := now - st.last
	excess := st.excess - r.rate*ms/1000 + 1000
	if excess < 0 {
		excess = 0
	}
	if excess > r.burst {
		return 0, false
	}
	st.excess, st.last = excess, now
	if excess <= r.delayAt {
		return 0, true
	}
	return time.Duration((excess-r.delayAt)*1000/r.rate) * time.Millisecond, true
}

// Random timelines over a few addresses agree with the reference, step for
// step, for several rates, bursts and nodelay.
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		rate := Rate(rng.IntN(20000) + 16)
		burst := rng.IntN(6)
		nodelay := rng.IntN(2) == 0
		l, c := newLimiter(t, Config{Rate: rate, Burst: burst, NoDelay: nodelay, Entries: 64, Shards: 4})
		ref := &reference{rate: int64(rate), burst: int64(burst) * 1000, states: map[string]*struct{ excess, last int64 }{}}
		if nodelay {
			ref.delayAt = ref.burst
		}
		for i := 0; i < 500; i++ {
			c.ms += int64(rng.IntN(3) * rng.IntN(400))
			key := fmt.Sprintf("198.51.100.%d", rng.IntN(8))
			gw, gok := l.Limit([]byte(key))
			ww, wok := ref.limit(key, c.ms)
			if gw != ww || gok != wok {
				t.Fatalf("rate %v burst %d nodelay %v, step %d (%s at %d): got %v %v, want %v %v",
					rate, burst, nodelay, i, key, c.ms, gw, gok, ww, wok)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Rate: 0, Entries: 10},
		{Rate: -5, Entries: 10},
		{Rate: 1000, Burst: -1, Entries: 10},
		{Rate: 1000, Burst: MaxRequests + 1, Entries: 10},
		{Rate: 1000, Entries: 0},
		{Rate: 1000, Entries: 10, Shards: 3},
		{Rate: 1000, Entries: 2, Shards: 4},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	l, err := New(Config{Rate: 1000, Entries: EntriesForSize(10 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.shards) != 64 {
		t.Errorf("10m: %d shards", len(l.shards))
	}
	if wait, ok := l.Limit([]byte("203.0.113.1")); !ok || wait != 0 {
		t.Error("the real clock: first request refused or delayed")
	}
}

// Concurrent use from many goroutines (run with -race): the total let
// through for one address never exceeds what the rate and burst allow.
func TestConcurrent(t *testing.T) {
	l, c := newLimiter(t, Config{Rate: 1000, Burst: 9, NoDelay: true, Entries: 256})
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if _, ok := l.Limit([]byte("203.0.113.99")); ok {
					mu.Lock()
					passed++
					mu.Unlock()
				}
				l.Limit([]byte(fmt.Sprintf("198.51.%d.%d", g, i%250)))
			}
		}(g)
	}
	wg.Wait()
	_ = c
	if passed != 10 { // the clock stands still: 1 + burst 9
		t.Errorf("%d passed, want 10", passed)
	}
	for i := range l.shards {
		checkShard(t, &l.shards[i])
	}
}

// checkShard verifies a shard's invariants: every indexed entry is
// reachable from its home slot, the LRU list holds exactly the indexed
// entries, and no key appears twice.
func checkShard(t testing.TB, s *shard) {
	t.Helper()
	indexed := map[int32]bool{}
	keys := map[[16]byte]bool{}
	for i, slot := range s.slots {
		if slot == 0 {
			continue
		}
		idx := slot - 1
		e := &s.entries[idx]
		if got := s.find(&e.key, e.hash); got != idx {
			t.Fatalf("slot %d: entry %d not found from its home (found %d)", i, idx, got)
		}
		if keys[e.key] {
			t.Fatalf("key %x indexed twice", e.key)
		}
		keys[e.key] = true
		indexed[idx] = true
	}
	n := 0
	prev := int32(-1)
	for idx := s.head; idx >= 0; idx = s.entries[idx].next {
		if !indexed[idx] {
			t.Fatalf("entry %d in the LRU list but not indexed", idx)
		}
		if s.entries[idx].prev != prev {
			t.Fatalf("entry %d: prev %d, want %d", idx, s.entries[idx].prev, prev)
		}
		prev = idx
		n++
		if n > len(s.entries) {
			t.Fatal("the LRU list loops")
		}
	}
	if s.tail != prev {
		t.Fatalf("tail %d, last in list %d", s.tail, prev)
	}
	if n != len(indexed) {
		t.Fatalf("%d in the LRU list, %d indexed", n, len(indexed))
	}
	if n > len(s.entries) {
		t.Fatalf("%d entries in a table of %d", n, len(s.entries))
	}
}

// has reports whether key has an entry in the table.
func (l *Limiter) has(key string) bool {
	k := l.keyOf([]byte(key))
	h := maphash.Bytes(l.seed, k[:])
	return l.shards[h>>l.shift].find(&k, uint32(h)) >= 0
}
