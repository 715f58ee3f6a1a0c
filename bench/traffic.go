package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// drainWait bounds the wait, after sending stops, for messages still in
// flight; what has not arrived by then is reported lost.
const drainWait = 30 * time.Second

// traffic drives chat messages through rooms and counts what arrives.
//
// A sender may have at most -window messages in flight: sent, but not
// yet received by every other member of its room (durable: not yet
// acknowledged by its own echo). The tool knows every receiver, so this
// works the same against a server that sends acknowledgements (parley)
// and one that does not (the tutorial). It keeps the send rate at what
// the server sustains instead of piling up queues, and keeps parley's
// per-connection send buffer from filling (which disconnects a client).
// With window 0 the sender is paced at -rate instead.
type traffic struct {
	r       *runner
	conns   []*conn
	senders []*sender
	ackMode bool // completion is the sender's own echo, not the deliveries

	from      atomic.Int64 // Unix ns: messages sent before are not in the latencies
	latency   *latencies   // deliveries to other members
	ackLat    *latencies   // the sender's own echo (parley's acknowledgement)
	completed atomic.Int64 // messages fully delivered (or acknowledged)
}

// sender is one sending connection and its window of messages in flight.
type sender struct {
	idx    int // carried in each message's content
	c      *conn
	room   string
	others int   // members of the room besides the sender
	expect int32 // completions per message: others, or 1 in ack mode

	slots  []slot        // seq % window -> completions still missing
	tokens chan struct{} // one per free slot
	sent   atomic.Uint64
	acks   atomic.Int64
}

type slot struct {
	pending atomic.Int32
	_       [60]byte // one slot per cache line: receivers of many senders update them at once
}

// newTraffic makes every conn a receiver and the listed ones senders.
// roomOf gives a sender's room and othersOf how many other members that
// room has.
func (r *runner) newTraffic(conns []*conn, senderConns []int, roomOf func(k int) string, othersOf func(k int) int, windowSize int, ackMode bool) *traffic {
	shards := 4 * runtime.GOMAXPROCS(0)
	t := &traffic{r: r, conns: conns, ackMode: ackMode, latency: newLatencies(shards), ackLat: newLatencies(shards)}
	for i, k := range senderConns {
		s := &sender{idx: i, c: conns[k], room: roomOf(k), others: othersOf(k)}
		s.expect = int32(s.others)
		if ackMode {
			s.expect = 1
		}
		if windowSize > 0 {
			s.slots = make([]slot, windowSize)
			s.tokens = make(chan struct{}, windowSize)
			for range windowSize {
				s.tokens <- struct{}{}
			}
		}
		t.senders = append(t.senders, s)
	}
	t.from.Store(1<<63 - 1)
	fn := messageFunc(t.onMessage)
	for _, c := range conns {
		c.onMessage.Store(&fn)
	}
	return t
}

// onMessage runs on the receiving connection's read loop.
func (t *traffic) onMessage(c *conn, idx int, seq uint64, sent, now int64) {
	if idx >= len(t.senders) {
		return
	}
	s := t.senders[idx]
	measured := sent >= t.from.Load()
	if s.c == c {
		s.acks.Add(1)
		if measured {
			t.ackLat.record(idx, now-sent)
		}
		if t.ackMode {
			t.complete(s, seq)
		}
		return
	}
	c.delivered.Add(1)
	if measured {
		t.latency.record(c.user, now-sent)
	}
	if !t.ackMode {
		t.complete(s, seq)
	}
}

func (t *traffic) complete(s *sender, seq uint64) {
	if s.slots == nil {
		return
	}
	if s.slots[seq%uint64(len(s.slots))].pending.Add(-1) == 0 {
		t.completed.Add(1)
		s.tokens <- struct{}{}
	}
}

// appendChat builds a chat frame carrying a bench message.
func appendChat(b []byte, room string, sender int, seq uint64, sent int64, size int) []byte {
	b = append(b, `{"type":"chat","data":{"roomId":"`...)
	b = append(b, room...)
	b = append(b, `","content":"`...)
	b = appendContent(b, sender, seq, sent, size)
	b = append(b, `","clientMsgId":"b`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, `"}}`...)
}

// sendWindowed sends as fast as the window allows until stop closes.
func (t *traffic) sendWindowed(s *sender, stop <-chan struct{}) error {
	buf := make([]byte, 0, t.r.cfg.size+128)
	for {
		select {
		case <-s.tokens:
		case <-stop:
			return nil
		}
		select {
		case <-stop:
			s.tokens <- struct{}{}
			return nil
		default:
		}
		seq := s.sent.Load()
		s.slots[seq%uint64(len(s.slots))].pending.Store(s.expect)
		now := time.Now().UnixNano()
		buf = appendChat(buf[:0], s.room, s.idx, seq, now, t.r.cfg.size)
		if err := s.c.write(buf); err != nil {
			return err
		}
		s.sent.Add(1)
	}
}

