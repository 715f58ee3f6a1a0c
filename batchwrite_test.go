package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestBatchedWrites checks that a burst of frames queued for a connection
// leaves in far fewer writes than frames, and what batching must never
// change for a client: a burst arrives complete and in order, frames
// larger than a batch arrive intact, and a frame sent on its own, with
// nothing queued behind it, arrives at once. Two connections of two users
// get the same bursts, so one's batches never hold the other's.
func TestBatchedWrites(t *testing.T) {
	ts := startServer(t, nil)
	alice, _ := signedIn(t, ts, "alice")
	alice.join("burst")
	bob, _ := signedIn(t, ts, "bob")
	bob.join("burst")
	alice.await("userJoined")

	big := strings.Repeat("x", 3*maxBatchBytes)
	const n = 200 // below the 256-frame send buffer
	frame := func(i int) []byte {
		content := fmt.Sprintf("%d", i)
		if i%50 == 7 {
			content += big
		}
		return marshalFrame("message", messageFrame{ID: fmt.Sprint(i), RoomID: "burst", Content: content})
	}
	conns := map[string]*Conn{}
	ts.srv.hub.mu.RLock()
	for c := range ts.srv.hub.rooms["burst"] {
		conns[c.who.Load().name] = c
	}
	ts.srv.hub.mu.RUnlock()
	for round := range 3 {
		writesBefore := conns["alice"].out.writes.Load()
		for i := range n {
			ts.srv.hub.broadcast("burst", frame(round*n+i))
		}
		for _, c := range []*wsClient{alice, bob} {
			for i := range n {
				want := round*n + i
				var m messageFrame
				decodeInto(t, c.await("message"), &m)
				if m.ID != fmt.Sprint(want) {
					t.Fatalf("round %d: got message %s, want %d (out of order or lost)", round, m.ID, want)
				}
				if want%50 == 7 && len(m.Content) != len(fmt.Sprint(want))+len(big) {
					t.Fatalf("message %d: %d bytes, want %d", want, len(m.Content), len(fmt.Sprint(want))+len(big))
				}
			}
		}
		// The big frames are written on their own (beyond maxBatchBytes);
		// the small ones share writes.
		writes := conns["alice"].out.writes.Load() - writesBefore
		t.Logf("round %d: %d frames in %d writes", round, n, writes)
		if writes > n/4 {
			t.Fatalf("round %d: %d frames took %d writes: the burst was not batched", round, n, writes)
		}

		// After the burst, one frame alone: nothing is queued behind it,
		// so it must not wait for company.
		start := time.Now()
		ts.srv.hub.broadcast("burst", marshalFrame("typing", typingOutData{RoomID: "burst", Username: "carol", IsTyping: true}))
		for _, c := range []*wsClient{alice, bob} {
			c.await("typing")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("a lone frame took %v", d)
		}
	}

	// The connections still work both ways: a real chat round trip.
	alice.send("chat", map[string]string{"roomId": "burst", "content": "after the bursts"})
	bob.awaitMessage("after the bursts")
	alice.awaitMessage("after the bursts")
}

// TestBatchConnAfterWriteError checks that a connection whose socket
// failed reports the error on every later write instead of collecting
// frames it can never send.
func TestBatchConnAfterWriteError(t *testing.T) {
	ts := startServer(t, nil)
	alice, _ := signedIn(t, ts, "alice")
	alice.join("room")
	var target *Conn
	ts.srv.hub.mu.RLock()
	for c := range ts.srv.hub.rooms["room"] {
		target = c
	}
	ts.srv.hub.mu.RUnlock()

	target.out.Conn.Close() // the socket fails under the batcher
	target.out.queued.Add(1)
	// Collected, or refused already if melody noticed the dead socket
	// first and closed the session.
	_, _ = target.out.Write([]byte("x"))
	target.out.flushSent() // the batch's last frame: the write fails here
	if _, err := target.out.Write([]byte("y")); err == nil {
		t.Fatal("a write after the socket failed succeeded")
	}
	alice.waitClosed(5 * time.Second) // closing the socket ends the session
}

