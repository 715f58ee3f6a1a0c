package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
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
	page := http.FileServerFS(s.static)
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
	c := &client{id: newClientID(), ip: s.clientIP(r), limits: newConnLimits(s.cfg.Limits), typingAt: map[string]time.Time{}}
	if !s.ipConns.Acquire(c.ip) {
		s.log.Warn("connection refused: too many from one address", "ip", c.ip, "limit", s.cfg.Limits.ConnectionsPerIP)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	defer s.ipConns.Release(c.ip)
	err := s.melody.HandleRequestWithKeys(w, r, map[string]any{clientKey: c})
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

// --- auth ---

func (s *server) handleAuth(ctx context.Context, c *client, f Frame) error {
	if c.user.Load() != nil {
		return errorf(codeAlreadyAuthenticated, "Already signed in as %s", userName(c))
	}
	var d authData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	var (
		user    User
		token   string
		tokHash []byte
		expires time.Time
		created bool
		now     = s.now()
	)
	if d.Token != "" {
		if blocked, wait := s.failedByIP.Blocked(c.ip); blocked {
			return rateLimited("Too many failed sign-ins from your address; try again later", wait)
		}
		u, exp, err := s.store.TokenUser(hashToken(d.Token), now)
		if errors.Is(err, ErrNotFound) {
			s.failedByIP.Spend(c.ip)
			return errorf(codeAuthFailed, "Session expired or signed out; sign in with your password")
		} else if err != nil {
			return err
		}
		user, token, tokHash, expires = u, d.Token, hashToken(d.Token), exp
	} else {
		var err error
		if user, created, err = s.signIn(ctx, c, d.Username, d.Password); err != nil {
			return err
		}
		token, tokHash = newToken()
		expires = now.Add(s.cfg.Auth.SessionTTL)
		if err := s.store.CreateToken(tokHash, user.ID, now, expires); err != nil {
			return err
		}
	}

	return s.completeSignIn(c, user, token, tokHash, expires, created, d.Token != "")
}

// completeSignIn attaches a connection to its user and answers
// authenticated: the first connection of a user brings them online.
func (s *server) completeSignIn(c *client, user User, token string, tokHash []byte, expires time.Time, created, resumed bool) error {
	rooms, err := s.store.UserRooms(user.ID)
	if err != nil {
		return err
	}
	directs, err := s.store.DirectConversations(user.ID)
	if err != nil {
		return err
	}
	a := account{ID: user.ID, Name: user.Name}
	c.tokenHash = tokHash
	c.user.Store(&a)

	online := s.hub.OnlineUsers(a.ID)
	online = append(online, a.ref())
	slices.SortFunc(online, func(x, y userRef) int { return strings.Compare(x.Username, y.Username) })
	counts := s.hub.OnlineCounts()
	roomIDs := make([]string, len(rooms))
	infos := make([]roomInfo, len(rooms))
	for i, r := range rooms {
		roomIDs[i] = r.ID
		infos[i] = toRoomInfo(r, counts[r.ID])
	}
	unreadInfos := []unreadInfo{}
	directInfos := make([]directInfo, len(directs))
	for i, d := range directs {
		peer := strconv.FormatUint(d.PeerID, 10)
		directInfos[i] = directInfo{UserID: peer, Username: d.PeerName, Unread: d.Unread,
			LastMessageAt: formatTime(d.LastMessageAt), Online: s.hub.Online(d.PeerID)}
		if d.Unread > 0 {
			unreadInfos = append(unreadInfos, unreadInfo{UserID: peer, Username: d.PeerName,
				Count: d.Unread, LastMessageAt: formatTime(d.LastMessageAt)})
		}
	}
	hello := marshalFrame("authenticated", authenticatedData{
		ClientID: c.id, UserID: a.idString(), Username: a.Name, Token: token, ExpiresAt: formatTime(expires),
		Created: created, IsAdmin: user.Admin, OnlineUsers: online, Rooms: infos, Unread: unreadInfos, Directs: directInfos,
	})
	if first := s.hub.Attach(c, roomIDs, hello); first {
		peers, err := s.store.DirectPeers(a.ID)
		if err != nil {
			s.log.Warn("load direct peers for presence", "user", a.Name, "err", err)
		}
		s.hub.BroadcastPresence(a, roomIDs, peers, marshalFrame("userOnline", a.ref()))
	}
	s.log.Info("signed in", "user", a.Name, "client", c.id, "ip", c.ip, "created", created, "resumed", resumed)
	return nil
}

// handleResetLink lets an admin issue a one-time sign-in link for a user
// who forgot their password.
func (s *server) handleResetLink(ctx context.Context, c *client, f Frame) error {
	var d struct {
		Username string `json:"username"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	me, err := s.store.UserByID(c.user.Load().ID)
	if err != nil {
		return err
	}
	if !me.Admin {
		return errorf(codeForbidden, "Only an admin can issue reset links")
	}
	if err := checkUsername(d.Username); err != nil {
		return err
	}
	url, expires, err := s.admin.ResetLink(ctx, d.Username)
	var ae *adminError
	if errors.As(err, &ae) {
		return errorf(codeUserNotFound, "User not found")
	} else if err != nil {
		return err
	}
	s.log.Info("reset link issued", "admin", me.Name, "user", d.Username)
	c.send(marshalFrame("resetLink", resetLinkData{Username: d.Username, URL: url, ExpiresAt: formatTime(expires)}))
	return nil
}

// handleResetPassword redeems a one-time link: it sets the new password,
// signs the user out everywhere else, and signs this connection in.
func (s *server) handleResetPassword(ctx context.Context, c *client, f Frame) error {
	if c.user.Load() != nil {
		return errorf(codeAlreadyAuthenticated, "Already signed in as %s", userName(c))
	}
	var d struct {
		ResetToken  string `json:"resetToken"`
		NewPassword string `json:"newPassword"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if n := len([]rune(d.NewPassword)); n < minPasswordLen || len(d.NewPassword) > maxPasswordBytes {
		return errorf(codeInvalidPassword, "New password must be %d characters to %d bytes", minPasswordLen, maxPasswordBytes)
	}
	if blocked, wait := s.failedByIP.Blocked(c.ip); blocked {
		return rateLimited("Too many failed sign-ins from your address; try again later", wait)
	}
	hash, err := s.hasher.Hash(ctx, d.NewPassword)
	if err != nil {
		return err
	}
	token, tokHash := newToken()
	now := s.now()
	expires := now.Add(s.cfg.Auth.SessionTTL)
	user, err := s.store.RedeemResetToken(hashToken(d.ResetToken), hash, tokHash, now, expires)
	if errors.Is(err, ErrNotFound) {
		s.failedByIP.Spend(c.ip)
		return errorf(codeAuthFailed, "This link is used up or expired; ask an admin for a new one")
	} else if err != nil {
		return err
	}
	s.signOutAll(user.ID, "password reset")
	s.log.Info("password reset through a one-time link", "user", user.Name, "ip", c.ip)
	return s.completeSignIn(c, user, token, tokHash, expires, false, false)
}

// signOutAll signs out every connection of a user (their tokens were
// revoked).
func (s *server) signOutAll(userID uint64, reason string) {
	s.signOut(userID, func(*client) bool { return true }, reason)
}

// signIn checks a username and password, registering the name when it is
// free and registration is open. A wrong password and an unknown user
// get the same answer and cost the same time. Failures are throttled per
// address and per username.
func (s *server) signIn(ctx context.Context, c *client, username, password string) (User, bool, error) {
	if username == "" {
		return User{}, false, errorf(codeBadRequest, "Username required")
	}
	if err := checkUsername(username); err != nil {
		return User{}, false, err
	}
	if password == "" {
		return User{}, false, errorf(codeInvalidPassword, "Password required")
	}
	if len(password) > maxPasswordBytes {
		return User{}, false, errorf(codeInvalidPassword, "Password is longer than %d bytes", maxPasswordBytes)
	}
	key := strings.ToLower(username)
	if err := s.loginThrottled(c.ip, key); err != nil {
		return User{}, false, err
	}
	failed := errorf(codeAuthFailed, "Wrong username or password")
	if s.cfg.Auth.Registration != "open" {
		failed.Message += "; this server does not accept new sign-ups"
	}
	fail := func() (User, bool, error) {
		s.failedByIP.Spend(c.ip)
		s.failedByUser.Spend(key)
		s.log.Info("failed sign-in", "username", username, "ip", c.ip)
		return User{}, false, failed
	}
	u, err := s.store.UserByName(username)
	switch {
	case errors.Is(err, ErrNotFound) && s.cfg.Auth.Registration == "open":
		if len([]rune(password)) < minPasswordLen {
			return User{}, false, errorf(codeInvalidPassword, "Password must be at least %d characters", minPasswordLen)
		}
		if blocked, wait := s.signupsByIP.Blocked(c.ip); blocked {
			s.metrics.rateLimited.WithLabelValues("signup").Inc()
			return User{}, false, rateLimited("Too many new accounts from your address; try again later", wait)
		}
		hash, err := s.hasher.Hash(ctx, password)
		if err != nil {
			return User{}, false, err
		}
		u, err = s.store.CreateUser(username, hash, s.now())
		if errors.Is(err, ErrUsernameTaken) {
			return User{}, false, failed // lost a race for the name
		} else if err != nil {
			return User{}, false, err
		}
		s.signupsByIP.Spend(c.ip)
		return u, true, nil
	case errors.Is(err, ErrNotFound):
		// The same work as a real check, so timing does not tell whether
		// the user exists.
		if _, err := s.hasher.Verify(ctx, "", password); err != nil {
			return User{}, false, err
		}
		return fail()
	case err != nil:
		return User{}, false, err
	}
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return User{}, false, err
	}
	if !ok {
		return fail()
	}
	return u, false, nil
}

// loginThrottled refuses a password check while the address or the
// username has used up its failed attempts.
func (s *server) loginThrottled(ip, usernameKey string) error {
	if blocked, wait := s.failedByIP.Blocked(ip); blocked {
		s.metrics.rateLimited.WithLabelValues("login").Inc()
		return rateLimited("Too many failed sign-ins from your address; try again later", wait)
	}
	if blocked, wait := s.failedByUser.Blocked(usernameKey); blocked {
		s.metrics.rateLimited.WithLabelValues("login").Inc()
		return rateLimited("Too many failed sign-ins for this username; try again later", wait)
	}
	return nil
}

// handleChangePassword replaces the password after checking the current
// one, revokes every token of the user, and signs out their other
// connections. This connection stays signed in with a fresh token.
func (s *server) handleChangePassword(ctx context.Context, c *client, f Frame) error {
	var d changePasswordData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if n := len([]rune(d.NewPassword)); n < minPasswordLen || len(d.NewPassword) > maxPasswordBytes {
		return errorf(codeInvalidPassword, "New password must be %d characters to %d bytes", minPasswordLen, maxPasswordBytes)
	}
	a := c.user.Load()
	key := strings.ToLower(a.Name)
	if err := s.loginThrottled(c.ip, key); err != nil {
		return err
	}
	u, err := s.store.UserByID(a.ID)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, d.CurrentPassword)
	if err != nil {
		return err
	}
	if !ok {
		s.failedByIP.Spend(c.ip)
		s.failedByUser.Spend(key)
		return errorf(codeAuthFailed, "Current password is wrong")
	}
	hash, err := s.hasher.Hash(ctx, d.NewPassword)
	if err != nil {
		return err
	}
	token, tokHash := newToken()
	now := s.now()
	expires := now.Add(s.cfg.Auth.SessionTTL)
	if err := s.store.SetPassword(a.ID, hash, tokHash, now, expires); err != nil {
		return err
	}
	old := c.tokenHash
	c.tokenHash = tokHash
	c.send(marshalFrame("passwordChanged", passwordChangedData{Token: token, ExpiresAt: formatTime(expires)}))
	s.signOut(a.ID, func(other *client) bool { return other != c }, "password changed")
	s.log.Info("password changed; other sessions signed out", "user", a.Name, "client", c.id, "hadToken", len(old) > 0)
	return nil
}

