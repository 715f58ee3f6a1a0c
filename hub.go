package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/auth"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// The hub owns the WebSocket connections (through melody), which rooms
// each is subscribed to, and who is online. It fans frames out; it turns
// the store's events into frames (hub_events.go); it never reads or
// writes the store, so no lock here is held across disk I/O. This is the
// only file that knows melody.

// Conn is one WebSocket connection as the hub sees it: where to write,
// and, once signed in, whom it belongs to. The frame handlers keep their
// own state for it (a session); the hub keeps only what routing needs.
type Conn struct {
	id      string // the tutorial's clientId: random, one per connection
	ip      string
	request *http.Request // the upgrade request
	sess    *melody.Session
	out     *batchConn // the connection under gorilla; set when it is hijacked
	handler ConnHandler
	hub     *Hub

	// queuedBytes is the size of the frames handed to melody and not yet
	// written: what this connection holds in memory. Past the hub's
	// sendBufferBytes the connection is a slow consumer.
	queuedBytes atomic.Int64

	// who is set when the connection signs in, and changed (its token,
	// after a password change) only under the hub's lock.
	who atomic.Pointer[identity]

	dropped atomic.Bool                // set once when the server closes the connection
	ended   atomic.Pointer[closeCause] // how it ended, once someone closed it

	// signIn closes the connection if it has not signed in in time; set
	// on connect and stopped on disconnect, both on the connection's
	// own goroutine.
	signIn *time.Timer
}

// identity is whom a signed-in connection belongs to, and the token it
// signed in with, which logout and sign-out match.
type identity struct {
	userID    uint64
	name      string
	tokenHash string
}

// ID is the connection's clientId.
func (c *Conn) ID() string { return c.id }

// IP is the client's address as limits and logs use it.
func (c *Conn) IP() string { return c.ip }

// Request is the HTTP request the connection was upgraded from.
func (c *Conn) Request() *http.Request { return c.request }

// Send queues a frame for the connection without blocking. A connection
// whose send buffer is full, in frames or in bytes, is dropped as a slow
// consumer: one frame larger than the byte limit still goes out alone,
// but nothing queues behind it.
func (c *Conn) Send(frame []byte) {
	n := int64(len(frame))
	if before := c.queuedBytes.Add(n) - n; c.hub.sendBufferBytes > 0 && before > 0 && before+n > c.hub.sendBufferBytes {
		c.queuedBytes.Add(-n)
		c.hub.slowConsumer(c, "send buffer bytes")
		return
	}
	c.out.queued.Add(1)
	if err := c.sess.Write(frame); err != nil { // the session is closed
		c.out.unqueue()
		c.queuedBytes.Add(-n)
	}
}

// ConnHandler receives a connection's frames, one at a time, in order.
type ConnHandler interface {
	Frame(msg []byte)
	Binary(msg []byte) // a binary frame, which the protocol does not use
	Closed()
}

// presence is one online user: their connections, the rooms they belong
// to and their direct-message peers, so every connection of a user
// receives what the user does.
type presence struct {
	id    uint64
	name  string
	conns map[*Conn]struct{}
	rooms map[string]struct{}
	peers map[uint64]struct{}
	nodes map[string]struct{} // for a user online on other nodes: which (see hub_remote.go)
}

func (p *presence) ref() userRef { return userRef{UserID: formatID(p.id), Username: p.name} }

// HubConfig is how the hub treats connections.
type HubConfig struct {
	FrameBytes    int64         // the largest frame a client may send
	SendBuffer    int           // frames queued per connection before it is a slow consumer
	WriteWait     time.Duration // how long one write may take
	PongWait      time.Duration // how long a connection may stay silent
	PresenceLimit int           // above this many online users, presence goes only to users who share a room
	CheckOrigin   func(*http.Request) bool

	// What one client may hold or cause; 0 for no limit.
	SendBufferBytes  int64         // bytes of frames queued per connection before it is a slow consumer
	SignInTimeout    time.Duration // a connection not signed in by then is closed
	AnnounceInterval time.Duration // spaces a user's presence announcements past presenceBurst (hub_presence.go)
}

