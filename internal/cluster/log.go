package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/store"

	"github.com/nats-io/nats.go/jetstream"
)

// Log is the cluster's command log, as the program uses a log: Propose
// puts a command into the replicated stream, and Batches yields what this
// node applied, in stream order, to its own database with the store's
// apply. A command proposed here comes back out of Batches once this node
// has applied it, which is when its proposer is answered: then it is
// stored on a quorum, fsynced, and visible here.
type Log struct {
	n   *Node
	st  *store.Store
	log *slog.Logger

	out  chan store.Batch
	raw  chan jetstream.Msg
	stop context.CancelFunc
	done chan struct{}
	cc   jetstream.ConsumeContext

	closeOnce sync.Once

	// What the program shows in /metrics and /readyz.
	applied   atomic.Uint64 // stream position of the last command applied here
	pending   atomic.Uint64 // commands in the stream not yet delivered here
	caughtUp  atomic.Bool   // applied everything the stream held when the node started, at least
	publishNs atomic.Int64  // the last publish's time to its acknowledgement
	stalled   atomic.Bool   // applying failed and is being retried

	proposals     chan *proposal     // commands waiting to be published (propose.go)
	pubStop       context.CancelFunc // stops the publishers
	pubClosed     <-chan struct{}    // closed when they are told to stop
	pubDrained    chan struct{}      // closed when every taken proposal has its answer
	pubDone       sync.WaitGroup
	maxBatchBytes int // what one stream message may carry

	lastAdded uint64 // stream position of the last message add took (applier goroutine)

	// ObservePublish, when set before the first Propose, is told how
	// long each publish took to be acknowledged.
	ObservePublish func(time.Duration)
}

const (
	maxApplyBatch = 1000 // commands per transaction
	rawQueue      = 4096 // delivered messages waiting to be applied
)

// Log starts applying the stream to st from the position after the
// store's. Read Batches until it is closed.
func (n *Node) Log(st *store.Store) (*Log, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Log{n: n, st: st, log: n.log.With("component", "log"), out: make(chan store.Batch, 64),
		raw: make(chan jetstream.Msg, rawQueue), stop: cancel, done: make(chan struct{})}
	from := st.AppliedSeq()
	l.applied.Store(from)
	info, err := n.js.Stream(ctx, streamName)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("stream %s: %w", streamName, err)
	}
	state := info.CachedInfo().State
	if state.Msgs > 0 && state.FirstSeq > from+1 {
		cancel()
		return nil, fmt.Errorf("this database is at position %d of the log, but the stream begins at %d: "+
			"start this node from a snapshot", from, state.FirstSeq)
	}
	target := state.LastSeq
	if from >= target {
		l.caughtUp.Store(true)
	}
	cons, err := n.js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("consume stream %s: %w", streamName, err)
	}
	l.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case l.raw <- m:
		case <-ctx.Done():
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("consume stream %s: %w", streamName, err)
	}
	go l.applier(ctx, target)
	l.startPublishers()
	l.log.Info("applying the log", "from", from+1, "stream_last", target)
	return l, nil
}

// Batches yields every batch this node applied, in stream order; it is
// closed after Close.
func (l *Log) Batches() <-chan store.Batch { return l.out }

// Close stops consuming, waiting for what is being applied.
//
// The consumer's Stop waits while the consumer is being recreated, which,
// without a quorum, is a request that may take 10 s; Stop marks it closed
// at once, so the recreation gives up when the node closes its
// connection. Close waits for Stop only briefly.
func (l *Log) Close() {
	l.closeOnce.Do(func() {
		l.stopPublishers()
		stopped := make(chan struct{})
		go func() { defer close(stopped); l.cc.Stop() }()
		select {
		case <-stopped:
		case <-time.After(consumerStopWait):
			l.log.Warn("the log's consumer is still being recreated (no quorum?); it stops with the connection")
		}
		l.stop()
		<-l.done
	})
}

// consumerStopWait bounds how long Close waits for the consumer to stop.
const consumerStopWait = time.Second

// applier takes what the consumer delivered, as much as is waiting, and
// applies it in one transaction. A batch that fails to commit (a full
// disk) is retried until it succeeds: the commands are in the log, and a
// node that skipped one would drift from the others.
func (l *Log) applier(ctx context.Context, target uint64) {
	defer close(l.done)
	defer close(l.out)
	envs := make([]store.Envelope, 0, maxApplyBatch)
	seqs := make([]uint64, 0, maxApplyBatch)
	for {
		envs, seqs = envs[:0], seqs[:0]
		select {
		case m := <-l.raw:
			l.add(m, &envs, &seqs)
		case <-ctx.Done():
			return
		}
	fill:
		for len(envs) < maxApplyBatch {
			select {
			case m := <-l.raw:
				l.add(m, &envs, &seqs)
			default:
				break fill
			}
		}
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			b := l.st.ApplyLogged(envs, seqs)
			if b.Err == nil {
				l.stalled.Store(false)
				if last := seqs[len(seqs)-1]; last > l.applied.Load() {
					l.applied.Store(last)
				}
				if l.applied.Load() >= target {
					l.caughtUp.Store(true)
				}
				select {
				case l.out <- b:
				case <-ctx.Done():
					return
				}
				break
			}
			if errors.Is(b.Err, store.ErrGap) {
				l.log.Error("the log lost commands this node has not applied; start it from a snapshot", "err", b.Err)
			} else {
				l.log.Error("applying the log failed; retrying", "commands", len(envs), "err", b.Err, "retry_in", wait)
			}
			l.stalled.Store(true)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
	}
}

// add decodes one delivered message. One that does not decode still
// takes its place in the log, as a command apply refuses, so positions
// stay in step on every node.
func (l *Log) add(m jetstream.Msg, envs *[]store.Envelope, seqs *[]uint64) {
	meta, err := m.Metadata()
	if err != nil {
		l.log.Error("log message without metadata; skipped", "err", err)
		return
	}
	seq := meta.Sequence.Stream
	if seq <= l.lastAdded {
		return // delivered twice: its commands are in this batch or applied
	}
	l.lastAdded = seq
	entry, bad, err := decodeEntry(m.Data(), seq)
	if err != nil {
		l.log.Error("undecodable commands in the log; they change nothing", "seq", seq, "commands", bad, "err", err)
	}
	l.pending.Store(meta.NumPending)
	for _, env := range entry {
		*envs = append(*envs, env)
		*seqs = append(*seqs, seq)
	}
}

// Applied is the stream position of the last command applied here.
func (l *Log) Applied() uint64 { return l.applied.Load() }

// Lag is how many entries of the stream (each a command or a batch of
// them) this node has yet to apply, as of the last one delivered.
func (l *Log) Lag() uint64 { return l.pending.Load() + uint64(len(l.raw)) }

// Ready reports whether this node has caught up with the log as it was
// when the node started, and is applying.
func (l *Log) Ready() bool { return l.caughtUp.Load() && !l.stalled.Load() }

// PublishLatency is how long the last publish took to be acknowledged.
func (l *Log) PublishLatency() time.Duration { return time.Duration(l.publishNs.Load()) }
