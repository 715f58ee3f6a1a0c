package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// routes lists every HTTP route of the server.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.handleWebSocket)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	if s.cfg.Uploads.Enabled {
		mux.HandleFunc("POST /upload", s.handleUpload)
		mux.HandleFunc("GET /files/{id}/{name}", s.handleFile)
	}
	if s.cfg.Metrics.Enabled {
		var allow []*net.IPNet
		for _, a := range s.cfg.Metrics.Allow {
			n, _ := parseCIDROrIP(a) // validated with the config
			allow = append(allow, n)
		}
		mux.Handle("GET /metrics", s.metrics.handler(allow))
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
	return mux
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

// handleReadyz says whether this server takes new work: the store answers
// and shutdown has not begun.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	status, body := http.StatusOK, map[string]string{"status": "ready"}
	if s.shuttingDown.Load() {
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "shutting down"}
	} else if err := s.store.Ping(); err != nil {
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()}
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (s *server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	s.conns.Add(1)
	defer s.conns.Done()
	c := &client{id: newClientID(), ip: s.clientIP(r), limits: newConnLimits(s.cfg.Limits), typingAt: map[string]time.Time{},
		inFlight: make(chan struct{}, maxInFlight)}
	if !s.ipConns.Acquire(c.ip) {
		s.log.Warn("connection refused: too many from one address", "ip", c.ip, "limit", s.cfg.Limits.ConnectionsPerIP)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	defer s.ipConns.Release(c.ip)
	err := s.melody.HandleRequestWithKeys(batchingWriter{ResponseWriter: w, c: c}, r, map[string]any{clientKey: c})
	switch {
	case errors.Is(err, melody.ErrClosed):
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
	case err != nil:
		// The upgrader has already answered (403 for a foreign Origin).
		s.log.Info("websocket upgrade refused", "ip", c.ip, "origin", r.Header.Get("Origin"), "err", err)
	}
}

const clientKey = "client"

func clientOf(sess *melody.Session) *client {
	c, _ := sess.Get(clientKey)
	return c.(*client)
}

// wireMelody connects melody's callbacks to the server.
func (s *server) wireMelody() {
	m := s.melody
	m.HandleConnect(func(sess *melody.Session) {
		c := clientOf(sess)
		c.sess = sess
		s.trackClient(c, true)
		c.send(marshalFrame("connected", connectedData{ClientID: c.id, Server: "parley", Protocol: protocolVersion}))
	})
	m.HandleMessage(func(sess *melody.Session, msg []byte) {
		s.dispatch(clientOf(sess), msg)
	})
	m.HandleSentMessage(func(sess *melody.Session, _ []byte) {
		clientOf(sess).out.flushSent()
	})
	m.HandleDisconnect(func(sess *melody.Session) {
		c := clientOf(sess)
		s.trackClient(c, false)
		if last, rooms := s.hub.Detach(c); last {
			a := c.user.Load()
			peers, err := s.store.DirectPeers(a.ID)
			if err != nil {
				s.log.Warn("load direct peers for presence", "user", a.Name, "err", err)
			}
			s.hub.BroadcastPresence(*a, rooms, peers, marshalFrame("userOffline", a.ref()))
		}
	})
	m.HandleError(func(sess *melody.Session, err error) {
		c := clientOf(sess)
		if isBufferFull(err) || errors.Is(err, melody.ErrWriteClosed) {
			c.out.unqueue() // a frame client.send counted was not queued
		}
		switch {
		case isBufferFull(err):
			// melody would drop this frame and carry on, leaving the client
			// with a silent gap. Disconnect it instead; it resumes with its
			// token and fetches what it missed.
			if !c.dropped.Load() {
				s.metrics.slowConsumers.Inc()
				s.log.Warn("slow consumer disconnected", "client", c.id, "user", userName(c), "ip", c.ip,
					"total", s.slowConsumers.Add(1))
			}
			dropClient(c, websocket.CloseTryAgainLater, "send buffer full", &s.background)
		case errors.Is(err, websocket.ErrReadLimit):
			s.log.Warn("frame too large; connection closed with 1009", "client", c.id, "user", userName(c), "ip", c.ip,
				"limit", s.cfg.Limits.FrameBytes)
		case errors.Is(err, melody.ErrWriteClosed), errors.Is(err, melody.ErrSessionClosed):
		case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
		default:
			s.log.Debug("connection error", "client", c.id, "err", err)
		}
	})
}

func userName(c *client) string {
	if a := c.user.Load(); a != nil {
		return a.Name
	}
	return ""
}

// protocolVersion is announced in "connected"; it changes only when a
// frame changes incompatibly.
const protocolVersion = 1

// handler is one WebSocket message type's handler. It answers through c
// and returns an error for the client: a *protoError as it is, anything
// else mapped by errorFrame.
type handler struct {
	fn      func(ctx context.Context, c *client, f Frame) error
	auth    bool // requires a signed-in connection
	message bool // counts against limits.messages_per_second instead of frames_per_second
}

func (s *server) messageHandlers() map[string]handler {
	return map[string]handler{
		"auth":           {fn: s.handleAuth},
		"logout":         {fn: s.handleLogout, auth: true},
		"changePassword": {fn: s.handleChangePassword, auth: true},
		"join":           {fn: s.handleJoin, auth: true},
		"leave":          {fn: s.handleLeave, auth: true},
		"chat":           {fn: s.handleChat, auth: true, message: true},
		"private":        {fn: s.handlePrivate, auth: true, message: true},
		"typing":         {fn: s.handleTyping, auth: true, message: true},
		"history":        {fn: s.handleHistory, auth: true},
		"rooms":          {fn: s.handleRooms, auth: true},
		"read":           {fn: s.handleRead, auth: true},
		"resetLink":      {fn: s.handleResetLink, auth: true},
		"resetPassword":  {fn: s.handleResetPassword},
		"edit":           {fn: s.handleEdit, auth: true, message: true},
		"delete":         {fn: s.handleDelete, auth: true},
		"react":          {fn: s.handleReact, auth: true, message: true},
		"thread":         {fn: s.handleThread, auth: true},
		"search":         {fn: s.handleSearch, auth: true},
		"invite":         {fn: s.handleInvite, auth: true},
		"kick":           {fn: s.handleKick, auth: true},
		"ban":            {fn: s.handleBan, auth: true},
		"unban":          {fn: s.handleUnban, auth: true},
		"mute":           {fn: s.handleMute, auth: true},
		"unmute":         {fn: s.handleUnmute, auth: true},
		"setRole":        {fn: s.handleSetRole, auth: true},
		"setTopic":       {fn: s.handleSetTopic, auth: true},
	}
}

// handlerTimeout bounds how long one frame may wait for the store or a
// hashing slot.
const handlerTimeout = 10 * time.Second

// dispatch decodes one client frame and runs its handler. Whatever the
// frame holds, the connection and the server go on; a panic closes only
// this connection.
func (s *server) dispatch(c *client, msg []byte) {
	if c.dropped.Load() {
		return // the server is closing this connection
	}
	// A corrupted database page can fault inside bbolt's mmap; make that a
	// panic recovered below instead of a crash of the whole server.
	debug.SetPanicOnFault(true)
	var typ string
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panic; connection closed", "type", typ, "client", c.id, "user", userName(c),
				"panic", r, "stack", string(debug.Stack()))
			dropClient(c, websocket.CloseInternalServerErr, "internal error", &s.background)
		}
	}()
	f, perr := decodeFrame(msg)
	h, known := s.handlers[f.Type]
	if limited := s.allowFrame(c, h.message); limited != nil {
		if !c.dropped.Load() {
			c.send(errorFrame(limited, f.Type, clientMsgIDOf(f)))
		}
		return
	}
	if perr != nil {
		c.send(errorFrame(perr, "", ""))
		return
	}
	typ = f.Type
	if !known {
		c.send(errorFrame(errorf(codeUnknownType, "Unknown message type: %s", truncate(f.Type, 64)), "", ""))
		return
	}
	if h.auth && c.user.Load() == nil {
		c.send(errorFrame(errorf(codeUnauthenticated, "Sign in first: send auth"), f.Type, ""))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, handlerTimeout)
	defer cancel()
	if err := h.fn(ctx, c, f); err != nil {
		var pe *protoError
		if !errors.As(err, &pe) {
			s.log.Error("handler failed", "type", f.Type, "client", c.id, "user", userName(c), "err", err)
		}
		c.send(errorFrame(err, f.Type, clientMsgIDOf(f)))
	}
}