// Hub owns connections, room subscriptions and presence.
type Hub struct {
	log           *slog.Logger
	m             *melody.Melody
	metrics       *metrics
	clock         *deliveryClock // times a sample of deliveries
	presenceLimit int
	background    sync.WaitGroup // goroutines that close connections, and deferred presence timers

	// What one client may hold or cause (HubConfig).
	signInTimeout   time.Duration
	sendBufferBytes int64         // bytes one connection may have queued; 0 for no limit
	presenceBudget  *auth.Limiter // spaces each user's presence announcements; nil for none

	mu    sync.RWMutex     // guards conns, rooms, users, everyone, seen, deferred, closing, and changes to a Conn's who
	conns map[string]*Conn // by id
	rooms map[string]map[*Conn]struct{}
	users map[uint64]*presence
	// everyone holds the online users who signed in while at most
	// presenceLimit were online: their onlineUsers listed the whole
	// server, so they keep hearing everyone come and go after the count
	// passes the limit, or people would stay online in their lists
	// forever. Entries are added only below the limit, so it stays small.
	everyone map[uint64]*presence
	// remote holds the users online on other nodes of a cluster, and
	// remoteRooms indexes them by room (hub_remote.go).
	remote      map[uint64]*presence
	remoteRooms map[string]map[uint64]struct{}
	relay       presenceRelay // tells the other nodes; nil on a single server
	// seen is the log position of the newest batch whose events the hub
	// has begun to deliver. A view of the store read at an older position
	// may miss an event already delivered, so attaching with it is refused
	// (see SignIn and Subscribe).
	seen uint64
	// deferred holds users whose presence changed past their allowance
	// (hub_presence.go); closing stops deferring at shutdown.
	deferred map[uint64]*deferredPresence
	closing  bool
}

// NewHub configures melody for parley. Its defaults do not suit a chat
// server: 512-byte frames, any origin, and a full send buffer silently
// dropping messages. Each is set here on purpose.
func NewHub(cfg HubConfig, log *slog.Logger, m *metrics) *Hub {
	h := &Hub{
		log:           log.With("component", "hub"),
		m:             melody.New(),
		metrics:       m,
		clock:         &deliveryClock{hist: m.delivery},
		presenceLimit: cfg.PresenceLimit,
		conns:         map[string]*Conn{},
		rooms:         map[string]map[*Conn]struct{}{},
		users:         map[uint64]*presence{},
		everyone:      map[uint64]*presence{},
		remote:        map[uint64]*presence{},
		remoteRooms:   map[string]map[uint64]struct{}{},
		deferred:      map[uint64]*deferredPresence{},
	}
	h.signInTimeout, h.sendBufferBytes = cfg.SignInTimeout, cfg.SendBufferBytes
	h.presenceBudget = newPresenceBudget(cfg.AnnounceInterval)
	mc := h.m.Config
	mc.MaxMessageSize = cfg.FrameBytes
	mc.MessageBufferSize = cfg.SendBuffer
	mc.WriteWait = cfg.WriteWait
	mc.PongWait = cfg.PongWait
	mc.PingPeriod = cfg.PongWait * 9 / 10 // must be less than PongWait
	// Frames of one connection are handled in order, so a client sees
	// answers in the order it asked.
	mc.ConcurrentMessageHandling = false
	h.m.Upgrader = &websocket.Upgrader{
		// 0 reuses the HTTP server's 4 KiB read buffer, which the
		// connection's goroutine keeps alive anyway, instead of adding one.
		ReadBufferSize:    0,
		WriteBufferSize:   1024,
		WriteBufferPool:   &sync.Pool{}, // idle connections hold no write buffer
		EnableCompression: false,        // permessage-deflate costs memory per connection and invites compression attacks
		CheckOrigin:       cfg.CheckOrigin,
		HandshakeTimeout:  10 * time.Second,
	}
	h.wire()
	return h
}

// ErrHubClosed: the hub is shutting down and takes no new connections.
var ErrHubClosed = errors.New("server is shutting down")