// TestShutdownCutsOffNonReaders checks that clients which stopped reading
// with a socket full of unsent frames do not hold up a shutdown: after
// server.shutdown_timeout they are cut off at once, not each after its
// write deadline.
func TestShutdownCutsOffNonReaders(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Server.ShutdownTimeout = time.Second
	cfg.Server.WriteWait = 20 * time.Second // longer than the test allows
	ts := startServer(t, &cfg)
	reader, _ := signedIn(t, ts, "reader")
	reader.join("hall")

	// Clients that sign in and join, then never read again.
	for i := range 3 {
		conn, _ := rawSignedIn(t, ts, fmt.Sprintf("stuck%d", i), nil)
		slowJoin(t, conn, "hall")
	}
	// 40 frames of 256 KiB: far more than the sockets hold, far fewer than
	// the 256-frame send buffer, so nobody is dropped as a slow consumer.
	big := marshalFrame("message", messageFrame{ID: "1", RoomID: "hall", Content: strings.Repeat("z", 256<<10)})
	for range 40 {
		ts.srv.hub.broadcast("hall", big)
	}
	time.Sleep(200 * time.Millisecond) // let the writers fill the sockets and block

	start := time.Now()
	ts.Stop()
	if took := time.Since(start); took > 6*time.Second {
		t.Fatalf("shutdown took %s with clients that stopped reading", took)
	}
}

// TestSlowConsumerCutOffWhileWriteBlocked: a client stops reading while
// large frames fill its socket, so a write blocks holding the batch; when
// its send buffer then fills, it is still disconnected at once, not when
// the blocked write's deadline (server.write_wait) runs out.
func TestSlowConsumerCutOffWhileWriteBlocked(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Server.SendBuffer = 8
	cfg.Server.WriteWait = 30 * time.Second
	ts := startServer(t, &cfg)
	watcher, _ := signedIn(t, ts, "watcher")
	watcher.join("hall")

	conn, stuck := rawSignedIn(t, ts, "stuck", nil)
	slowJoin(t, conn, "hall")
	id := mustParseUint(t, stuck.UserID)

	big := marshalFrame("message", messageFrame{ID: "1", RoomID: "hall", Content: strings.Repeat("z", 256<<10)})
	for range 40 { // the watcher reads; the stuck client's socket fills, then its buffer
		ts.srv.hub.sendUser(id, big)
		time.Sleep(5 * time.Millisecond)
	}
	waitForLog(t, ts, "slow consumer disconnected")
	dropped := time.Now()
	waitFor(t, "the slow consumer to be detached", func() bool { return !ts.srv.hub.Online(id) })
	if took := time.Since(dropped); took > 3*time.Second {
		t.Fatalf("the slow consumer was detached %s after it was dropped", took)
	}
}

// TestBatchConnKeepsItsDeadline: a pong written with gorilla's 1 s
// deadline while a batch is blocked on a full socket must not cut the
// batch's own deadline (server.write_wait) short, or a client that pings
// is disconnected a second into any backlog.
func TestBatchConnKeepsItsDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			peer <- c // accepted, never read
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	pc := <-peer
	defer pc.Close()
	// Small fixed buffers: the kernel cannot make room by growing them.
	_ = pc.(*net.TCPConn).SetReadBuffer(4096)
	_ = raw.(*net.TCPConn).SetWriteBuffer(4096)
	bc := &batchConn{Conn: raw}
	defer bc.closeNow()

	// Fill the socket until a write would block.
	chunk := make([]byte, 64<<10)
	for full := 0; full < 3; {
		_ = raw.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := raw.Write(chunk); err != nil {
			full++
		}
	}
	bc.queued.Add(1)
	_ = bc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := bc.Write(make([]byte, 30<<10)); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan struct{})
	go func() { bc.flushSent(); close(flushed) }()
	time.Sleep(200 * time.Millisecond)
	go func() { // the reader answering a ping
		_ = bc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = bc.Write([]byte{0x8a, 0})
	}()
	select {
	case <-flushed:
		t.Fatal("the batch gave up within 2.5 s although its deadline was 10 s away")
	case <-time.After(2500 * time.Millisecond):
	}
}
