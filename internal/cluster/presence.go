package cluster

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Presence and typing are not in the log: they are as short-lived as the
// connections they describe. Each node is the authority on its own
// connections. It publishes every change (a user's first connection
// here, or their last), and every heartbeat a digest of the whole set;
// a node whose digest differs from what a peer holds is asked for its
// set. A node that falls silent for a few heartbeats is taken to be gone,
// and its users with it. A user is online while any node has them.

// Subjects of the ephemeral traffic.
const (
	presenceSubjects = "parley.presence.>"
	deltaSubject     = "parley.presence.delta"
	beatSubject      = "parley.presence.beat"
	syncSubject      = "parley.sync." // + node: answers with the node's set
	typingSubject    = "parley.typing"
)

// Heartbeats: a node sends one every beatEvery and is dropped by its peers
// after silentAfter without one (Centrifugo uses the same 3 s / 7 s pair).
const (
	beatEvery   = 3 * time.Second
	silentAfter = 7 * time.Second
)

// Online is one online user as a node sees them: enough for another node
// to work out who must hear of them.
type Online struct {
	UserID uint64   `json:"id"`
	Name   string   `json:"name"`
	Rooms  []string `json:"rooms,omitempty"`
	Peers  []uint64 `json:"peers,omitempty"` // direct conversations
}

// Remote is what a node hears from the others.
type Remote interface {
	// RemoteOnline: node has the user now (again, perhaps with new rooms).
	RemoteOnline(node string, u Online)
	// RemoteOffline: node no longer has the user.
	RemoteOffline(node string, userID uint64)
	// RemoteTyping: a typing notice of a room, to relay to this node's
	// connections but the typist's.
	RemoteTyping(room string, userID uint64, frame []byte)
}

type delta struct {
	Node   string `json:"node"`
	Online bool   `json:"online"`
	User   Online `json:"user"`
}

type beat struct {
	Node   string `json:"node"`
	Count  int    `json:"count"`
	Digest uint64 `json:"digest"`
}

type typing struct {
	Node   string          `json:"node"`
	Room   string          `json:"room"`
	UserID uint64          `json:"userId"`
	Frame  json.RawMessage `json:"frame"`
}

// peer is what this node knows of another.
type peer struct {
	users    map[uint64]Online
	lastBeat time.Time
	syncing  bool
}

// Presence relays this node's presence and typing to the others and
// theirs to it.
type Presence struct {
	n      *Node
	log    *slog.Logger
	remote Remote
	subs   []*nats.Subscription
	stop   chan struct{}
	done   chan struct{}

	mu    sync.Mutex // guards local and peers
	local map[uint64]Online
	peers map[string]*peer
}

// Presence starts relaying; remote hears what the other nodes say. Close
// it before the node.
func (n *Node) Presence(remote Remote) (*Presence, error) {
	p := &Presence{n: n, log: n.log.With("component", "presence"), remote: remote, stop: make(chan struct{}),
		done: make(chan struct{}), local: map[uint64]Online{}, peers: map[string]*peer{}}
	for subj, fn := range map[string]nats.MsgHandler{
		presenceSubjects:         p.onPresence,
		syncSubject + n.cfg.Node: p.onSync,
		typingSubject:            p.onTyping,
	} {
		sub, err := n.nc.Subscribe(subj, fn)
		if err != nil {
			p.unsubscribe()
			return nil, fmt.Errorf("subscribe to %s: %w", subj, err)
		}
		p.subs = append(p.subs, sub)
	}
	go p.beat()
	return p, nil
}

func (p *Presence) unsubscribe() {
	for _, s := range p.subs {
		_ = s.Unsubscribe()
	}
}

// Close stops relaying.
func (p *Presence) Close() {
	close(p.stop)
	<-p.done
	p.unsubscribe()
}

// Set tells the other nodes that a user is online here (their first
// connection, or their rooms changed) or no longer is (their last
// connection closed).
func (p *Presence) Set(u Online, online bool) {
	p.mu.Lock()
	if online {
		p.local[u.UserID] = u
	} else {
		delete(p.local, u.UserID)
	}
	p.mu.Unlock()
	p.publish(deltaSubject, delta{Node: p.n.cfg.Node, Online: online, User: u})
}

// Typing relays a typing notice of a room to the other nodes.
func (p *Presence) Typing(room string, userID uint64, frame []byte) {
	p.publish(typingSubject, typing{Node: p.n.cfg.Node, Room: room, UserID: userID, Frame: frame})
}

func (p *Presence) publish(subject string, v any) {
	raw, err := json.Marshal(v)
	if err == nil {
		err = p.n.nc.Publish(subject, raw)
	}
	if err != nil {
		p.log.Warn("tell the other nodes", "subject", subject, "err", err)
	}
}