// Serve upgrades a request to a WebSocket connection and runs it until it
// closes. open makes the connection's handler; it is called before any
// frame is read.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, ip string, open func(*Conn) ConnHandler) error {
	c := &Conn{id: newClientID(), ip: ip, request: r, hub: h}
	c.handler = open(c)
	err := h.m.HandleRequestWithKeys(batchingWriter{ResponseWriter: w, c: c}, r, map[string]any{connKey: c})
	if errors.Is(err, melody.ErrClosed) {
		return ErrHubClosed
	}
	return err
}

func newClientID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

const connKey = "conn"

func connOf(sess *melody.Session) *Conn {
	c, _ := sess.Get(connKey)
	return c.(*Conn)
}

// wire connects melody's callbacks to the hub.
func (h *Hub) wire() {
	h.m.HandleConnect(func(sess *melody.Session) {
		c := connOf(sess)
		c.sess = sess
		h.mu.Lock()
		h.conns[c.id] = c
		h.mu.Unlock()
		if h.signInTimeout > 0 {
			c.signIn = time.AfterFunc(h.signInTimeout, func() {
				if c.who.Load() == nil {
					h.log.Info("connection closed: not signed in in time", "client", c.id, "ip", c.ip, "timeout", h.signInTimeout)
					h.Drop(c, websocket.ClosePolicyViolation, "sign in first")
				}
			})
		}
		c.Send(marshalFrame("connected", connectedData{ClientID: c.id, Server: "parley", Protocol: protocolVersion}))
	})
	h.m.HandleMessage(func(sess *melody.Session, msg []byte) {
		c := connOf(sess)
		if !c.dropped.Load() {
			c.handler.Frame(msg)
		}
	})
	h.m.HandleMessageBinary(func(sess *melody.Session, msg []byte) {
		c := connOf(sess)
		if !c.dropped.Load() {
			c.handler.Binary(msg)
		}
	})
	h.m.HandleSentMessage(func(sess *melody.Session, msg []byte) {
		c := connOf(sess)
		c.queuedBytes.Add(-int64(len(msg)))
		c.out.flushSent()
		h.clock.sent(msg)
	})
	h.m.HandleDisconnect(func(sess *melody.Session) {
		c := connOf(sess)
		if c.signIn != nil {
			c.signIn.Stop()
		}
		h.detach(c)
		h.countClose(c)
		c.handler.Closed()
	})
	h.m.HandleError(func(sess *melody.Session, err error) {
		c := connOf(sess)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			c.closing(ce.Code, false) // the client's close frame
		}
		if errors.Is(err, melody.ErrMessageBufferFull) || errors.Is(err, melody.ErrWriteClosed) {
			c.out.unqueue() // a frame Send counted was not queued
		}
		switch {
		case errors.Is(err, melody.ErrMessageBufferFull):
			// melody would drop this frame and carry on, leaving the client
			// with a silent gap. Disconnect it instead; it resumes with its
			// token and fetches what it missed.
			h.slowConsumer(c, "send buffer frames")
		case errors.Is(err, websocket.ErrReadLimit):
			c.closing(websocket.CloseMessageTooBig, true)
			h.log.Warn("frame too large; connection closed with 1009", "client", c.id, "user", c.userName(), "ip", c.ip)
		case errors.Is(err, melody.ErrWriteClosed), errors.Is(err, melody.ErrSessionClosed):
		case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
		default:
			h.log.Debug("connection error", "client", c.id, "err", err)
		}
	})
}

// slowConsumer drops a connection that fell too far behind.
func (h *Hub) slowConsumer(c *Conn, limit string) {
	if !c.dropped.Load() {
		h.metrics.slowConsumers.Inc()
		h.log.Warn("slow consumer disconnected", "client", c.id, "user", c.userName(), "ip", c.ip, "limit", limit,
			"queued_bytes", c.queuedBytes.Load())
	}
	h.Drop(c, websocket.CloseTryAgainLater, "send buffer full")
}

// userName is the connection's user, for logs; empty before sign-in.
func (c *Conn) userName() string {
	if who := c.who.Load(); who != nil {
		return who.name
	}
	return ""
}

