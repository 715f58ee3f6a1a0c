package auth

import (
	"sync"
	"time"
)

// Limiter keeps one token bucket per key (an address, a username, a user
// id): n events at once, refilled at n per period. Buckets that have
// refilled completely are forgotten once the map grows, so memory stays
// bounded by the keys active recently.
//
// A limit guards work, so it is taken before the work (Reserve) and given
// back only where the rule says so (Reservation.Cancel): checking first
// and counting after would let many attempts started at once all pass the
// check.
type Limiter struct {
	burst float64
	every time.Duration // one event comes back per every
	now   func() time.Time

	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// maxIdleBuckets is how many buckets a Limiter holds before it sweeps out
// the full (idle) ones.
const maxIdleBuckets = 10000

// NewLimiter allows n events at once and n more every per; n <= 0 means
// no limit.
func NewLimiter(n int, per time.Duration) *Limiter {
	return &Limiter{burst: float64(n), every: per / time.Duration(max(n, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// refill brings a key's bucket up to date and returns it.
func (k *Limiter) refill(key string, now time.Time) *bucket {
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= maxIdleBuckets {
			for key, b := range k.buckets {
				if k.level(b, now) >= k.burst {
					delete(k.buckets, key)
				}
			}
		}
		b = &bucket{tokens: k.burst, at: now}
		k.buckets[key] = b
	}
	b.tokens, b.at = k.level(b, now), now
	return b
}

// level is what a bucket holds at now.
func (k *Limiter) level(b *bucket, now time.Time) float64 {
	return min(k.burst, b.tokens+float64(now.Sub(b.at))/float64(k.every))
}

// wait is how long until a bucket holds one event.
func (k *Limiter) wait(b *bucket) time.Duration {
	return time.Duration((1 - b.tokens) * float64(k.every))
}

// Blocked reports, without taking anything, whether key has no event
// left, and if so how long until it has one.
func (k *Limiter) Blocked(key string) (bool, time.Duration) {
	if k.burst <= 0 {
		return false, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.refill(key, k.now())
	if b.tokens >= 1 {
		return false, 0
	}
	return true, k.wait(b)
}

// Spend uses one event of key's allowance, if any is left.
func (k *Limiter) Spend(key string) bool {
	_, ok, _ := k.Reserve(key)
	return ok
}

// Reservation is one event taken from a key's allowance.
type Reservation struct {
	k   *Limiter // nil: nothing was taken
	key string
}

// Cancel gives the event back, as if it had not been taken.
func (r Reservation) Cancel() {
	if r.k == nil {
		return
	}
	r.k.mu.Lock()
	defer r.k.mu.Unlock()
	b := r.k.refill(r.key, r.k.now())
	b.tokens = min(r.k.burst, b.tokens+1)
}

// Reserve takes one event of key's allowance now. When none is left it
// takes nothing and says how long until one is.
func (k *Limiter) Reserve(key string) (Reservation, bool, time.Duration) {
	if k.burst <= 0 {
		return Reservation{}, true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.refill(key, k.now())
	if b.tokens < 1 {
		return Reservation{}, false, k.wait(b)
	}
	b.tokens--
	return Reservation{k: k, key: key}, true, 0
}
