package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// bulkChunk is the write size of the bulk stream.
const bulkChunk = 64 << 10

// frameOverhead approximates what a message frame adds to its content:
// the JSON envelope, ids, names, timestamp and WebSocket header. A
// small write in the TCP test is -size plus this, one delivery's bytes.
const frameOverhead = 200

// runTCP measures loopback TCP without WebSocket, JSON or a chat server:
// a single bulk stream (the byte ceiling) and small writes, one per
// syscall, from one writer goroutine and then from -writers goroutines
// round-robin over -receivers connections (the delivery ceiling: parley
// writes each delivery with its own syscall).
func (r *runner) runTCP(ctx context.Context) error {
	r.res.setLabel("tcp loopback")
	r.res.Params["receivers"], r.res.Params["write_bytes"] = r.cfg.receivers, r.cfg.size+frameOverhead
	r.res.Params["duration_s"], r.res.Params["writers"] = r.cfg.duration.Seconds(), r.cfg.writers

	bytesPerS, err := tcpStream(ctx, 1, 1, bulkChunk, r.cfg.duration)
	if err != nil {
		return err
	}
	r.res.Metrics["bulk_bytes_per_s"] = bytesPerS.bytes
	small := r.cfg.size + frameOverhead
	one, err := tcpStream(ctx, r.cfg.receivers, 1, small, r.cfg.duration)
	if err != nil {
		return err
	}
	r.res.Metrics["small_writes_per_s"] = one.writes
	r.res.Metrics["small_bytes_per_s"] = one.bytes
	many, err := tcpStream(ctx, r.cfg.receivers, r.cfg.writers, small, r.cfg.duration)
	if err != nil {
		return err
	}
	r.res.Metrics["small_writes_per_s_parallel"] = many.writes
	return nil
}

type streamRate struct{ writes, bytes float64 }

// tcpStream connects conns loopback connections, writes chunk-byte
// writes round-robin from writers goroutines for d, and returns the rate
// the readers received.
func tcpStream(ctx context.Context, conns, writers, chunk int, d time.Duration) (streamRate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return streamRate{}, fmt.Errorf("tcp listen: %w", err)
	}
	defer ln.Close()
	var (
		received atomic.Int64
		readers  sync.WaitGroup
	)
	accepted := make(chan error, 1)
	go func() {
		for i := 0; i < conns; i++ {
			c, err := ln.Accept()
			if err != nil {
				accepted <- fmt.Errorf("tcp accept: %w", err)
				return
			}
			readers.Add(1)
			go func() {
				defer readers.Done()
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					received.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
		accepted <- nil
	}()
	out := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range out {
			c.Close()
		}
		readers.Wait()
	}()
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return streamRate{}, fmt.Errorf("tcp dial: %w", err)
		}
		out = append(out, c)
	}
	if err := <-accepted; err != nil {
		return streamRate{}, err
	}

	stop := make(chan struct{})
	var (
		writes   atomic.Int64
		wg       sync.WaitGroup
		writeMu  sync.Mutex // guards writeErr
		writeErr error
	)
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk)
			n := int64(0)
			defer func() { writes.Add(n) }()
			for i := w; ; i += writers {
				if i >= len(out) {
					i = w % len(out)
				}
				select {
				case <-stop:
					return
				default:
				}
				if _, err := out[i].Write(buf); err != nil {
					writeMu.Lock()
					writeErr = fmt.Errorf("tcp write: %w", err)
					writeMu.Unlock()
					return
				}
				n++
			}
		}()
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if writeErr != nil && !errors.Is(writeErr, net.ErrClosed) {
		return streamRate{}, writeErr
	}
	return streamRate{writes: float64(writes.Load()) / elapsed, bytes: float64(received.Load()) / elapsed}, ctx.Err()
}

// runFsync measures the disk: 4 KiB written and fdatasync'd in a loop,
// the most commits per second any store that syncs each commit can make.
func (r *runner) runFsync(ctx context.Context) error {
	r.res.setLabel("fsync 4KiB")
	r.res.Params["dir"], r.res.Params["duration_s"] = r.cfg.fsyncDir, r.cfg.duration.Seconds()
	f, err := os.CreateTemp(r.cfg.fsyncDir, "bench-fsync-*")
	if err != nil {
		return fmt.Errorf("fsync test file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	// Preallocate, so the loop rewrites blocks instead of growing the file.
	if _, err := f.WriteAt(make([]byte, 256*len(page)), 0); err != nil {
		return fmt.Errorf("fsync test file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync test file: %w", err)
	}
	lat := newLatencies(1)
	start := time.Now()
	n := 0
	for time.Since(start) < r.cfg.duration && ctx.Err() == nil {
		t0 := time.Now()
		if _, err := f.WriteAt(page, int64(n%256)*int64(len(page))); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Base(f.Name()), err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync %s: %w", filepath.Base(f.Name()), err)
		}
		lat.record(0, time.Since(t0).Nanoseconds())
		n++
	}
	elapsed := time.Since(start).Seconds()
	r.res.Metrics["fsyncs_per_s"] = float64(n) / elapsed
	r.res.Metrics["fsync_ms"] = elapsed / float64(n) * 1000
	lat.report(r.res, "fsync")
	return ctx.Err()
}
