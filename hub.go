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

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// account is a signed-in user as the hub sees it.
type account struct {
	ID   uint64
	Name string
}

func (a account) idString() string { return strconv.FormatUint(a.ID, 10) }

func (a account) ref() userRef { return userRef{UserID: a.idString(), Username: a.Name} }

// client is the state of one WebSocket connection. Melody runs a
// connection's handlers one at a time, so fields only handlers touch need
// no lock; what other goroutines read is atomic.
type client struct {
	id   string // the tutorial's clientId: random, one per connection
	ip   string
	sess *melody.Session
	out  *batchConn // the connection under gorilla; set when it is hijacked

	user      atomic.Pointer[account] // nil until auth succeeds
	tokenHash []byte                  // the token this connection signed in with; handlers only
	limits    *connLimits             // handlers only
	inFlight  chan struct{}           // messages waiting for their commit, at most maxInFlight
	typingAt  map[string]time.Time    // last isTyping:true relayed, per room; handlers only

	dropped atomic.Bool // set once when the server closes the connection
}

func newClientID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// send queues a frame for the connection without blocking. A connection
// whose send buffer is full is dropped by the error handler.
func (c *client) send(frame []byte) {
	c.out.queued.Add(1)
	if err := c.sess.Write(frame); err != nil { // the session is closed
		c.out.unqueue()
	}
}

// presence is one online user: their connections and the rooms they
// belong to, so every connection of a user receives what the user does.
type presence struct {
	account
	conns map[*client]struct{}
	rooms map[string]struct{}
}

// Hub owns room subscriptions and presence. It fans frames out to
// connections; it never touches the store, so no lock here is held across
// disk I/O.
type Hub struct {
	log           *slog.Logger
	presenceLimit int // above this many online users, presence goes only to users who share a room

	mu    sync.RWMutex // guards rooms, users and everyone
	rooms map[string]map[*client]struct{}
	users map[uint64]*presence
	// everyone holds the online users who signed in while at most
	// presenceLimit were online: their onlineUsers listed the whole
	// server, so they keep hearing everyone come and go after the count
	// passes the limit, or people would stay online in their lists
	// forever. Entries are added only below the limit, so it stays small.
	everyone map[uint64]*presence
}

func NewHub(log *slog.Logger, presenceLimit int) *Hub {
	return &Hub{
		log:           log.With("component", "hub"),
		presenceLimit: presenceLimit,
		rooms:         map[string]map[*client]struct{}{},
		users:         map[uint64]*presence{},
		everyone:      map[uint64]*presence{},
	}
}

// Attach registers a signed-in connection, writes hello to it, and then
// subscribes it to the user's rooms, so hello precedes any room traffic.
// rooms is the user's membership from the store; it is used only when
// this is the user's first connection, as later ones share the hub's live
// copy. It reports whether the user just came online.
func (h *Hub) Attach(c *client, rooms []string, hello []byte) (first bool) {
	a := c.user.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	c.send(hello)
	// The same test OnlineUsers made for hello: was the list server-wide?
	wholeServer := len(h.users) <= h.presenceLimit
	p := h.users[a.ID]
	if p == nil {
		first = true
		p = &presence{account: *a, conns: map[*client]struct{}{}, rooms: map[string]struct{}{}}
		for _, r := range rooms {
			p.rooms[r] = struct{}{}
		}
		h.users[a.ID] = p
	}
	p.conns[c] = struct{}{}
	if wholeServer {
		h.everyone[a.ID] = p
	}
	for r := range p.rooms {
		h.subscribeLocked(r, c)
	}
	return first
}

