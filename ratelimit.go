package main

import (
	"math"
	"sync"
	"time"

	"parley/internal/auth"

	"golang.org/x/time/rate"
)

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

// perSecondLimiter is a keyed allowance of perSecond events a second with
// bursts of burst; a rate of 0 means no limit.
func perSecondLimiter(perSecond float64, burst int) *auth.Limiter {
	if perSecond <= 0 {
		return auth.NewLimiter(0, time.Second)
	}
	return auth.NewLimiter(burst, time.Duration(float64(burst)/perSecond*float64(time.Second)))
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
