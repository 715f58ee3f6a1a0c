package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/cluster"
	"parley/internal/store"
)

// The write path, wired: frame handlers (and the admin tools, and the
// janitor) build commands and hand them to the bus; the store's log puts
// them in one order and applies them in group commits; the bus reads each
// applied batch, moves the metrics, hands the events to the hub, and
// then gives every command's outcome to whoever proposed it, on this one
// path. So by the time a client sees its acknowledgement, everything else
// about the command has happened.

// commandLog puts commands in one order and applies them: the store's
// own log on a single server, the cluster's replicated one on a node.
type commandLog interface {
	Propose(ctx context.Context, env store.Envelope) error
	Batches() <-chan store.Batch
	Close()
}

// storage is the opened database and the log that applies to it.
type storage struct {
	st       *store.Store
	log      commandLog
	node     *cluster.Node     // nil on a single server
	clog     *cluster.Log      // the log, on a node
	presence *cluster.Presence // presence and typing with the other nodes, once relayed
	files    *cluster.Files    // uploaded bytes, on a node
}

// blobs is where uploaded bytes are kept outside the database: nil on a
// single server, which keeps them inside.
func (s *storage) blobs() fileBlobs {
	if s.files == nil {
		return nil
	}
	return s.files
}

// relay connects the hub to the other nodes: its users' presence and
// typing go out, theirs come in. Nothing on a single server.
func (s *storage) relay(h *Hub) error {
	if s.node == nil {
		return nil
	}
	p, err := s.node.Presence(remoteHub{h})
	if err != nil {
		return err
	}
	s.presence = p
	h.SetRelay(presenceOut{p})
	return nil
}

// remoteHub hands what the other nodes say to the hub.
type remoteHub struct{ h *Hub }

func (r remoteHub) RemoteOnline(node string, u cluster.Online) {
	r.h.RemoteOnline(node, u.UserID, u.Name, u.Rooms, u.Peers)
}
func (r remoteHub) RemoteOffline(node string, userID uint64) { r.h.RemoteOffline(node, userID) }
func (r remoteHub) RemoteTyping(room string, userID uint64, frame []byte) {
	r.h.RemoteTyping(room, userID, frame)
}

// presenceOut tells the other nodes what the hub says.
type presenceOut struct{ p *cluster.Presence }

func (o presenceOut) Set(userID uint64, name string, rooms []string, peers []uint64, online bool) {
	o.p.Set(cluster.Online{UserID: userID, Name: name, Rooms: rooms, Peers: peers}, online)
}
func (o presenceOut) Typing(room string, userID uint64, frame []byte) {
	o.p.Typing(room, userID, frame)
}

// openStore opens the configured database and starts its log: on a
// cluster node, joins the cluster and applies its log from where the
// database stands.
func openStore(cfg Config, logger *slog.Logger) (*storage, error) {
	opts := store.Options{LockTimeout: cfg.DB.LockTimeout, Logger: logger}
	if !cfg.Cluster.enabled() {
		st, err := store.Open(cfg.DB.Path, opts)
		if err != nil {
			return nil, err
		}
		return &storage{st: st, log: store.NewLog(st, logger)}, nil
	}
	ctx := context.Background()
	node, err := cluster.Start(ctx, clusterConfig(cfg), logger)
	if err != nil {
		return nil, fmt.Errorf("cluster node %s: %w", cfg.Cluster.Node, err)
	}
	fail := func(st *store.Store, err error) (*storage, error) {
		if st != nil {
			st.Close()
		}
		node.Close()
		return nil, fmt.Errorf("cluster node %s: %w", cfg.Cluster.Node, err)
	}
	st, err := node.OpenStore(ctx, cfg.DB.Path, opts)
	if err != nil {
		return fail(nil, err)
	}
	files := node.Files()
	clog, err := node.Log(st)
	if err != nil {
		return fail(st, err)
	}
	return &storage{st: st, log: clog, node: node, clog: clog, files: files}, nil
}

// clusterConfig is what the cluster package needs of the settings.
func clusterConfig(cfg Config) cluster.Config {
	c := cfg.Cluster
	storeDir := c.NATS.Embedded.StoreDir
	if storeDir == "" {
		storeDir = cfg.DB.Path + ".nats"
	}
	return cluster.Config{Node: c.Node, Replicas: c.Replicas, URL: c.NATS.URL, Monitor: c.NATS.Monitor,
		Embedded: cluster.Embedded{Listen: c.NATS.Embedded.Listen, ClusterListen: c.NATS.Embedded.ClusterListen,
			Routes: c.NATS.Embedded.Routes, StoreDir: storeDir},
		// Settings that change what apply does, or what commands carry.
		Settings: map[string]string{
			"history.per_room":         strconv.Itoa(cfg.History.PerRoom),
			"history.max_age":          cfg.History.MaxAge.String(),
			"limits.rooms_per_user":    strconv.Itoa(cfg.Limits.RoomsPerUser),
			"limits.message_chars":     strconv.Itoa(cfg.Limits.MessageChars),
			"limits.group_members":     strconv.Itoa(cfg.Limits.GroupMembers),
			"auth.registration":        cmp.Or(cfg.Auth.Registration, "default"),
			"uploads.user_quota_bytes": strconv.FormatInt(cfg.Uploads.UserQuotaBytes, 10),
			"uploads.total_bytes":      strconv.FormatInt(cfg.Uploads.TotalBytes, 10),
		}}
}