// signOut sends loggedOut to the user's connections that match and
// closes them with 1000.
func (s *server) signOut(userID uint64, match func(*client) bool, reason string) {
	bye := marshalFrame("loggedOut", loggedOutData{Reason: reason})
	closeMsg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
	for _, other := range s.hub.ConnectionsFor(userID, nil) {
		if match(other) {
			other.send(bye)
			_ = other.sess.CloseWithMsg(closeMsg)
		}
	}
}

// handleLogout revokes the connection's token and signs out every
// connection that uses it (the tabs of one browser share it).
func (s *server) handleLogout(ctx context.Context, c *client, f Frame) error {
	a := c.user.Load()
	if err := s.store.DeleteToken(c.tokenHash); err != nil {
		return err
	}
	// Read each connection's token on its own goroutine's terms: only
	// this connection's handler writes c.tokenHash, and ConnectionsFor
	// compares under the hub's lock.
	same := map[*client]bool{}
	for _, other := range s.hub.ConnectionsFor(a.ID, c.tokenHash) {
		same[other] = true
	}
	s.signOut(a.ID, func(other *client) bool { return same[other] }, "signed out")
	s.log.Info("signed out", "user", a.Name, "client", c.id)
	return nil
}

// --- rooms ---

func (s *server) handleJoin(ctx context.Context, c *client, f Frame) error {
	var d roomData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	a := c.user.Load()
	uid := a.idString()
	createBlocked, wait := s.roomsCreated.Blocked(uid)
	res, err := s.store.JoinRoom(d.RoomID, Member{UserID: a.ID, Name: a.Name}, s.now(),
		JoinLimits{MaxRooms: s.cfg.Limits.RoomsPerUser, NoCreate: createBlocked})
	switch {
	case errors.Is(err, ErrTooManyRooms):
		return errorf(codeLimitReached, "You are a member of %d rooms, the most this server allows; leave one first", s.cfg.Limits.RoomsPerUser)
	case errors.Is(err, ErrCreateNotAllowed):
		s.metrics.rateLimited.WithLabelValues("rooms").Inc()
		return rateLimited(fmt.Sprintf("You have created %d rooms in the last hour; join an existing room or try again later",
			s.cfg.Limits.RoomsCreatedPerHour), wait)
	case err != nil:
		return err
	}
	if res.Created {
		s.roomsCreated.Spend(uid)
	}
	// Subscribe before reading history: a message committed in between
	// then arrives twice (clients dedupe by id) rather than never.
	s.hub.Join(a.ID, d.RoomID)
	msgs, more, err := s.store.RoomHistory(d.RoomID, 0, s.cfg.History.OnJoin)
	if err != nil {
		return err
	}
	members, err := s.store.RoomMembers(d.RoomID)
	if err != nil {
		return err
	}
	c.send(marshalFrame("joined", joinedData{RoomID: d.RoomID, Created: res.Created, History: toMessageFrames(msgs),
		HasMore: more, Users: s.memberInfos(members)}))
	if res.NewMember {
		s.hub.Broadcast(d.RoomID, marshalFrame("userJoined", roomUserData{RoomID: d.RoomID, UserID: a.idString(), Username: a.Name}), a.ID)
		s.log.Info("joined room", "user", a.Name, "room", d.RoomID, "created", res.Created)
	}
	return nil
}

