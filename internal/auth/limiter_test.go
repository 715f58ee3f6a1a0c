package auth

import (
	"sync"
	"testing"
	"time"
)

// TestLimiter_ReserveBeforeWork: of many attempts started at once, only
// the allowance gets through, however long each takes; a refund gives
// exactly one back; the bucket refills with time.
func TestLimiter_ReserveBeforeWork(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	l := NewLimiter(10, 10*time.Minute) // one back a minute
	l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	var wg sync.WaitGroup
	var granted sync.Map
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, ok, _ := l.Reserve("alice"); ok {
				granted.Store(i, r)
			}
		}()
	}
	wg.Wait()
	n := 0
	var one Reservation
	granted.Range(func(_, v any) bool { n++; one = v.(Reservation); return true })
	if n != 10 {
		t.Fatalf("%d of 50 simultaneous attempts got through, want 10", n)
	}
	if blocked, wait := l.Blocked("alice"); !blocked || wait != time.Minute {
		t.Fatalf("after the allowance: blocked=%v wait=%v, want blocked for a minute", blocked, wait)
	}
	if blocked, _ := l.Blocked("bob"); blocked {
		t.Fatal("another key is blocked")
	}
	one.Cancel()
	if _, ok, _ := l.Reserve("alice"); !ok {
		t.Fatal("a refunded event was not given back")
	}
	if _, ok, _ := l.Reserve("alice"); ok {
		t.Fatal("a refund gave back more than one event")
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	for i := range 2 {
		if _, ok, _ := l.Reserve("alice"); !ok {
			t.Fatalf("event %d of the refill did not come back", i+1)
		}
	}
	if _, ok, _ := l.Reserve("alice"); ok {
		t.Fatal("more came back than the time allows")
	}
}