// Detach removes a connection. It reports whether it was the user's last
// one, and if so, the user's rooms, so the caller can announce them offline.
func (h *Hub) Detach(c *client) (last bool, rooms []string) {
	a := c.user.Load()
	if a == nil {
		return false, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.users[a.ID]
	if p == nil {
		return false, nil
	}
	if _, ok := p.conns[c]; !ok {
		return false, nil
	}
	delete(p.conns, c)
	for r := range p.rooms {
		h.unsubscribeLocked(r, c)
	}
	if len(p.conns) > 0 {
		return false, nil
	}
	delete(h.users, a.ID)
	delete(h.everyone, a.ID)
	for r := range p.rooms {
		rooms = append(rooms, r)
	}
	return true, rooms
}

func (h *Hub) subscribeLocked(room string, c *client) {
	set := h.rooms[room]
	if set == nil {
		set = map[*client]struct{}{}
		h.rooms[room] = set
	}
	set[c] = struct{}{}
}

func (h *Hub) unsubscribeLocked(room string, c *client) {
	if set := h.rooms[room]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.rooms, room)
		}
	}
}

// Join subscribes every connection of an online user to a room.
func (h *Hub) Join(userID uint64, room string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.users[userID]
	if p == nil {
		return
	}
	p.rooms[room] = struct{}{}
	for c := range p.conns {
		h.subscribeLocked(room, c)
	}
}

// Leave unsubscribes every connection of a user from a room.
func (h *Hub) Leave(userID uint64, room string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.users[userID]
	if p == nil {
		return
	}
	delete(p.rooms, room)
	for c := range p.conns {
		h.unsubscribeLocked(room, c)
	}
}

// IsMember reports whether an online user belongs to a room.
func (h *Hub) IsMember(userID uint64, room string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.users[userID]
	if p == nil {
		return false
	}
	_, ok := p.rooms[room]
	return ok
}

// Broadcast writes a frame, marshalled once, to every connection
// subscribed to room except those of user except (0 excludes nobody), and
// returns how many it wrote to. Its cost grows with the room, not with
// the server.
func (h *Hub) Broadcast(room string, frame []byte, except uint64) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for c := range h.rooms[room] {
		if except == 0 || c.user.Load().ID != except {
			c.send(frame)
			n++
		}
	}
	return n
}

// SendUser writes a frame to every connection of a user and returns how
// many it wrote to.
func (h *Hub) SendUser(userID uint64, frame []byte) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.users[userID]
	if p == nil {
		return 0
	}
	for c := range p.conns {
		c.send(frame)
	}
	return len(p.conns)
}

// OnlineCount is how many users have at least one connection.
func (h *Hub) OnlineCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users)
}

// BroadcastPresence announces a user's presence change. While few users
// are online everyone hears of it, as in the tutorial; above the limit
// only users sharing a room with the user, or one of peers, do, so a
// reconnect storm is not quadratic.
func (h *Hub) BroadcastPresence(a account, rooms []string, peers []uint64, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	h.audienceLocked(a.ID, rooms, peers, true, func(p *presence) {
		for c := range p.conns {
			c.send(frame)
		}
	})
}

// OnlineUsers lists, by name, the online users other than the user whose
// presence changes the user, in rooms with peers, will hear of (see
// BroadcastPresence): whom the user sees come and go is whom the list
// starts with.
func (h *Hub) OnlineUsers(userID uint64, rooms []string, peers []uint64) []userRef {
	h.mu.RLock()
	var out []userRef
	// Not the everyone set: the user hears of those only if they share a
	// room or a conversation, like anyone else.
	h.audienceLocked(userID, rooms, peers, false, func(p *presence) { out = append(out, p.ref()) })
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b userRef) int { return strings.Compare(a.Username, b.Username) })
	return out
}