// close stops the log (after what is queued), leaves the cluster and
// closes the database. Close the bus first.
func (s *storage) close(logger *slog.Logger) {
	if s.presence != nil {
		s.presence.Close()
	}
	if s.node != nil {
		s.node.Close()
	}
	if err := s.st.Close(); err != nil {
		logger.Error("close store", "err", err)
	}
}

// bus proposes commands and returns their outcomes.
type bus struct {
	log     commandLog
	hub     *Hub     // nil in the command-line tools
	metrics *metrics // nil in the command-line tools
	logger  *slog.Logger
	now     func() time.Time

	prefix string        // this process's part of command ids
	next   atomic.Uint64 // the counter part

	mu      sync.Mutex // guards waiting
	waiting map[string]func(store.Applied)
	// tap, when set before the first command, sees every applied command
	// (tests record a run with it).
	tap func(store.Applied)
	// after, when not nil, is handed every batch after the hub, with
	// whether a command was proposed here (the pusher's side effects are
	// this node's to do). Set by newBus: a cluster node's log may deliver
	// batches from the start.
	after func(b store.Batch, mine func(store.Envelope) bool)

	done chan struct{} // closed when the pump has read the last batch
}

func newBus(log commandLog, hub *Hub, m *metrics, logger *slog.Logger, now func() time.Time,
	after func(store.Batch, func(store.Envelope) bool)) *bus {
	nonce := make([]byte, 6)
	rand.Read(nonce)
	b := &bus{log: log, hub: hub, metrics: m, logger: logger.With("component", "bus"), now: now, after: after,
		prefix: hex.EncodeToString(nonce) + "-", waiting: map[string]func(store.Applied){}, done: make(chan struct{})}
	go b.pump()
	return b
}

// pump reads applied batches until the log closes.
func (b *bus) pump() {
	defer close(b.done)
	for batch := range b.log.Batches() {
		if b.metrics != nil {
			b.metrics.observeBatch(batch)
		}
		if b.hub != nil {
			b.hub.Deliver(batch)
		}
		if b.after != nil {
			b.after(batch, b.mine)
		}
		for _, ap := range batch.Applied {
			if b.tap != nil {
				b.tap(ap)
			}
			b.mu.Lock()
			fn := b.waiting[ap.Env.ID]
			delete(b.waiting, ap.Env.ID)
			b.mu.Unlock()
			if fn != nil {
				fn(ap)
			}
		}
	}
}

// mine reports whether this bus proposed a command.
func (b *bus) mine(env store.Envelope) bool { return strings.HasPrefix(env.ID, b.prefix) }

// Send proposes a command without waiting for it; done gets its outcome
// once it is applied (after its events were delivered), on the bus's
// goroutine, so it must not block. A nil error means done will be called.
func (b *bus) Send(ctx context.Context, origin string, cmd store.Command, done func(store.Applied)) error {
	env := store.Envelope{ID: b.prefix + strconv.FormatUint(b.next.Add(1), 36), Origin: origin, Time: b.now(), Cmd: cmd}
	b.mu.Lock()
	b.waiting[env.ID] = done
	b.mu.Unlock()
	if err := b.log.Propose(ctx, env); err != nil {
		b.mu.Lock()
		delete(b.waiting, env.ID)
		b.mu.Unlock()
		return fmt.Errorf("propose %s: %w", store.Name(cmd), err)
	}
	return nil
}

// Do proposes a command and waits for its outcome. The error is the
// command's refusal or failure (Outcome.Err), or why it could not be
// proposed, or store.ErrUnconfirmed when ctx ended first: a command is never
// reported as failed when it may yet be applied (a cluster electing a
// leader, a stalled disk), and a stalled log never holds a connection,
// or a shutdown, for longer than its handler may take.
func (b *bus) Do(ctx context.Context, origin string, cmd store.Command) (store.Outcome, error) {
	res := make(chan store.Outcome, 1) // the pump never waits on it
	if err := b.Send(ctx, origin, cmd, func(ap store.Applied) { res <- ap.Outcome }); err != nil {
		return store.Outcome{}, err
	}
	select {
	case out := <-res:
		return out, out.Err
	case <-ctx.Done():
		return store.Outcome{}, fmt.Errorf("%w: %s: %w", store.ErrUnconfirmed, store.Name(cmd), ctx.Err())
	}
}

// Close stops taking commands, lets those queued be applied and
// delivered, and waits for the pump.
func (b *bus) Close() {
	b.log.Close()
	<-b.done
}
