package main

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// melody writes every queued frame to the socket with its own write(2),
// and on a busy server that syscall is most of the CPU (BENCHMARKS.md,
// "Profiles"). batchConn sits between gorilla and the TCP connection:
// while more frames are queued for the connection it collects their bytes,
// and it writes them with one syscall once the queue is empty. A frame
// that finds nothing queued behind it goes out at once, so a quiet
// connection sees no added latency.
//
// The queue is counted here: client.send adds a frame before handing it
// to melody, and melody's sent-message callback (flushSent) takes it away
// after gorilla wrote it, flushing when none are left.
//
// batchConn owns the socket's write deadline. gorilla sets a deadline
// right before each write, under its own lock; a batch is written later,
// outside that lock, so it is written under the latest deadline of the
// frames in it, and a pong gorilla writes from the reading goroutine (with
// a 1 s deadline) cannot shorten a batch already on its way.
type batchConn struct {
	net.Conn
	queued atomic.Int64 // frames handed to melody and not yet written by gorilla
	next   atomic.Int64 // the deadline gorilla set for its next write, in Unix ns; 0 for none
	writes atomic.Int64 // writes to the socket so far: what batching saves

	mu       sync.Mutex // guards buf, deadline and err, and orders writes to Conn
	buf      *[]byte    // collected bytes; nil when empty, returned to the pool
	deadline time.Time  // for writing buf: the latest of its frames' deadlines
	err      error      // the first write error, or net.ErrClosed; every later write returns it
}

// maxBatchBytes bounds what one connection collects before it writes
// anyway, so a burst of large frames does not grow one buffer without end.
const maxBatchBytes = 32 << 10

// closeFlushWait bounds how long Close spends writing what is collected.
const closeFlushWait = time.Second

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxBatchBytes); return &b }}

// SetWriteDeadline records the deadline for the next Write; see batchConn.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.next.Store(0)
	} else {
		c.next.Store(t.UnixNano())
	}
	return nil
}

func (c *batchConn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// Write collects p while frames are queued behind it and writes
// everything collected otherwise. gorilla serialises its own calls; the
// mutex orders them with flushSent, which runs outside gorilla's lock.
func (c *batchConn) Write(p []byte) (int, error) {
	var dl time.Time
	if ns := c.next.Load(); ns != 0 {
		dl = time.Unix(0, ns)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.queued.Load() <= 0 && c.buf == nil {
		return c.writeLocked(p, dl)
	}
	if c.buf == nil {
		c.buf = batchBufs.Get().(*[]byte)
		c.deadline = dl
	} else {
		c.deadline = laterDeadline(c.deadline, dl)
	}
	*c.buf = append(*c.buf, p...)
	if c.queued.Load() <= 0 || len(*c.buf) >= maxBatchBytes {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flushSent is called after gorilla wrote one queued frame: the last of
// a batch writes the batch.
func (c *batchConn) flushSent() {
	if c.queued.Add(-1) > 0 {
		return
	}
	c.mu.Lock()
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		// The write deadline passed or the peer is gone: closing makes the
		// reader fail, and melody then ends the session as usual.
		c.Conn.Close()
	}
}

// unqueue takes back a frame melody did not queue after all (session
// closed, or send buffer full). It never writes: it runs in whoever was
// sending, which must not wait on this connection's socket; a connection
// in that state is being closed, and Close writes what is left.
func (c *batchConn) unqueue() { c.queued.Add(-1) }

func (c *batchConn) flushLocked() error {
	if c.buf == nil || c.err != nil {
		return c.err
	}
	_, err := c.writeLocked(*c.buf, c.deadline)
	if cap(*c.buf) <= 2*maxBatchBytes {
		*c.buf = (*c.buf)[:0]
		batchBufs.Put(c.buf)
	}
	c.buf = nil
	return err
}

func (c *batchConn) writeLocked(p []byte, deadline time.Time) (int, error) {
	if err := c.Conn.SetWriteDeadline(deadline); err != nil {
		c.err = err
		return 0, err
	}
	c.writes.Add(1)
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// Close writes what is collected (a close frame may be among it), for at
// most closeFlushWait, then closes the connection. When a write is already
// blocked on a full socket, Close does not wait behind it for long:
// closing the connection is what unblocks it.
func (c *batchConn) Close() error {
	for range 10 {
		if c.mu.TryLock() {
			if c.buf != nil {
				c.deadline = earlierDeadline(c.deadline, time.Now().Add(closeFlushWait))
				_ = c.flushLocked()
			}
			if c.err == nil {
				c.err = net.ErrClosed
			}
			c.mu.Unlock()
			break
		}
		time.Sleep(2 * time.Millisecond) // held briefly by a pong, or long by a blocked write
	}
	return c.Conn.Close()
}

// closeNow closes the connection without writing what is collected: for
// cutting off clients that stopped reading, where a flush would wait for
// the write deadline.
func (c *batchConn) closeNow() error { return c.Conn.Close() }

// laterDeadline and earlierDeadline compare write deadlines, where the
// zero time means none.
func laterDeadline(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if a.After(b) {
		return a
	}
	return b
}

func earlierDeadline(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case a.Before(b):
		return a
	}
	return b
}

// batchingWriter hands melody's upgrader a batchConn in place of the
// hijacked TCP connection.
type batchingWriter struct {
	http.ResponseWriter
	c *Conn
}

func (w batchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.c.out = &batchConn{Conn: conn}
	return w.c.out, rw, nil
}
