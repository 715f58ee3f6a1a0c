package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"parley/internal/auth"
	"parley/internal/store"

	"github.com/gorilla/websocket"
)

// routes lists every HTTP route of the server.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.handleWebSocket)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	if s.cfg.Hooks.Enabled {
		mux.HandleFunc("POST /hooks/{token}", s.hooks.handlePost)
	}
	if s.cfg.Uploads.Enabled {
		mux.HandleFunc("POST /upload", s.uploads.handleUpload)
		mux.HandleFunc("GET /files/{id}/{name}", s.uploads.handleFile)
	}
	if s.cfg.Metrics.Enabled {
		var allow []*net.IPNet
		for _, a := range s.cfg.Metrics.Allow {
			n, _ := parseCIDROrIP(a) // validated with the config
			allow = append(allow, n)
		}
		mux.Handle("GET /metrics", s.metrics.handler(allow, s.trusted, s.clientIP))
	}
	// Tutorial clients connect to the bare host, so an upgrade request to
	// any path outside /ws is accepted too; everything else is the page.
	page := newStaticHandler(s.static)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			s.handleWebSocket(w, r)
			return
		}
		setPageHeaders(w.Header())
		if s.tls != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		page.ServeHTTP(w, r)
	})
	return s.metrics.instrument(mux)
}