// allowFrame spends one token of the connection's allowance: chat,
// private and typing from the messages bucket, everything else (garbage
// included) from the frames bucket. An exhausted bucket answers
// rate_limited; a client that keeps pushing runs out of strikes and is
// disconnected with 1008.
func (s *server) allowFrame(c *client, message bool) *protoError {
	lim, what, kind := c.limits.frames, "Too many requests; slow down", "frames"
	if message {
		lim, what, kind = c.limits.messages, "Too many messages; slow down", "messages"
	}
	now := time.Now()
	if lim.AllowN(now, 1) {
		return nil
	}
	s.metrics.rateLimited.WithLabelValues(kind).Inc()
	if !c.limits.strikes.AllowN(now, 1) {
		s.log.Warn("rate limit abuse; connection closed with 1008", "client", c.id, "user", userName(c), "ip", c.ip)
		dropClient(c, websocket.ClosePolicyViolation, "rate limit exceeded", &s.background)
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return rateLimited(what, wait)
}

// errorFrame turns a handler error into the frame the client sees. This
// is the one place internal errors become codes.
func errorFrame(err error, typ, clientMsgID string) []byte {
	var pe *protoError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrStoreClosed):
		pe = errorf(codeStoreUnavailable, "The server could not save this; nothing was stored. Try again")
	case errors.Is(err, errHashBusy), errors.Is(err, context.DeadlineExceeded):
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