// Drop closes a connection the server gives up on (a full send buffer,
// abuse, an internal error). It never blocks: it may run inside a
// broadcast.
func (h *Hub) Drop(c *Conn, code int, reason string) {
	if !c.dropped.CompareAndSwap(false, true) {
		return
	}
	c.closing(code, true)
	conn := c.sess.WebsocketConnection()
	h.background.Add(1)
	go func() {
		defer h.background.Done()
		// A close frame is a courtesy; a client that does not read will
		// not get it, and the short deadline bounds the attempt. A write
		// already blocked on the client's full socket holds the batch
		// lock, which the deadline does not cover: closing the socket
		// underneath is what frees it.
		cut := time.AfterFunc(200*time.Millisecond, func() { _ = c.out.closeNow() })
		defer cut.Stop()
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(100*time.Millisecond))
		_ = conn.Close()
	}()
}

// close ends a connection with a close frame after what is queued.
func (c *Conn) close(code int, reason string) {
	c.closing(code, true)
	_ = c.sess.CloseWithMsg(websocket.FormatCloseMessage(code, reason))
}

// closeCause is how a connection ended: its close code, and whether the
// server closed it.
type closeCause struct {
	code     int
	byServer bool
}

// closing records the first close of a connection, for the metrics.
func (c *Conn) closing(code int, byServer bool) {
	c.ended.CompareAndSwap(nil, &closeCause{code: code, byServer: byServer})
}

// countClose records how a connection that has gone ended: without any
// close frame it is 1006, as browsers report it.
func (h *Hub) countClose(c *Conn) {
	cause := c.ended.Load()
	if cause == nil {
		cause = &closeCause{code: websocket.CloseAbnormalClosure}
	}
	by := "client"
	if cause.byServer {
		by = "server"
	}
	h.metrics.closes.WithLabelValues(strconv.Itoa(cause.code), by).Inc()
}

// Close closes every connection with 1001 and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	h.stopPresenceLocked()
	for _, c := range h.conns {
		c.closing(websocket.CloseGoingAway, true)
	}
	h.mu.Unlock()
	_ = h.m.CloseWithMsg(melody.FormatCloseMessage(melody.CloseGoingAway, "server shutting down"))
}

// CutOff closes every connection's socket at once, without writing what
// is queued: for clients that stopped reading when the server must stop.
func (h *Hub) CutOff() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.conns {
		_ = c.out.closeNow() // one by one: none may wait on its socket
	}
}

// Wait waits for the goroutines that close connections.
func (h *Hub) Wait() { h.background.Wait() }

// Count is how many connections are open.
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

// SignIn attaches a connection to its user, given a view of the store
// read at log position seq: it writes hello first, then subscribes the
// connection to the user's rooms, so hello precedes any room traffic, and
// announces the user online if this is their first connection. hello is
// given the online users the user will hear come and go. SignIn refuses
// (false) when the hub has already begun delivering events newer than
// the view: one of them could be a kick the view does not show. The
// caller then reads the view again.
func (h *Hub) SignIn(c *Conn, who identity, rooms []string, peers []uint64, hello func(online []userRef) []byte, seq uint64) bool {
	p := &presence{id: who.userID, name: who.name, conns: map[*Conn]struct{}{}, rooms: map[string]struct{}{}, peers: map[uint64]struct{}{}}
	for _, r := range rooms {
		p.rooms[r] = struct{}{}
	}
	for _, id := range peers {
		p.peers[id] = struct{}{}
	}
	// The list is worked out under the read lock and the frame marshalled
	// outside any lock; fan-out goes on meanwhile. Whether the user joins
	// the everyone set is decided under the write lock, where the count
	// it tests grows with each sign-in: decided under the read lock, a
	// storm of sign-ins would all find the count low and all join it, and
	// every later change would go to all of them. The list is worked out
	// again if the decision changed its kind meanwhile.
	var frame []byte
	wholeServer := false
	for try := 0; ; try++ {
		h.mu.RLock()
		if seq < h.seen {
			h.mu.RUnlock()
			return false
		}
		listed := h.onlineCountAllLocked() <= h.presenceLimit
		online := []userRef{p.ref()}
		h.audienceLocked(p, false, func(o *presence) { online = append(online, o.ref()) })
		h.mu.RUnlock()
		slices.SortFunc(online, func(a, b userRef) int { return strings.Compare(a.Username, b.Username) })
		frame = hello(online)

		h.mu.Lock()
		if seq < h.seen {
			h.mu.Unlock()
			return false
		}
		wholeServer = h.onlineCountAllLocked() <= h.presenceLimit
		if wholeServer == listed || try == signInListTries-1 {
			break
		}
		h.mu.Unlock()
	}
	first := h.users[who.userID] == nil
	if first {
		h.users[who.userID] = p
	} else {
		// The view is as new as anything the hub holds for the user:
		// nothing newer has been delivered (seq >= seen).
		old := h.users[who.userID]
		old.rooms, old.peers = p.rooms, p.peers
		p = old
	}
	c.Send(frame)
	c.who.Store(&who)
	p.conns[c] = struct{}{}
	if wholeServer {
		h.everyone[who.userID] = p
	}
	for other := range p.conns {
		for r := range p.rooms {
			h.subscribeLocked(r, other)
		}
	}
	if first && h.remote[who.userID] == nil {
		h.announceLocked(p, true)
	}
	h.mu.Unlock()
	if first && h.relay != nil {
		h.relay.Set(p.id, p.name, keys(p.rooms), keys(p.peers), true)
	}
	return true
}