func (s *server) memberInfos(members []Member) []memberInfo {
	out := make([]memberInfo, len(members))
	for i, m := range members {
		out[i] = memberInfo{UserID: strconv.FormatUint(m.UserID, 10), Username: m.Name, Online: s.hub.Online(m.UserID)}
	}
	slices.SortFunc(out, func(x, y memberInfo) int { return strings.Compare(x.Username, y.Username) })
	return out
}

func (s *server) handleLeave(ctx context.Context, c *client, f Frame) error {
	var d roomData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	a := c.user.Load()
	was, err := s.store.LeaveRoom(d.RoomID, a.ID)
	if err != nil {
		return err
	}
	if !was {
		return errorf(codeNotMember, "Not in room")
	}
	s.hub.Leave(a.ID, d.RoomID)
	s.hub.SendUser(a.ID, marshalFrame("left", roomData{RoomID: d.RoomID}))
	s.hub.Broadcast(d.RoomID, marshalFrame("userLeft", roomUserData{RoomID: d.RoomID, UserID: a.idString(), Username: a.Name}), 0)
	s.log.Info("left room", "user", a.Name, "room", d.RoomID)
	return nil
}

func (s *server) handleRooms(ctx context.Context, c *client, f Frame) error {
	var d struct{}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	rooms, err := s.store.Rooms()
	if err != nil {
		return err
	}
	counts := s.hub.OnlineCounts()
	out := make([]roomInfo, len(rooms))
	for i, r := range rooms {
		out[i] = toRoomInfo(r, counts[r.ID])
	}
	c.send(marshalFrame("rooms", roomsData{Rooms: out}))
	return nil
}