// audienceLocked calls fn for each online user other than userID that
// hears of userID's presence (withEveryone) or whose presence userID
// hears of (without). Its cost grows with the user's rooms (and
// the everyone set, at most about presenceLimit), not with the server,
// once more than presenceLimit users are online.
func (h *Hub) audienceLocked(userID uint64, rooms []string, peers []uint64, withEveryone bool, fn func(*presence)) {
	if len(h.users) <= h.presenceLimit {
		for id, p := range h.users {
			if id != userID {
				fn(p)
			}
		}
		return
	}
	seen := map[uint64]bool{userID: true}
	visit := func(p *presence) {
		if p == nil || seen[p.ID] {
			return
		}
		seen[p.ID] = true
		fn(p)
	}
	for _, r := range rooms {
		for c := range h.rooms[r] {
			visit(h.users[c.user.Load().ID])
		}
	}
	for _, id := range peers {
		visit(h.users[id])
	}
	if withEveryone {
		for _, p := range h.everyone {
			visit(p)
		}
	}
}

// UserRooms returns the rooms of an online user.
func (h *Hub) UserRooms(userID uint64) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.users[userID]
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

// Online reports whether a user has at least one connection.
func (h *Hub) Online(userID uint64) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.users[userID] != nil
}

// OnlineCounts returns how many distinct users are connected to each of
// rooms.
func (h *Hub) OnlineCounts(rooms []string) map[string]int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]int, len(rooms))
	users := map[uint64]struct{}{}
	for _, r := range rooms {
		clear(users)
		for c := range h.rooms[r] {
			users[c.user.Load().ID] = struct{}{}
		}
		out[r] = len(users)
	}
	return out
}

// ConnectionsFor returns the connections of a user that signed in with
// the given token hash, or all of them when hash is nil.
func (h *Hub) ConnectionsFor(userID uint64, tokenHash []byte) []*client {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.users[userID]
	if p == nil {
		return nil
	}
	var out []*client
	for c := range p.conns {
		if tokenHash == nil || string(c.tokenHash) == string(tokenHash) {
			out = append(out, c)
		}
	}
	return out
}

// --- melody wiring ---

// newMelody configures melody for parley. Its defaults do not suit a chat
// server: 512-byte frames, any origin, and a full send buffer silently
// dropping messages. Each is set here on purpose.
func newMelody(cfg Config, checkOrigin func(*http.Request) bool) *melody.Melody {
	m := melody.New()
	m.Config.MaxMessageSize = cfg.Limits.FrameBytes
	m.Config.MessageBufferSize = cfg.Server.SendBuffer
	m.Config.WriteWait = cfg.Server.WriteWait
	m.Config.PongWait = cfg.Server.PongWait
	m.Config.PingPeriod = cfg.Server.PongWait * 9 / 10 // must be less than PongWait
	// Handlers of one connection run in order, so a client sees answers
	// in the order it asked.
	m.Config.ConcurrentMessageHandling = false
	m.Upgrader = &websocket.Upgrader{
		// 0 reuses the HTTP server's 4 KiB read buffer, which the
		// connection's goroutine keeps alive anyway, instead of adding one.
		ReadBufferSize:    0,
		WriteBufferSize:   1024,
		WriteBufferPool:   &sync.Pool{}, // idle connections hold no write buffer
		EnableCompression: false,        // permessage-deflate costs memory per connection and invites compression attacks
		CheckOrigin:       checkOrigin,
		HandshakeTimeout:  10 * time.Second,
	}
	return m
}

// sameOrAllowedOrigin is the WebSocket origin check: browsers send
// Origin, and only the server's own origin or a listed one may open a
// connection (cross-site WebSocket hijacking). Clients without Origin are
// not browsers and must still authenticate.
func sameOrAllowedOrigin(allowed []string) func(*http.Request) bool {
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
		return strings.EqualFold(u.Host, r.Host)
	}
}

// dropClient closes a connection the server gives up on (a full send
// buffer, abuse). It must not block: it may run inside a broadcast.
func dropClient(c *client, code int, reason string, wg *sync.WaitGroup) {
	if !c.dropped.CompareAndSwap(false, true) {
		return
	}
	conn := c.sess.WebsocketConnection()
	wg.Add(1)
	go func() {
		defer wg.Done()
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

func isBufferFull(err error) bool { return errors.Is(err, melody.ErrMessageBufferFull) }