// digest sums up a set of users, so two nodes can tell cheaply whether
// they hold the same one.
func digest(users map[uint64]Online) uint64 {
	ids := make([]uint64, 0, len(users))
	for id := range users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := fnv.New64a()
	for _, id := range ids {
		fmt.Fprintf(h, "%d,", id)
	}
	return h.Sum64()
}

// beat sends heartbeats and drops peers that fell silent, until Close.
func (p *Presence) beat() {
	defer close(p.done)
	tick := time.NewTicker(beatEvery)
	defer tick.Stop()
	for {
		p.mu.Lock()
		b := beat{Node: p.n.cfg.Node, Count: len(p.local), Digest: digest(p.local)}
		var gone []string
		for name, pr := range p.peers {
			if time.Since(pr.lastBeat) > silentAfter {
				gone = append(gone, name)
			}
		}
		dropped := map[string]map[uint64]Online{}
		for _, name := range gone {
			dropped[name] = p.peers[name].users
			delete(p.peers, name)
		}
		p.mu.Unlock()
		p.publish(beatSubject, b)
		for name, users := range dropped {
			p.log.Warn("node fell silent; its users are offline", "peer", name, "users", len(users))
			for id := range users {
				p.remote.RemoteOffline(name, id)
			}
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// onPresence handles the other nodes' deltas and heartbeats, in the order
// each node sent them (one subscription keeps them in order).
func (p *Presence) onPresence(m *nats.Msg) {
	switch m.Subject {
	case deltaSubject:
		var d delta
		if json.Unmarshal(m.Data, &d) != nil || d.Node == p.n.cfg.Node {
			return
		}
		p.mu.Lock()
		pr := p.peerLocked(d.Node)
		if d.Online {
			pr.users[d.User.UserID] = d.User
		} else {
			delete(pr.users, d.User.UserID)
		}
		p.mu.Unlock()
		if d.Online {
			p.remote.RemoteOnline(d.Node, d.User)
		} else {
			p.remote.RemoteOffline(d.Node, d.User.UserID)
		}
	case beatSubject:
		var b beat
		if json.Unmarshal(m.Data, &b) != nil || b.Node == p.n.cfg.Node {
			return
		}
		p.mu.Lock()
		pr := p.peerLocked(b.Node)
		pr.lastBeat = time.Now()
		stale := !pr.syncing && (len(pr.users) != b.Count || digest(pr.users) != b.Digest)
		if stale {
			pr.syncing = true
		}
		p.mu.Unlock()
		if stale {
			go p.resync(b.Node)
		}
	}
}

func (p *Presence) peerLocked(name string) *peer {
	pr := p.peers[name]
	if pr == nil {
		pr = &peer{users: map[uint64]Online{}, lastBeat: time.Now()}
		p.peers[name] = pr
	}
	return pr
}

// onSync answers a peer that asks for this node's whole set.
func (p *Presence) onSync(m *nats.Msg) {
	p.mu.Lock()
	users := make([]Online, 0, len(p.local))
	for _, u := range p.local {
		users = append(users, u)
	}
	p.mu.Unlock()
	raw, err := json.Marshal(users)
	if err == nil {
		err = m.Respond(raw)
	}
	if err != nil {
		p.log.Warn("answer a presence sync", "err", err)
	}
}

// resync asks a node for its set and brings what this node holds of it
// in line: a node that joins late, or missed a delta, catches up here.
func (p *Presence) resync(node string) {
	defer func() {
		p.mu.Lock()
		if pr := p.peers[node]; pr != nil {
			pr.syncing = false
		}
		p.mu.Unlock()
	}()
	reply, err := p.n.nc.Request(syncSubject+node, nil, 2*time.Second)
	if err != nil {
		p.log.Debug("presence sync", "peer", node, "err", err)
		return
	}
	var users []Online
	if err := json.Unmarshal(reply.Data, &users); err != nil {
		p.log.Warn("presence sync: undecodable answer", "peer", node, "err", err)
		return
	}
	now := map[uint64]Online{}
	for _, u := range users {
		now[u.UserID] = u
	}
	p.mu.Lock()
	pr := p.peerLocked(node)
	var gone []uint64
	for id := range pr.users {
		if _, ok := now[id]; !ok {
			gone = append(gone, id)
		}
	}
	pr.users = now
	p.mu.Unlock()
	for _, id := range gone {
		p.remote.RemoteOffline(node, id)
	}
	for _, u := range users {
		p.remote.RemoteOnline(node, u)
	}
}

func (p *Presence) onTyping(m *nats.Msg) {
	var t typing
	if json.Unmarshal(m.Data, &t) != nil || t.Node == p.n.cfg.Node {
		return
	}
	p.remote.RemoteTyping(t.Room, t.UserID, t.Frame)
}