func toRoomInfo(r Room, online int) roomInfo {
	info := roomInfo{RoomID: r.ID, MemberCount: r.MemberCount, OnlineCount: online, CreatedAt: formatTime(r.CreatedAt)}
	if !r.LastMessageAt.IsZero() {
		info.LastMessageAt = formatTime(r.LastMessageAt)
	}
	return info
}

// --- messages ---

func (s *server) handleChat(ctx context.Context, c *client, f Frame) error {
	var d chatData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if d.RoomID == "" || d.Content == "" {
		return errorf(codeBadRequest, "Missing roomId or content")
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	if err := checkClientMsgID(d.ClientMsgID); err != nil {
		return err
	}
	if err := checkContent(d.Content, s.cfg.Limits.MessageChars); err != nil {
		return err
	}
	a := c.user.Load()
	if !s.hub.IsMember(a.ID, d.RoomID) {
		return errorf(codeNotMember, "Not in room")
	}
	// Delivery, including the sender's acknowledgement, happens in
	// deliver once the message is committed.
	_, err := s.store.AppendMessage(ctx, Message{RoomID: d.RoomID, SenderID: a.ID, SenderName: a.Name,
		Content: d.Content, Time: s.now(), ClientMsgID: d.ClientMsgID})
	if errors.Is(err, ErrNotFound) {
		return errorf(codeInvalidRoom, "Room %s does not exist", d.RoomID)
	}
	return err
}

func (s *server) handlePrivate(ctx context.Context, c *client, f Frame) error {
	var d privateData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if (d.TargetUserID == "" && d.TargetUsername == "") || d.Content == "" {
		return errorf(codeBadRequest, "Missing targetUserId or content")
	}
	if err := checkClientMsgID(d.ClientMsgID); err != nil {
		return err
	}
	if err := checkContent(d.Content, s.cfg.Limits.MessageChars); err != nil {
		return err
	}
	target, err := s.findUser(d.TargetUserID, d.TargetUsername)
	if err != nil {
		return err
	}
	a := c.user.Load()
	if target.ID == a.ID {
		return errorf(codeInvalidTarget, "You cannot send a private message to yourself")
	}
	_, err = s.store.AppendMessage(ctx, Message{SenderID: a.ID, SenderName: a.Name, TargetID: target.ID,
		TargetName: target.Name, Content: d.Content, Time: s.now(), ClientMsgID: d.ClientMsgID})
	return err
}

// findUser resolves a user by id or, failing that, by name.
func (s *server) findUser(id, name string) (User, error) {
	var (
		u   User
		err error
	)
	if id != "" {
		n, perr := strconv.ParseUint(id, 10, 64)
		if perr != nil {
			return User{}, errorf(codeUserNotFound, "User not found")
		}
		u, err = s.store.UserByID(n)
	} else {
		u, err = s.store.UserByName(name)
	}
	if errors.Is(err, ErrNotFound) {
		return User{}, errorf(codeUserNotFound, "User not found")
	}
	return u, err
}

// deliver fans committed messages out. The store calls it from its writer
// goroutine in commit order, so every connection sees a conversation's
// messages in id order. The sender's own copy is its acknowledgement.
func (s *server) deliver(msgs []Message) {
	n := 0
	for _, m := range msgs {
		mf := toMessageFrame(m)
		if m.IsDirect() {
			n += s.hub.SendUser(m.TargetID, marshalFrame("privateMessage", mf))
			n += s.hub.SendUser(m.SenderID, marshalFrame("privateMessageSent", mf))
			continue
		}
		n += s.hub.Broadcast(m.RoomID, marshalFrame("message", mf), 0)
	}
	s.metrics.deliveries.Add(float64(n))
}

func (s *server) handleTyping(ctx context.Context, c *client, f Frame) error {
	var d typingData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	a := c.user.Load()
	if !s.hub.IsMember(a.ID, d.RoomID) {
		return errorf(codeNotMember, "Not in room")
	}
	// A keystroke-happy client would otherwise fan out a frame to the
	// whole room per key; "still typing" once per interval is enough.
	now := time.Now()
	if d.IsTyping {
		if now.Sub(c.typingAt[d.RoomID]) < typingInterval {
			return nil
		}
		c.typingAt[d.RoomID] = now
	} else {
		delete(c.typingAt, d.RoomID)
	}
	s.hub.Broadcast(d.RoomID, marshalFrame("typing", typingOutData{RoomID: d.RoomID, UserID: a.idString(),
		Username: a.Name, IsTyping: d.IsTyping}), a.ID)
	return nil
}

// typingInterval is the least time between two relayed isTyping:true
// frames of one connection in one room; isTyping:false always goes through.
const typingInterval = 2 * time.Second

// maxHistoryPage is the most messages one history frame returns.
const maxHistoryPage = 100

func (s *server) handleHistory(ctx context.Context, c *client, f Frame) error {
	var d historyData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	limit := d.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > maxHistoryPage:
		return errorf(codeBadRequest, "limit must be between 1 and %d", maxHistoryPage)
	}
	var before uint64
	if d.Before != "" {
		n, err := strconv.ParseUint(d.Before, 10, 64)
		if err != nil {
			return errorf(codeBadRequest, "before must be a message id")
		}
		before = n
	}
	a := c.user.Load()
	switch {
	case d.RoomID != "" && d.WithUserID != "":
		return errorf(codeBadRequest, "Give roomId or withUserId, not both")
	case d.RoomID != "":
		if err := checkRoomID(d.RoomID); err != nil {
			return err
		}
		if !s.hub.IsMember(a.ID, d.RoomID) {
			return errorf(codeNotMember, "Not in room")
		}
		msgs, more, err := s.store.RoomHistory(d.RoomID, before, limit)
		if err != nil {
			return err
		}
		c.send(marshalFrame("history", historyOutData{RoomID: d.RoomID, Messages: toMessageFrames(msgs), HasMore: more}))
		return nil
	case d.WithUserID != "":
		peer, err := s.findUser(d.WithUserID, "")
		if err != nil {
			return err
		}
		msgs, more, err := s.store.DirectHistory(a.ID, peer.ID, before, limit)
		if err != nil {
			return err
		}
		// Fetching the newest page reads the conversation.
		if before == 0 && len(msgs) > 0 {
			if err := s.store.MarkDirectRead(a.ID, peer.ID, msgs[len(msgs)-1].Seq); err != nil {
				return err
			}
		}
		c.send(marshalFrame("history", historyOutData{WithUserID: d.WithUserID, Messages: toMessageFrames(msgs), HasMore: more}))
		return nil
	}
	return errorf(codeBadRequest, "Missing roomId or withUserId")
}

