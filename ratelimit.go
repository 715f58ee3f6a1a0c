package main

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter keeps one token bucket per key (an IP address, a username,
// a user id). Buckets that have refilled completely are forgotten once the
// map grows, so memory stays bounded by the keys active recently.
type keyedLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

// maxIdleBuckets is how many buckets a keyedLimiter holds before it
// sweeps out the full (idle) ones.
const maxIdleBuckets = 10000

// newKeyedLimiter allows burst events at once and n more every per.
func newKeyedLimiter(n int, per time.Duration) *keyedLimiter {
	return &keyedLimiter{limit: rate.Every(per / time.Duration(max(n, 1))), burst: n, buckets: map[string]*rate.Limiter{}}
}

func (k *keyedLimiter) bucket(key string) *rate.Limiter {
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= maxIdleBuckets {
			now := time.Now()
			for key, b := range k.buckets {
				if b.TokensAt(now) >= float64(k.burst) {
					delete(k.buckets, key)
				}
			}
		}
		b = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = b
	}
	return b
}

// Blocked reports, without spending anything, whether key has no event
// left, and if so how long until it has one.
func (k *keyedLimiter) Blocked(key string) (bool, time.Duration) {
	if k.burst <= 0 {
		return false, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	tokens := k.bucket(key).Tokens()
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) / float64(k.limit) * float64(time.Second))
}

// Spend uses one event of key's allowance, if any is left.
func (k *keyedLimiter) Spend(key string) bool {
	if k.burst <= 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.bucket(key).Allow()
}

// retryAfterSeconds rounds a wait up to the tenth of a second, so a client
// that waits that long is allowed again.
func retryAfterSeconds(d time.Duration) float64 {
	return math.Ceil(d.Seconds()*10) / 10
}

// rateLimited is the error frame for an exhausted allowance.
func rateLimited(what string, wait time.Duration) *protoError {
	return &protoError{Code: codeRateLimited, Message: what, RetryAfter: max(retryAfterSeconds(wait), 0.1)}
}

// connLimits are one connection's token buckets. Only the connection's
// handler goroutine uses them.
type connLimits struct {
	messages *rate.Limiter // chat, private, typing
	frames   *rate.Limiter // every other frame after auth
	// strikes runs out when a client keeps sending after being told to
	// slow down; then the connection is closed with 1008.
	strikes *rate.Limiter
}

func newConnLimits(l LimitsConfig) *connLimits {
	return &connLimits{
		messages: bucket(l.MessagesPerSecond, l.Burst),
		frames:   bucket(l.FramesPerSecond, l.FramesBurst),
		strikes:  bucket(l.MessagesPerSecond, 3*l.Burst),
	}
}

// bucket is a token bucket; a rate of 0 means no limit.
func bucket(perSecond float64, burst int) *rate.Limiter {
	if perSecond == 0 {
		return rate.NewLimiter(rate.Inf, 0)
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

// ipCounter counts open connections per client address.
type ipCounter struct {
	max int // 0: no limit

	mu     sync.Mutex // guards counts
	counts map[string]int
}

// Acquire counts a connection from ip unless that would exceed the cap.
func (c *ipCounter) Acquire(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.counts[ip] >= c.max {
		return false
	}
	c.counts[ip]++
	return true
}

func (c *ipCounter) Release(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[ip] <= 1 {
		delete(c.counts, ip)
		return
	}
	c.counts[ip]--
}
