package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// runIdle holds -conns signed-in connections (accounts from 0 on) and
// reports how much the server's resident memory grew per connection.
// Against parley, connections may also be members of rooms of -members.
func (r *runner) runIdle(ctx context.Context) error {
	N, M := r.cfg.conns, r.cfg.members
	r.res.setLabel("idle %d", N)
	r.res.Params["conns"], r.res.Params["members"], r.res.Params["settle_s"] = N, M, r.cfg.settle.Seconds()
	if r.cfg.pid == 0 {
		return fmt.Errorf("idle measures the server's memory: give -pid")
	}
	base, err := readProc(r.cfg.pid)
	if err != nil {
		return err
	}
	r.res.Metrics["server_base_rss_mb"] = float64(base.RSSKB) / 1024
	roomsOf := func(k int) []string {
		if M == 0 {
			return nil
		}
		return []string{fmt.Sprintf("idle-%d-%d", M, k/M)}
	}
	conns, err := r.connectAll(ctx, r.firstUser(0), N, roomsOf)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	if err := r.quiesce(ctx, 5*time.Minute); err != nil {
		return err
	}
	r.logf("all connected; waiting %s before reading the server's memory", r.cfg.settle)
	win := r.beginWindow(ctx, 0)
	if err := sleep(ctx, r.cfg.settle); err != nil {
		return err
	}
	// Read the memory before win.end, whose heap profile forces a GC.
	st, err := readProc(r.cfg.pid)
	if err != nil {
		return err
	}
	win.end()
	r.res.Metrics["rss_per_conn_kb"] = float64(st.RSSKB-base.RSSKB) / float64(N)
	r.res.Metrics["presence_frames"] = float64(r.counters.presence.Load())
	r.reportConnHealth(conns)
	return nil
}

// stormLimit is how long reconnecting clients keep trying (each attempt
// dials with retries and a 10 s handshake timeout) before the storm is
// reported as not recovered.
const stormLimit = 2 * time.Minute

// runReconnect: -conns clients (accounts from 2000 on, in rooms of
// -members, the rooms scenario's rooms) sign in, then all drop their TCP
// connection at once and immediately reconnect and sign in again, with
// their token against parley and their username against the tutorial.
// The figure is the time from the drop until the last client is
// authenticated.
func (r *runner) runReconnect(ctx context.Context) error {
	N, M := r.cfg.conns, r.cfg.members
	r.res.setLabel("reconnect %d", N)
	r.res.Params["conns"], r.res.Params["members"] = N, M
	roomsOf := func(k int) []string { return []string{fmt.Sprintf("grp-%d-%d", M, k/M)} }
	first := r.firstUser(2000)
	conns, err := r.connectAll(ctx, first, N, roomsOf)
	if err != nil {
		return err
	}
	if err := r.quiesce(ctx, 5*time.Minute); err != nil {
		closeAll(conns)
		return err
	}
	presence0 := r.counters.presence.Load()

	r.logf("dropping %d connections and reconnecting them at once", N)
	win := r.beginWindow(ctx, 10*time.Second)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.drop() }()
	}
	wg.Wait()

	start := time.Now()
	lat := newLatencies(4 * runtime.GOMAXPROCS(0))
	var last atomic.Int64
	again := make([]*conn, N)
	var gaveUp, failedAttempts atomic.Int64
	err = forEach(ctx, N, N, func(ctx context.Context, k int) error {
		var c *conn
		for {
			var err error
			if c, err = r.connect(ctx, first+k, nil); err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Since(start) > stormLimit {
				gaveUp.Add(1)
				return nil
			}
			failedAttempts.Add(1)
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		again[k] = c
		d := time.Since(start)
		lat.record(k, d.Nanoseconds())
		for {
			prev := last.Load()
			if int64(d) <= prev || last.CompareAndSwap(prev, int64(d)) {
				break
			}
		}
		return nil
	})
	defer closeAll(again)
	if err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	allIn := time.Duration(last.Load())
	if n := gaveUp.Load(); n > 0 {
		r.res.Metrics["not_back_within_limit"] = float64(n)
		r.res.note("%d of %d clients were not signed in again %s after the drop; the figure is that limit", n, N, stormLimit)
		allIn = stormLimit
	}
	if n := failedAttempts.Load(); n > 0 {
		r.res.Metrics["failed_attempts"] = float64(n)
		r.res.note("%d reconnection attempts failed (dial or handshake timeout) and were retried", n)
	}
	r.logf("%d of %d signed in again after %.2fs", int64(N)-gaveUp.Load(), N, allIn.Seconds())
	if err := r.quiesce(ctx, time.Minute); err != nil {
		return err
	}
	win.end()
	r.res.Metrics["all_authenticated_s"] = allIn.Seconds()
	lat.report(r.res, "client")
	r.res.Metrics["presence_frames"] = float64(r.counters.presence.Load() - presence0)
	if r.cfg.target == "tutorial" {
		r.res.note("the tutorial keeps no membership: its clients are signed in again but in no room until they join")
	}
	r.reportConnHealth(again)
	return nil
}
