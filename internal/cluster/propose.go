package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"parley/internal/store"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Commands proposed at the same time go into the log together: one
// stream message carries a batch of them (a JSON array; a lone command is
// the envelope itself). Every message costs each replica writes, a
// Raft round and context switches on every node, whatever its size, so
// under load a batch of commands costs about what one did.
const (
	publishers       = 4         // batches in flight at once
	maxProposeBatch  = 256       // commands per stream message
	maxProposeBytes  = 256 << 10 // soft bound on a batch, well under NATS's 1 MB payload
	proposeQueue     = 4096      // commands waiting for a publisher
	publishTimeout   = 2 * time.Second
	publishRetryWait = 100 * time.Millisecond
	// A batch is retried for at most this long: well inside the stream's
	// duplicate window (dupWindow), so a retry of a batch that was stored
	// after all is recognised and dropped, never applied twice.
	maxRetryFor = time.Minute
)

// proposal is one command waiting to be in the log.
type proposal struct {
	ctx  context.Context // the proposer's: once it ends, nobody waits for the answer
	id   string
	data []byte     // the encoded envelope
	done chan error // buffered: the publisher never waits on it
}

// Propose puts a command into the log and returns once a quorum of the
// stream's replicas has stored it. While the stream elects a new leader
// (seconds, after its leader's node died) publishes go unanswered; each
// attempt gives up after publishTimeout and the next is made with the
// same message id, so a batch whose acknowledgement was lost is stored
// once. The error wraps store.ErrUnconfirmed when the command may have
// been stored (ctx ended after it was sent), store.ErrUnavailable when it
// was not.
func (l *Log) Propose(ctx context.Context, env store.Envelope) error {
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	p := &proposal{ctx: ctx, id: env.ID, data: data, done: make(chan error, 1)}
	select {
	case <-l.pubClosed:
		return store.ErrStoreClosed
	default:
	}
	select {
	case l.proposals <- p:
	case <-ctx.Done():
		return fmt.Errorf("%w: the cluster log's queue is full: %w", store.ErrUnavailable, ctx.Err())
	case <-l.pubClosed:
		return store.ErrStoreClosed
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: publish to the cluster log: %w", store.ErrUnconfirmed, ctx.Err())
	case <-l.pubDrained:
		// Every proposal a publisher took, or Close found queued, has
		// its answer by now; one that is still unanswered came in late
		// and was never sent.
		select {
		case err := <-p.done:
			return err
		default:
			return store.ErrStoreClosed
		}
	}
}

// startPublishers starts the goroutines that publish what is proposed;
// stopPublishers stops them.
func (l *Log) startPublishers() {
	ctx, cancel := context.WithCancel(context.Background())
	l.proposals, l.pubStop, l.pubClosed = make(chan *proposal, proposeQueue), cancel, ctx.Done()
	l.pubDrained = make(chan struct{})
	// A batch must fit in one NATS message, whatever the server allows.
	l.maxBatchBytes = maxProposeBytes
	if mp := int(l.n.nc.MaxPayload()); mp > 0 && mp-1024 < l.maxBatchBytes {
		l.maxBatchBytes = max(mp-1024, 1)
	}
	for range publishers {
		l.pubDone.Add(1)
		go func() {
			defer l.pubDone.Done()
			l.publisher(ctx)
		}()
	}
}

// stopPublishers stops the publishers (a publish under way ends as
// ErrUnconfirmed: it may have been stored) and answers what was still
// queued: it was never sent.
func (l *Log) stopPublishers() {
	l.pubStop()
	l.pubDone.Wait()
	for {
		select {
		case p := <-l.proposals:
			p.done <- store.ErrStoreClosed
		default:
			close(l.pubDrained)
			return
		}
	}
}