func (s *server) handleRead(ctx context.Context, c *client, f Frame) error {
	var d readData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	seq, err := strconv.ParseUint(d.MessageID, 10, 64)
	if err != nil {
		return errorf(codeBadRequest, "messageId must be a message id")
	}
	peer, err := s.findUser(d.WithUserID, "")
	if err != nil {
		return err
	}
	return s.store.MarkDirectRead(c.user.Load().ID, peer.ID, seq)
}

func toMessageFrame(m Message) messageFrame {
	mf := messageFrame{ID: formatMessageID(m.Seq), Seq: m.Seq, RoomID: m.RoomID, SenderID: strconv.FormatUint(m.SenderID, 10),
		SenderName: m.SenderName, Content: m.Content, Timestamp: formatTime(m.Time), ClientMsgID: m.ClientMsgID}
	if m.IsDirect() {
		mf.TargetUserID = strconv.FormatUint(m.TargetID, 10)
		mf.TargetUsername = m.TargetName
	}
	return mf
}

func toMessageFrames(msgs []Message) []messageFrame {
	out := make([]messageFrame, len(msgs))
	for i, m := range msgs {
		out[i] = toMessageFrame(m)
	}
	return out
}

// formatMessageID zero-pads the sequence number so ids sort as strings
// in send order, as well as numbers.
func formatMessageID(seq uint64) string { return fmt.Sprintf("%012d", seq) }

// formatTime is the tutorial's timestamp format: ISO 8601 in UTC with
// milliseconds.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// staticFiles returns the embedded web client rooted at its folder.
func staticFiles() fs.FS {
	sub, err := fs.Sub(embeddedStatic, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	return sub
}