// signInListTries bounds how often SignIn works out the online list again
// when the count crossed presenceLimit meanwhile; the last list is sent
// as it is (a few names more or fewer), the decision stands.
const signInListTries = 3

// detach removes a connection and, when it was the user's last one,
// announces them offline.
func (h *Hub) detach(c *Conn) {
	if p := h.detachLocked(c); p != nil && h.relay != nil {
		h.relay.Set(p.id, p.name, nil, nil, false)
	}
}

// detachLocked is detach under the lock; it returns the user who went
// offline here, if one did.
func (h *Hub) detachLocked(c *Conn) *presence {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c.id)
	who := c.who.Load()
	if who == nil {
		return nil
	}
	p := h.users[who.userID]
	if p == nil {
		return nil
	}
	if _, ok := p.conns[c]; !ok {
		return nil
	}
	delete(p.conns, c)
	for r := range p.rooms {
		h.unsubscribeLocked(r, c)
	}
	if len(p.conns) > 0 {
		return nil
	}
	delete(h.users, who.userID)
	delete(h.everyone, who.userID)
	if h.remote[who.userID] == nil {
		h.announceLocked(p, false)
	}
	return p
}

// Subscribe subscribes a connection to a room its user has just joined,
// writing joined first, given a view read at log position seq; it
// refuses (false) like SignIn when events newer than the view have been
// delivered, and the caller reads the view again.
func (h *Hub) Subscribe(c *Conn, room string, joined []byte, seq uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq < h.seen {
		return false
	}
	if joined != nil {
		c.Send(joined)
	}
	who := c.who.Load()
	if who == nil {
		return true
	}
	if p := h.users[who.userID]; p != nil {
		p.rooms[room] = struct{}{}
		h.subscribeLocked(room, c)
	}
	return true
}

func (h *Hub) subscribeLocked(room string, c *Conn) {
	set := h.rooms[room]
	if set == nil {
		set = map[*Conn]struct{}{}
		h.rooms[room] = set
	}
	set[c] = struct{}{}
}

func (h *Hub) unsubscribeLocked(room string, c *Conn) {
	if set := h.rooms[room]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.rooms, room)
		}
	}
}