// setPageHeaders keeps the page from running anything but its own
// scripts, from being framed, and from leaking its URL.
func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.Ping(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// minFreeDisk is the free space, in bytes, below which the database's
// disk counts as full: writes are about to fail with ENOSPC.
const minFreeDisk = 1 << 20

// handleReadyz says whether this server takes new work: the store answers,
// its disk is not full, and shutdown has not begun.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	status, body := http.StatusOK, map[string]string{"status": "ready"}
	if s.shuttingDown.Load() {
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "shutting down"}
	} else if c := s.storage.clog; c != nil && !c.Ready() {
		// A node serves what its own database holds: not before it has
		// caught up with the cluster's log.
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "catching up",
			"applied": strconv.FormatUint(c.Applied(), 10), "lag": strconv.FormatUint(c.Lag(), 10)}
	} else if err := s.store.Ping(); err != nil {
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()}
	} else if free, err := s.diskFree(); err == nil && free < minFreeDisk {
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "disk full",
			"error": fmt.Sprintf("%d bytes free on the database's disk", free)}
	}
	if n := s.storage.node; n != nil {
		body["node"], body["leader"] = n.Name(), n.Leader(r.Context())
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (s *server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	s.conns.Add(1)
	defer s.conns.Done()
	ip := s.clientIP(r)
	if !s.ipConns.Acquire(ip) {
		s.log.Warn("connection refused: too many from one address", "ip", ip, "limit", s.cfg.Limits.ConnectionsPerIP)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	defer s.ipConns.Release(ip)
	err := s.hub.Serve(w, r, ip, s.frames.open)
	switch {
	case errors.Is(err, ErrHubClosed):
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
	case err != nil:
		// The upgrader has already answered (403 for a foreign Origin).
		origin := r.Header.Get("Origin")
		s.log.Info("websocket upgrade refused", "ip", ip, "origin", origin, "err", err)
		if u, perr := url.Parse(origin); perr == nil && strings.EqualFold(u.Host, r.Host) && s.warnedScheme.CompareAndSwap(false, true) {
			s.log.Warn("a page from this host was refused because its scheme differs from the connection's; behind a "+
				"TLS-terminating proxy, set server.public_url or list the proxy in server.trusted_proxies (it must send X-Forwarded-Proto)",
				"origin", origin, "scheme", s.requestScheme(r))
		}
	}
}

// protocolVersion is announced in "connected"; it changes only when a
// frame changes incompatibly.
const protocolVersion = 1

// handler is one WebSocket message type's handler. It answers through
// the session and returns an error for the client: a *protoError as it
// is, anything else mapped by errorFrame.
type handler struct {
	fn      func(ctx context.Context, s *session, f Frame) error
	auth    bool // requires a signed-in connection
	message bool // counts against limits.messages_per_second instead of frames_per_second
	stored  bool // also counts against the account's allowance, shared by its connections
}

// frameTable lists every frame type a client may send, with its handler.
func frameTable(a *authHandlers, r *roomHandlers, m *messageHandlers, mod *moderationHandlers, reach *reachHandlers) map[string]handler {
	return map[string]handler{
		"createInvite":    {fn: reach.invites.handleCreateInvite, auth: true},
		"invites":         {fn: reach.invites.handleInvites, auth: true},
		"revokeInvite":    {fn: reach.invites.handleRevokeInvite, auth: true},
		"createHook":      {fn: reach.hooks.handleCreateHook, auth: true},
		"hooks":           {fn: reach.hooks.handleHooks, auth: true},
		"deleteHook":      {fn: reach.hooks.handleDeleteHook, auth: true},
		"createBot":       {fn: reach.hooks.handleCreateBot, auth: true},
		"people":          {fn: r.handlePeople, auth: true},
		"createGroup":     {fn: r.handleCreateGroup, auth: true},
		"pushSubscribe":   {fn: reach.push.handlePushSubscribe, auth: true},
		"pushUnsubscribe": {fn: reach.push.handlePushUnsubscribe, auth: true},
		"setNotify":       {fn: reach.push.handleSetNotify, auth: true},
		"auth":            {fn: a.handleAuth},
		"logout":          {fn: a.handleLogout, auth: true},
		"changePassword":  {fn: a.handleChangePassword, auth: true},
		"resetLink":       {fn: a.handleResetLink, auth: true},
		"resetPassword":   {fn: a.handleResetPassword},
		"join":            {fn: r.handleJoin, auth: true},
		"leave":           {fn: r.handleLeave, auth: true},
		"rooms":           {fn: r.handleRooms, auth: true},
		"invite":          {fn: r.handleInvite, auth: true},
		"chat":            {fn: m.handleChat, auth: true, message: true, stored: true},
		"private":         {fn: m.handlePrivate, auth: true, message: true, stored: true},
		"typing":          {fn: m.handleTyping, auth: true, message: true},
		"history":         {fn: m.handleHistory, auth: true},
		"read":            {fn: m.handleRead, auth: true},
		"edit":            {fn: m.handleEdit, auth: true, message: true, stored: true},
		"delete":          {fn: m.handleDelete, auth: true},
		"react":           {fn: m.handleReact, auth: true, message: true, stored: true},
		"thread":          {fn: m.handleThread, auth: true},
		"search":          {fn: m.handleSearch, auth: true},
		"kick":            {fn: mod.handleKick, auth: true},
		"ban":             {fn: mod.handleBan, auth: true},
		"unban":           {fn: mod.handleUnban, auth: true},
		"mute":            {fn: mod.handleMute, auth: true},
		"unmute":          {fn: mod.handleUnmute, auth: true},
		"setRole":         {fn: mod.handleSetRole, auth: true},
		"setTopic":        {fn: mod.handleSetTopic, auth: true},
	}
}

// reachHandlers are the frames of issue 15's features, in groups that
// each get only what they use.
type reachHandlers struct {
	invites *inviteHandlers
	hooks   *hookHandlers
	push    *pushHandlers
}

// deps is what every group of frame handlers uses: reads from the store,
// the bus for changes, the hub for presence and the connection's own
// answers, a clock and a logger.
type deps struct {
	store   *store.Store
	bus     *bus
	hub     *Hub
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
}

// account is the signed-in user of a session.
type account struct {
	ID    uint64
	Name  string
	Guest bool // signed in with a name alone; ended when its last connection closes
	Bot   bool
}

// session is one connection's state on the handlers' side. The
// connection's frames are handled one at a time on its own goroutine,
// which alone touches these fields; only conn and inFlight are also used
// by the bus, when a message's outcome comes back.
type session struct {
	conn     *Conn
	d        *dispatcher
	user     *account // nil until signed in
	token    []byte   // the hash of the token it signed in with
	limits   *connLimits
	inFlight chan struct{} // messages waiting for their commit, at most maxInFlight
	typingAt map[string]time.Time
}

// origin names the session in the commands it proposes.
func (s *session) origin() string { return s.conn.id }

func (s *session) send(frame []byte) { s.conn.Send(frame) }

func (s *session) userName() string {
	if s.user != nil {
		return s.user.Name
	}
	return ""
}

// Frame handles one frame; see dispatch.
func (s *session) Frame(msg []byte) { s.d.dispatch(s, msg) }

// Binary answers a binary frame; see dispatcher.refuseBinary.
func (s *session) Binary([]byte) { s.d.refuseBinary(s) }

// Closed is called once the connection has closed.
func (s *session) Closed() {
	if s.d.closed != nil && s.user != nil {
		s.d.closed(s)
	}
}

// dispatcher runs frames through the table.
type dispatcher struct {
	table map[string]handler
	hub   *Hub
	// perUser is the allowance of what is stored (chat, private, edit,
	// react) that all of an account's connections share, so that more
	// connections do not mean more messages.
	perUser *auth.Limiter
	limits  LimitsConfig
	log     *slog.Logger
	metrics *metrics
	ctx     context.Context // cancelled when the server has stopped
	// closed, when set, is told of each signed-in connection that closed
	// (guests end with their last one).
	closed func(*session)
	// active, when set, is told of each frame a signed-in user sends
	// (push: who is away).
	active func(userID uint64)
}

// open makes the session of a new connection.
func (d *dispatcher) open(c *Conn) ConnHandler {
	return &session{conn: c, d: d, limits: newConnLimits(d.limits), inFlight: make(chan struct{}, maxInFlight),
		typingAt: map[string]time.Time{}}
}

// handlerTimeout bounds how long one frame may wait for the store or a
// hashing slot.
const handlerTimeout = 10 * time.Second

// dispatch decodes one client frame and runs its handler. Whatever the
// frame holds, the connection and the server go on; a panic closes only
// this connection.
func (d *dispatcher) dispatch(s *session, msg []byte) {
	// A corrupted database page can fault inside bbolt's mmap; make that a
	// panic recovered below instead of a crash of the whole server.
	debug.SetPanicOnFault(true)
	var typ string
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("handler panic; connection closed", "type", typ, "client", s.conn.id, "user", s.userName(),
				"panic", r, "stack", string(debug.Stack()))
			d.hub.Drop(s.conn, websocket.CloseInternalServerErr, "internal error")
		}
	}()
	f, perr := decodeFrame(msg)
	h, known := d.table[f.Type]
	if limited := d.allowFrame(s, h.message); limited != nil {
		if !s.conn.dropped.Load() {
			s.send(errorFrame(limited, f.Type, clientMsgIDOf(f)))
		}
		return
	}
	if perr != nil {
		s.send(errorFrame(perr, "", ""))
		return
	}
	typ = f.Type
	if !known {
		s.send(errorFrame(errorf(codeUnknownType, "Unknown message type: %s", truncate(f.Type, 64)), "", ""))
		return
	}
	if h.auth && s.user == nil {
		s.send(errorFrame(errorf(codeUnauthenticated, "Sign in first: send auth"), f.Type, ""))
		return
	}
	if h.stored {
		if _, ok, wait := d.perUser.Reserve(formatID(s.user.ID)); !ok {
			s.send(errorFrame(d.refuse(s, "Too many messages from your account; slow down", "user_messages", wait), f.Type, clientMsgIDOf(f)))
			return
		}
	}
	ctx, cancel := context.WithTimeout(d.ctx, handlerTimeout)
	defer cancel()
	defer func() {
		// Signed in by now (auth included): the user is here.
		if d.active != nil && s.user != nil {
			d.active(s.user.ID)
		}
	}()
	if err := h.fn(ctx, s, f); err != nil {
		var pe *protoError
		if !errors.As(err, &pe) && !isStoreDown(err) {
			d.log.Error("handler failed", "type", f.Type, "client", s.conn.id, "user", s.userName(), "err", err)
		}
		s.send(errorFrame(err, f.Type, clientMsgIDOf(f)))
	}
}

