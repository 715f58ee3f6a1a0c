package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// deliverySample is how many messages are posted for each one whose
// delivery is timed; timing every one would put a map operation on every
// write of fan-out.
const deliverySample = 16

// deliveryClock measures, for a sample of messages, the time from their
// commit to the write of their frame to the last member's socket: the
// delay people in the room see. A frame is marshalled once and the same
// bytes go to every member, so melody's report of a sent frame names it
// by its first byte.
type deliveryClock struct {
	hist    prometheus.Histogram
	count   atomic.Uint64 // messages posted
	pending sync.Map      // *byte (the frame's first) -> *timedFrame
	tracked atomic.Int64
}

type timedFrame struct {
	committed time.Time
	left      atomic.Int64 // writes still to come
}

// abandonAfter bounds how long a frame is waited for: a member dropped
// meanwhile never writes it.
const abandonAfter = time.Minute

// posted notes a message frame about to be queued to n connections, and
// times it if it is in the sample.
func (d *deliveryClock) posted(frame []byte, committed time.Time, n int) {
	if d == nil || n == 0 || len(frame) == 0 || d.count.Add(1)%deliverySample != 0 {
		return
	}
	tf := &timedFrame{committed: committed}
	tf.left.Store(int64(n))
	d.pending.Store(&frame[0], tf)
	if d.tracked.Add(1)%256 == 0 {
		d.pending.Range(func(k, v any) bool {
			if time.Since(v.(*timedFrame).committed) > abandonAfter {
				d.pending.Delete(k)
			}
			return true
		})
	}
}

// sent is told of every frame written to a socket.
func (d *deliveryClock) sent(frame []byte) {
	if d == nil || len(frame) == 0 {
		return
	}
	v, ok := d.pending.Load(&frame[0])
	if !ok {
		return
	}
	tf := v.(*timedFrame)
	if tf.left.Add(-1) == 0 {
		d.pending.Delete(&frame[0])
		d.hist.Observe(time.Since(tf.committed).Seconds())
	}
}
