package main

import (
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to a minute, to 3
// significant digits.
const (
	latencyMinUS  = 1
	latencyMaxUS  = 60_000_000
	latencyDigits = 3
)

// latencies is an HDR histogram that many reader goroutines record into.
// hdrhistogram-go is not safe for concurrent use, so it is sharded by
// connection, each shard with its own lock, and merged at the end.
type latencies struct {
	shards []latencyShard
}

type latencyShard struct {
	mu sync.Mutex // guards h
	h  *hdrhistogram.Histogram
	_  [48]byte // keeps neighbouring locks off one cache line
}

func newLatencies(shards int) *latencies {
	l := &latencies{shards: make([]latencyShard, shards)}
	for i := range l.shards {
		l.shards[i].h = hdrhistogram.New(latencyMinUS, latencyMaxUS, latencyDigits)
	}
	return l
}

// record adds one latency of ns nanoseconds, from the connection key.
func (l *latencies) record(key int, ns int64) {
	us := ns / 1000
	if us < latencyMinUS {
		us = latencyMinUS
	} else if us > latencyMaxUS {
		us = latencyMaxUS
	}
	s := &l.shards[key%len(l.shards)]
	s.mu.Lock()
	_ = s.h.RecordValue(us) // in range by the clamp above
	s.mu.Unlock()
}

// merged returns all shards in one histogram.
func (l *latencies) merged() *hdrhistogram.Histogram {
	out := hdrhistogram.New(latencyMinUS, latencyMaxUS, latencyDigits)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// report writes count and percentiles, in milliseconds, as metrics named
// prefix_p50_ms and so on.
func (l *latencies) report(res *result, prefix string) {
	h := l.merged()
	res.Metrics[prefix+"_samples"] = float64(h.TotalCount())
	if h.TotalCount() == 0 {
		return
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	res.Metrics[prefix+"_p50_ms"] = ms(h.ValueAtQuantile(50))
	res.Metrics[prefix+"_p99_ms"] = ms(h.ValueAtQuantile(99))
	res.Metrics[prefix+"_p999_ms"] = ms(h.ValueAtQuantile(99.9))
	res.Metrics[prefix+"_max_ms"] = ms(h.Max())
}