// refuseBinary answers a binary frame with bad_request. It spends from
// the frames allowance like any other frame, so a client that floods
// binary frames is refused and, like any flood, closed with 1008.
func (d *dispatcher) refuseBinary(s *session) {
	if limited := d.allowFrame(s, false); limited != nil {
		if !s.conn.dropped.Load() {
			s.send(errorFrame(limited, "", ""))
		}
		return
	}
	s.send(errorFrame(errorf(codeBadRequest, "Binary frames are not part of the protocol; send JSON text frames"), "", ""))
}

// isStoreDown: the store failed, and has logged it once already.
func isStoreDown(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrStoreClosed) || errors.Is(err, store.ErrUnconfirmed)
}

// allowFrame spends one token of the connection's allowance: chat,
// private and typing from the messages bucket, everything else (garbage
// included) from the frames bucket. An exhausted bucket answers
// rate_limited; a client that keeps pushing runs out of strikes and is
// disconnected with 1008.
func (d *dispatcher) allowFrame(s *session, message bool) *protoError {
	lim, what, kind := s.limits.frames, "Too many requests; slow down", "frames"
	if message {
		lim, what, kind = s.limits.messages, "Too many messages; slow down", "messages"
	}
	now := time.Now()
	if lim.AllowN(now, 1) {
		return nil
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return d.refuse(s, what, kind, wait)
}

// refuse counts a refused frame against the connection's strikes (out
// of them, it is closed with 1008) and returns the rate_limited answer.
func (d *dispatcher) refuse(s *session, what, kind string, wait time.Duration) *protoError {
	d.metrics.rateLimited.WithLabelValues(kind).Inc()
	if !s.limits.strikes.AllowN(time.Now(), 1) {
		d.log.Warn("rate limit abuse; connection closed with 1008", "client", s.conn.id, "user", s.userName(), "ip", s.conn.ip)
		d.hub.Drop(s.conn, websocket.ClosePolicyViolation, "rate limit exceeded")
	}
	return rateLimited(what, wait)
}

// errorFrame turns a handler error into the frame the client sees. This
// is the one place internal errors become codes.
func errorFrame(err error, typ, clientMsgID string) []byte {
	var pe *protoError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, store.ErrUnconfirmed):
		pe = errorf(codeUnconfirmed, "The server did not confirm this in time; it may still be saved, so check before trying again")
	case isStoreDown(err):
		pe = errorf(codeStoreUnavailable, "The server could not save this; nothing was stored. Try again")
	case errors.Is(err, auth.ErrBusy), errors.Is(err, context.DeadlineExceeded):
		pe = &protoError{Code: codeRateLimited, Message: "The server is busy; try again shortly", RetryAfter: 1}
	default:
		pe = errorf(codeInternal, "Internal error")
	}
	return marshalFrame("error", errorData{Code: pe.Code, Message: pe.Message, Type: typ,
		ClientMsgID: clientMsgID, RetryAfter: pe.RetryAfter})
}

// clientMsgIDOf digs the correlation id out of a failed frame so the
// client can mark that message as failed.
func clientMsgIDOf(f Frame) string {
	var d struct {
		ClientMsgID string `json:"clientMsgId"`
	}
	if json.Unmarshal(f.Data, &d) != nil || checkClientMsgID(d.ClientMsgID) != nil {
		return ""
	}
	return d.ClientMsgID
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// staticFiles returns the embedded web client rooted at its folder.
func staticFiles() fs.FS {
	sub, err := fs.Sub(embeddedStatic, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	return sub
}