// sendPaced sends at rate messages/s until stop closes. Each message
// carries the time it was due, not the time it went out, so a stalled
// sender shows up as latency (no coordinated omission).
func (t *traffic) sendPaced(s *sender, rate float64, stop <-chan struct{}) error {
	buf := make([]byte, 0, t.r.cfg.size+128)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; k++ {
		due := start.Add(time.Duration(float64(k) * float64(time.Second) / rate))
		timer.Reset(time.Until(due))
		select {
		case <-timer.C:
		case <-stop:
			return nil
		}
		seq := s.sent.Load()
		buf = appendChat(buf[:0], s.room, s.idx, seq, due.UnixNano(), t.r.cfg.size)
		if err := s.c.write(buf); err != nil {
			return err
		}
		s.sent.Add(1)
	}
}

// totals sums what every connection and sender has counted so far.
func (t *traffic) totals() (delivered, sent, acks int64) {
	for _, c := range t.conns {
		delivered += c.delivered.Load()
	}
	for _, s := range t.senders {
		sent += int64(s.sent.Load())
		acks += s.acks.Load()
	}
	return delivered, sent, acks
}

// measure runs the senders for warmup+duration and records throughput
// over the part after the warmup, latency percentiles, and losses.
func (t *traffic) measure(ctx context.Context, paced bool) error {
	cfg := t.r.cfg
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(t.senders))
	for _, s := range t.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if paced {
				err = t.sendPaced(s, cfg.rate, stop)
			} else {
				err = t.sendWindowed(s, stop)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	stopSenders := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSenders()

	var failed error
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case failed = <-errs:
		case <-ctx.Done():
			failed = ctx.Err()
		}
		return false
	}
	if !wait(cfg.warmup) {
		return failed
	}
	t.from.Store(time.Now().UnixNano())
	d0, s0, a0 := t.totals()
	win := t.r.beginWindow(ctx, cfg.duration-cfg.warmup)
	start := time.Now()
	if !wait(cfg.duration - cfg.warmup) {
		return failed
	}
	d1, s1, a1 := t.totals()
	elapsed := time.Since(start).Seconds()
	stopSenders()
	win.end()

	m := t.r.res.Metrics
	m["deliveries_per_s"] = float64(d1-d0) / elapsed
	m["messages_per_s"] = float64(s1-s0) / elapsed
	if t.r.cfg.target == "parley" {
		m["acks_per_s"] = float64(a1-a0) / elapsed
	}
	m["measured_s"] = elapsed

	// Let what is in flight arrive, then count what never did.
	deadline := time.Now().Add(drainWait)
	var want int64
	for _, s := range t.senders {
		want += int64(s.sent.Load()) * int64(s.others)
	}
	for time.Now().Before(deadline) {
		if d, _, _ := t.totals(); d >= want {
			break
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	d, sent, acks := t.totals()
	m["messages_sent"] = float64(sent)
	if lost := want - d; lost > 0 {
		m["deliveries_lost"] = float64(lost)
		t.r.res.note("%d of %d deliveries had not arrived %s after sending stopped", lost, want, drainWait)
	}
	if t.r.cfg.target == "parley" && acks < sent {
		m["acks_missing"] = float64(sent - acks)
	}
	t.latency.report(t.r.res, "latency")
	if t.r.cfg.target == "parley" {
		t.ackLat.report(t.r.res, "ack_latency")
	}
	t.r.reportConnHealth(t.conns)
	return nil
}

// reportConnHealth notes connections the server closed during the run
// and error frames nobody asked for.
func (r *runner) reportConnHealth(conns []*conn) {
	closedByCode := map[int]int{}
	n := 0
	for _, c := range conns {
		if c != nil && c.closed() {
			n++
			closedByCode[c.closeCode()]++
		}
	}
	if n > 0 {
		r.res.Metrics["conns_closed_by_server"] = float64(n)
		r.res.note("the server closed %d connections during the run (by close code: %v; 1013 = send buffer full)", n, closedByCode)
	}
	if e := r.counters.errors.Load(); e > 0 {
		r.res.Metrics["error_frames"] = float64(e)
	}
}

// quiesce waits until no presence or other frames have arrived for
// 500 ms (the flood that follows setup), at most max.
func (r *runner) quiesce(ctx context.Context, max time.Duration) error {
	deadline := time.Now().Add(max)
	last := int64(-1)
	for time.Now().Before(deadline) {
		n := r.counters.presence.Load() + r.counters.roomUser.Load() + r.counters.other.Load()
		if n == last {
			return nil
		}
		last = n
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// --- scenarios ---

func (r *runner) runFanout(ctx context.Context) error {
	return r.runOneRoom(ctx, false)
}

func (r *runner) runPaced(ctx context.Context) error {
	return r.runOneRoom(ctx, true)
}

// runOneRoom is fanout and paced: bench account first is the sender and
// the next -receivers accounts receive, all in room fan-<receivers>.
func (r *runner) runOneRoom(ctx context.Context, paced bool) error {
	n := r.cfg.receivers
	room := fmt.Sprintf("fan-%d", n)
	if paced {
		r.res.setLabel("paced 1->%d @%g/s", n, r.cfg.rate)
	} else {
		r.res.setLabel("fanout 1->%d", n)
	}
	r.res.Params["room"], r.res.Params["receivers"], r.res.Params["size"] = room, n, r.cfg.size
	r.res.Params["duration_s"], r.res.Params["warmup_s"] = r.cfg.duration.Seconds(), r.cfg.warmup.Seconds()
	if paced {
		r.res.Params["rate"] = r.cfg.rate
	} else {
		r.res.Params["window"] = r.cfg.window
	}
	conns, err := r.connectAll(ctx, r.firstUser(0), n+1, func(int) []string { return []string{room} })
	if err != nil {
		return err
	}
	defer closeAll(conns)
	if err := r.quiesce(ctx, r.cfg.settle); err != nil {
		return err
	}
	win := r.cfg.window
	if paced {
		win = 0
	}
	t := r.newTraffic(conns, []int{0}, func(int) string { return room }, func(int) int { return n }, win, false)
	r.logf("sending for %s", r.cfg.duration)
	return t.measure(ctx, paced)
}

// runRooms: -rooms rooms of -members members (accounts from 2000 on),
// everyone sending to their own room.
func (r *runner) runRooms(ctx context.Context) error {
	R, M := r.cfg.rooms, r.cfg.members
	r.res.setLabel("rooms %dx%d", R, M)
	r.res.Params["rooms"], r.res.Params["members"], r.res.Params["window"] = R, M, r.cfg.window
	r.res.Params["size"], r.res.Params["duration_s"], r.res.Params["warmup_s"] = r.cfg.size, r.cfg.duration.Seconds(), r.cfg.warmup.Seconds()
	roomOf := func(k int) string { return fmt.Sprintf("grp-%d-%d", M, k/M) }
	conns, err := r.connectAll(ctx, r.firstUser(2000), R*M, func(k int) []string { return []string{roomOf(k)} })
	if err != nil {
		return err
	}
	defer closeAll(conns)
	if err := r.quiesce(ctx, r.cfg.settle); err != nil {
		return err
	}
	all := make([]int, len(conns))
	for k := range all {
		all[k] = k
	}
	t := r.newTraffic(conns, all, roomOf, func(int) int { return M - 1 }, r.cfg.window, false)
	r.logf("%d senders sending for %s", len(all), r.cfg.duration)
	return t.measure(ctx, false)
}

// runDurable: -senders senders (accounts from 7000 on) spread over
// -rooms rooms; a message counts when its sender's own echo, which
// parley sends only after the commit, arrives.
func (r *runner) runDurable(ctx context.Context) error {
	S, K := r.cfg.senders, r.cfg.rooms
	r.res.setLabel("durable %d senders/%d rooms", S, K)
	r.res.Params["senders"], r.res.Params["rooms"], r.res.Params["window"] = S, K, r.cfg.window
	r.res.Params["size"], r.res.Params["duration_s"], r.res.Params["warmup_s"] = r.cfg.size, r.cfg.duration.Seconds(), r.cfg.warmup.Seconds()
	roomOf := func(k int) string { return fmt.Sprintf("dur-%d-%d", K, k%K) }
	othersOf := func(k int) int {
		n := S / K
		if k%K < S%K {
			n++
		}
		return n - 1
	}
	conns, err := r.connectAll(ctx, r.firstUser(7000), S, func(k int) []string { return []string{roomOf(k)} })
	if err != nil {
		return err
	}
	defer closeAll(conns)
	if err := r.quiesce(ctx, r.cfg.settle); err != nil {
		return err
	}
	all := make([]int, len(conns))
	for k := range all {
		all[k] = k
	}
	t := r.newTraffic(conns, all, roomOf, othersOf, r.cfg.window, true)
	r.logf("%d senders sending for %s", S, r.cfg.duration)
	return t.measure(ctx, false)
}