// IsMember reports whether a connection's user belongs to a room, as far
// as the hub has been told.
func (h *Hub) IsMember(c *Conn, room string) bool {
	who := c.who.Load()
	if who == nil {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.users[who.userID]
	if p == nil {
		return false
	}
	_, ok := p.rooms[room]
	return ok
}

// UserRooms returns the rooms of a connection's user.
func (h *Hub) UserRooms(c *Conn) []string {
	who := c.who.Load()
	if who == nil {
		return nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.users[who.userID]
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.rooms))
	for r := range p.rooms {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Typing relays a typing notice to a room's connections but the typist's,
// here and on the other nodes.
func (h *Hub) Typing(room string, userID uint64, frame []byte) {
	h.mu.RLock()
	h.broadcastLocked(room, frame, userID)
	h.mu.RUnlock()
	if h.relay != nil {
		h.relay.Typing(room, userID, frame)
	}
}

// broadcastLocked writes a frame, marshalled once, to every connection
// subscribed to room except those of user except (0 excludes nobody),
// and returns how many it wrote to. Its cost grows with the room, not
// with the server.
func (h *Hub) broadcastLocked(room string, frame []byte, except uint64) int {
	n := 0
	for c := range h.rooms[room] {
		if except == 0 || c.who.Load().userID != except {
			c.Send(frame)
			n++
		}
	}
	return n
}

// sendUserLocked writes a frame to every connection of a user.
func (h *Hub) sendUserLocked(userID uint64, frame []byte) int {
	p := h.users[userID]
	if p == nil {
		return 0
	}
	for c := range p.conns {
		c.Send(frame)
	}
	return len(p.conns)
}

// OnlineCount is how many users have at least one connection, here or
// on another node.
func (h *Hub) OnlineCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.onlineCountAllLocked()
}

// Online reports whether a user has at least one connection, here or on
// another node.
func (h *Hub) Online(userID uint64) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.users[userID] != nil || h.remote[userID] != nil
}

// OnlineCounts returns how many distinct users are connected to each of
// rooms.
func (h *Hub) OnlineCounts(rooms []string) map[string]int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]int, len(rooms))
	for _, r := range rooms {
		out[r] = h.onlineCountLocked(r)
	}
	return out
}

func (h *Hub) onlineCountLocked(room string) int {
	users := map[uint64]struct{}{}
	for c := range h.rooms[room] {
		users[c.who.Load().userID] = struct{}{}
	}
	for id := range h.remoteRooms[room] {
		users[id] = struct{}{}
	}
	return len(users)
}

// sendPresenceLocked announces a user's presence change. While few users
// are online everyone hears of it, as in the tutorial; above the limit
// only users sharing a room with the user, or a direct conversation, do,
// so a reconnect storm is not quadratic.
func (h *Hub) sendPresenceLocked(p *presence, frame []byte) {
	h.audienceLocked(p, true, func(o *presence) {
		for c := range o.conns {
			c.Send(frame)
		}
	})
}

// audienceLocked calls fn for each online user other than p that hears
// of p's presence (withEveryone) or whose presence p hears of (without).
// Its cost grows with the user's rooms (and the everyone set, at most
// about presenceLimit), not with the server, once more than
// presenceLimit users are online.
//
// Users online on other nodes are visited too (they have no connections
// here, so sending to them is a no-op); a user online both here and
// elsewhere is visited once.
func (h *Hub) audienceLocked(p *presence, withEveryone bool, fn func(*presence)) {
	if h.onlineCountAllLocked() <= h.presenceLimit {
		for id, o := range h.users {
			if id != p.id {
				fn(o)
			}
		}
		for id, o := range h.remote {
			if id != p.id && h.users[id] == nil {
				fn(o)
			}
		}
		return
	}
	seen := map[uint64]bool{p.id: true}
	visit := func(o *presence) {
		if o == nil || seen[o.id] {
			return
		}
		seen[o.id] = true
		fn(o)
	}
	for r := range p.rooms {
		for c := range h.rooms[r] {
			visit(h.users[c.who.Load().userID])
		}
		for id := range h.remoteRooms[r] {
			visit(h.presenceLocked(id))
		}
	}
	for id := range p.peers {
		visit(h.presenceLocked(id))
	}
	if withEveryone {
		for _, o := range h.everyone {
			visit(o)
		}
	}
}

// sameOrAllowedOrigin is the WebSocket origin check: browsers send
// Origin, and only the server's own origin (its scheme, as scheme tells
// it, and its host) or a listed one may open a connection (cross-site
// WebSocket hijacking). Clients without Origin are not browsers and must
// still authenticate.
func sameOrAllowedOrigin(allowed []string, scheme func(*http.Request) string) func(*http.Request) bool {
	set := map[string]bool{}
	for _, o := range allowed {
		set[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		if set[strings.ToLower(origin)] {
			return true
		}
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		return strings.EqualFold(u.Scheme, scheme(r)) && strings.EqualFold(u.Host, r.Host)
	}
}