// publisher takes a proposal and whatever else is waiting, publishes them
// as one message, and answers each proposer.
func (l *Log) publisher(ctx context.Context) {
	batch := make([]*proposal, 0, maxProposeBatch)
	var next *proposal // taken, but too big for the batch it would have joined
	defer func() {
		if next != nil {
			next.done <- store.ErrStoreClosed
		}
	}()
	for {
		batch = batch[:0]
		if next != nil {
			batch, next = append(batch, next), nil
		} else {
			select {
			case p := <-l.proposals:
				batch = append(batch, p)
			case <-ctx.Done():
				return
			}
		}
		size := len(batch[0].data) + 2
	fill:
		for len(batch) < maxProposeBatch {
			select {
			case p := <-l.proposals:
				if size+len(p.data)+1 > l.maxBatchBytes {
					next = p
					break fill
				}
				batch = append(batch, p)
				size += len(p.data) + 1
			default:
				break fill
			}
		}
		// A proposer that gave up before its command left has been told
		// it may be stored; it is not, and need not be.
		live := batch[:0]
		for _, p := range batch {
			if p.ctx.Err() == nil {
				live = append(live, p)
			}
		}
		if len(live) == 0 {
			continue
		}
		err := l.publish(ctx, live)
		for _, p := range live {
			p.done <- err
		}
	}
}

// publish puts one batch into the stream, retrying with the same message
// id until it is stored, every proposer has given up, the log closes, or
// maxRetryFor has passed.
func (l *Log) publish(ctx context.Context, batch []*proposal) error {
	data, id := batch[0].data, batch[0].id
	if len(batch) > 1 {
		var buf bytes.Buffer
		buf.Grow(len(batch) * (len(data) + 1))
		buf.WriteByte('[')
		for i, p := range batch {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(p.data)
		}
		buf.WriteByte(']')
		data = buf.Bytes()
		// Command ids are unique, so the first one and the count name the
		// batch; a retry sends the same batch.
		id = "batch-" + id + "-" + strconv.Itoa(len(batch))
	}
	start := time.Now()
	// An attempt that timed out may have been stored, its acknowledgement
	// lost; one the server refused, or that never left, was not.
	maybeStored := false
	var err error
	for {
		actx, cancel := context.WithTimeout(ctx, publishTimeout)
		_, err = l.n.js.Publish(actx, logSubject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, nats.ErrTimeout) {
			maybeStored = true
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			break // a lone command over the server's limit: no retry fits it
		}
		if ctx.Err() != nil || abandoned(batch) || time.Since(start) > maxRetryFor {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(publishRetryWait):
		}
		if ctx.Err() != nil || abandoned(batch) {
			break
		}
	}
	took := time.Since(start)
	l.publishNs.Store(int64(took))
	switch {
	case err == nil:
	case maybeStored:
		return fmt.Errorf("%w: publish to the cluster log: %w", store.ErrUnconfirmed, err)
	default:
		return fmt.Errorf("%w: publish to the cluster log: %w", store.ErrUnavailable, err)
	}
	if l.ObservePublish != nil {
		l.ObservePublish(took)
	}
	return nil
}

// abandoned: every proposer of the batch has stopped waiting.
func abandoned(batch []*proposal) bool {
	for _, p := range batch {
		if p.ctx.Err() == nil {
			return false
		}
	}
	return true
}

// decodeEntry reads the stream message at seq: a command, or a batch of
// them. A command that does not decode (damaged, or of a kind this build
// does not know) becomes a placeholder that apply refuses, in its place,
// so the others still apply and positions stay in step on every node;
// bad counts them and err is the first one's error.
func decodeEntry(data []byte, seq uint64) (envs []store.Envelope, bad int, err error) {
	placeholder := func(i int, e error) store.Envelope {
		if err == nil {
			err = e
		}
		bad++
		return store.Envelope{ID: fmt.Sprintf("undecodable-%d-%d", seq, i)}
	}
	if d := bytes.TrimLeft(data, " \t\r\n"); len(d) > 0 && d[0] == '[' {
		var raw []json.RawMessage
		if e := json.Unmarshal(d, &raw); e != nil || len(raw) == 0 {
			if e == nil {
				e = errors.New("an empty batch")
			}
			return []store.Envelope{placeholder(0, e)}, bad, err
		}
		envs = make([]store.Envelope, len(raw))
		for i, r := range raw {
			if e := json.Unmarshal(r, &envs[i]); e != nil {
				envs[i] = placeholder(i, e)
			}
		}
		return envs, bad, err
	}
	var env store.Envelope
	if e := json.Unmarshal(data, &env); e != nil {
		env = placeholder(0, e)
	}
	return []store.Envelope{env}, bad, err
}
