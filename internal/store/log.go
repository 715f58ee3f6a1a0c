package store

import (
	"context"
	"log/slog"
	"sync"
)

// Log is the single-node command log: it puts the commands proposed by
// every connection into one order and applies them in group commits, so
// concurrent proposers share one fsync. There is no artificial delay:
// while one commit syncs, the next batch queues up. Applied batches come
// out of Batches in log order; whoever reads them (fan-out, outcomes)
// runs apart from the writer, so a large room's broadcast never delays
// the next fsync.
type Log struct {
	st  *Store
	log *slog.Logger

	// mu guards closed and the send side of in: proposers hold it for
	// reading, Close for writing, so a proposal never races the close.
	mu     sync.RWMutex
	closed bool
	in     chan Envelope
	out    chan Batch
}

const (
	queueLen    = 4096 // commands waiting for the writer; proposers block beyond it
	maxBatch    = 1000 // commands per transaction
	batchesLen  = 64   // applied batches waiting to be read; the writer blocks beyond it
	maxBatchRaw = 32 << 20
)

// NewLog starts the writer of st. Read Batches until it is closed.
func NewLog(st *Store, logger *slog.Logger) *Log {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{st: st, log: logger.With("component", "log"), in: make(chan Envelope, queueLen), out: make(chan Batch, batchesLen)}
	go l.writer()
	return l
}

// Propose queues a command for the next group commit. Commands one
// goroutine proposes are applied in the order it proposed them. It blocks
// only while the queue is full, which slows the fastest proposers down.
func (l *Log) Propose(ctx context.Context, env Envelope) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrStoreClosed
	}
	select {
	case l.in <- env:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Batches yields every applied batch in log order, and is closed after
// the last one once the log is closed.
func (l *Log) Batches() <-chan Batch { return l.out }

// Close stops taking proposals and applies those already queued; Batches
// is closed once they are out. Keep reading Batches until then.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.in)
	}
}

func (l *Log) writer() {
	defer close(l.out)
	batch := make([]Envelope, 0, maxBatch)
	for env := range l.in {
		batch = append(batch[:0], env)
		size := rawSize(env)
	fill:
		for len(batch) < maxBatch && size < maxBatchRaw {
			select {
			case e, ok := <-l.in:
				if !ok {
					break fill
				}
				batch = append(batch, e)
				size += rawSize(e)
			default:
				break fill
			}
		}
		b := l.st.applyBatch(batch)
		if b.Err != nil {
			l.log.Error("commit failed", "commands", len(batch), "err", b.Err)
		}
		l.out <- b
	}
}

// rawSize is what a command brings to a transaction beyond its records:
// an upload's bytes. It keeps a burst of uploads from making one huge
// transaction.
func rawSize(env Envelope) int {
	if f, ok := env.Cmd.(PutFile); ok {
		return len(f.Data)
	}
	return 0
}
