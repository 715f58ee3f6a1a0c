package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"parley/internal/auth"
	"parley/internal/store"

	"github.com/gorilla/websocket"
)

// authHandlers sign connections in and out and change passwords.
//
// Failed password sign-ins are limited so that they slow the guesser,
// not the account's owner: per address, and per account and address,
// both low; per account alone only at a much higher cap, which stops a
// guesser spread over many addresses without letting one address lock
// anyone out. Tokens are never guessed (256 random bits), so a failed
// resume counts only against badTokensByIP, never against password
// failures, and password failures never block a valid token.
type authHandlers struct {
	deps
	cfg            AuthConfig
	hasher         *auth.Hasher
	failedByIP     *auth.Limiter // failed sign-ins per client address
	failedByUserIP *auth.Limiter // failed sign-ins per lower-cased username and address
	failedByUser   *auth.Limiter // failed sign-ins per lower-cased username, from anywhere
	badTokensByIP  *auth.Limiter // failed token resumes and reset links per client address
	signupsByIP    *auth.Limiter // new accounts per client address
	signIns        *auth.Limiter // sign-ins (password or token) per user id
	guestsByIP     *auth.Limiter // guest sign-ins per client address
	links          linkBase
	maxUpload      int64 // uploads.max_bytes, told to clients; 0 when uploads are off
	// registration is auth.registration as it applies to this database:
	// open, invite or closed.
	registration string
	// vapidKey is the server's Web Push public key, told to clients;
	// nil when push is off.
	vapidKey func() string
}

// failedTokensPerIP is how many unknown or expired tokens and reset links
// one address may present per auth.failed_login_window: enough for a
// household coming back after their tokens expired, not for a scan.
const failedTokensPerIP = 100

func newAuthHandlers(d deps, cfg AuthConfig, signInsPerMinute int, hasher *auth.Hasher, links linkBase, maxUpload int64) *authHandlers {
	return &authHandlers{deps: d, cfg: cfg, hasher: hasher, links: links, maxUpload: maxUpload,
		registration:   cfg.registration(d.store.RegistrationDefault()),
		guestsByIP:     auth.NewLimiter(cfg.GuestsPerIPPerHour, time.Hour),
		failedByIP:     auth.NewLimiter(cfg.FailedLoginsPerIP, cfg.FailedLoginWindow),
		failedByUserIP: auth.NewLimiter(cfg.FailedLoginsPerUserAndIP, cfg.FailedLoginWindow),
		failedByUser:   auth.NewLimiter(cfg.FailedLoginsPerUser, cfg.FailedLoginWindow),
		badTokensByIP:  auth.NewLimiter(failedTokensPerIP, cfg.FailedLoginWindow),
		signupsByIP:    auth.NewLimiter(cfg.SignupsPerIPPerHour, time.Hour),
		signIns:        auth.NewLimiter(signInsPerMinute, time.Minute)}
}

// maxUploadBytes is the largest upload a client may send, or 0 when
// uploads are off.
func maxUploadBytes(u UploadsConfig) int64 {
	if !u.Enabled {
		return 0
	}
	return u.MaxBytes
}

// signInRetries bounds how often a sign-in reads its view again because
// events newer than the view went by meanwhile (see Hub.SignIn); each
// retry is a read of a few milliseconds at most.
const signInRetries = 50

func (h *authHandlers) handleAuth(ctx context.Context, s *session, f Frame) (err error) {
	if s.user != nil {
		return errorf(codeAlreadyAuthenticated, "Already signed in as %s", s.user.Name)
	}
	var d authData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	method, created := "password", false
	if d.Token != "" {
		method = "token"
	}
	defer func() { h.countSignIn(method, created, err) }()
	if d.Token != "" {
		res, ok, wait := h.badTokensByIP.Reserve(s.conn.ip)
		if !ok {
			h.metrics.rateLimited.WithLabelValues("login").Inc()
			return rateLimited("Too many unknown sign-in tokens from your address; try again later", wait)
		}
		hash := auth.HashToken(d.Token)
		u, _, err := h.store.TokenUser(hash, h.now())
		if errors.Is(err, store.ErrNotFound) {
			return errorf(codeAuthFailed, "Session expired or signed out; sign in with your password")
		} else if err != nil {
			return err
		}
		res.Cancel() // a token that works is no failure
		if err := h.reserveSignIn(u.ID); err != nil {
			return err
		}
		err = h.attach(s, hash, d.Token, authResult{resumed: true})
		if errors.Is(err, store.ErrNotFound) {
			return errorf(codeAuthFailed, "Session expired or signed out; sign in with your password")
		}
		return err
	}
	if d.Password == "" && d.Create == nil && d.Invite == "" && d.Username != "" && h.cfg.Guests {
		method = "guest"
		return h.signInGuest(ctx, s, d.Username)
	}
	token, hash := auth.NewToken()
	grant := store.TokenGrant{Hash: hash, ExpiresAt: h.now().Add(h.cfg.SessionTTL)}
	how, err := h.signIn(ctx, s, d, grant)
	if err != nil {
		return err
	}
	created = how.created
	return h.attach(s, hash, token, how)
}

// authResult says how a connection signed in, for authenticated and logs.
type authResult struct {
	created bool   // registered the account
	resumed bool   // with a token
	landed  string // the room an invite link put a new account in
}

// countSignIn records a sign-in's outcome in /metrics.
func (h *authHandlers) countSignIn(method string, created bool, err error) {
	outcome := "ok"
	var pe *protoError
	switch {
	case err == nil && created:
		outcome = "created"
	case err == nil:
	case errors.As(err, &pe):
		outcome = pe.Code // auth_failed, rate_limited, banned, invalid_password, ...
	default:
		outcome = "error"
	}
	h.metrics.signIns.WithLabelValues(method, outcome).Inc()
}

// attach signs a connection in with a stored token: it reads what the
// user needs in one view, and attaches the connection to the hub with it
// so that no event the view does not show can be missed.
func (h *authHandlers) attach(s *session, tokenHash []byte, token string, how authResult) error {
	for range signInRetries {
		v, err := h.store.SignInView(tokenHash, h.now())
		if err != nil {
			return err
		}
		who := identity{userID: v.User.ID, name: v.User.Name, tokenHash: string(tokenHash)}
		roomIDs := make([]string, len(v.Rooms))
		for i, r := range v.Rooms {
			roomIDs[i] = r.ID
		}
		hello := func(online []userRef) []byte {
			a := h.authenticated(s, v, roomIDs, online, token, how.created)
			a.InvitedTo = how.landed
			return marshalFrame("authenticated", a)
		}
		if !h.hub.SignIn(s.conn, who, roomIDs, v.Peers, hello, v.Seq) {
			continue
		}
		s.user, s.token = &account{ID: v.User.ID, Name: v.User.Name, Guest: v.User.Guest, Bot: v.User.Bot}, tokenHash
		h.log.Info("signed in", "user", v.User.Name, "client", s.conn.id, "ip", s.conn.ip, "created", how.created, "resumed", how.resumed,
			"guest", v.User.Guest, "bot", v.User.Bot)
		return nil
	}
	return &protoError{Code: codeRateLimited, Message: "The server is busy; try again shortly", RetryAfter: 1}
}

// authenticated is the answer to a sign-in: who the user is, who is
// online, their rooms, unread counts and direct conversations.
func (h *authHandlers) authenticated(s *session, v store.SignInView, roomIDs []string, online []userRef, token string, created bool) authenticatedData {
	counts := h.hub.OnlineCounts(roomIDs)
	infos := make([]roomInfo, len(v.Rooms))
	for i, r := range v.Rooms {
		infos[i] = toRoomInfo(r, counts[r.ID])
		st := v.Reads[r.ID]
		infos[i].Role, infos[i].Unread, infos[i].Mentions = r.Role(v.User.ID), &st.Unread, &st.Mentions
		if st.LastRead > 0 {
			infos[i].LastRead = formatMessageID(st.LastRead)
		}
	}
	unread := []unreadInfo{}
	directs := make([]directInfo, len(v.Directs))
	for i, d := range v.Directs {
		peer := formatID(d.PeerID)
		directs[i] = directInfo{UserID: peer, Username: d.PeerName, Unread: d.Unread,
			LastMessageAt: formatTime(d.LastMessageAt), Online: h.hub.Online(d.PeerID)}
		if d.LastRead > 0 {
			directs[i].LastRead = formatMessageID(d.LastRead)
		}
		if d.Unread > 0 {
			unread = append(unread, unreadInfo{UserID: peer, Username: d.PeerName, Count: d.Unread, LastMessageAt: formatTime(d.LastMessageAt)})
		}
	}
	for i, r := range v.Rooms {
		if lvl, ok := v.Notify[r.ID]; ok {
			infos[i].Notify = lvl
		}
	}
	a := authenticatedData{ClientID: s.conn.id, UserID: formatID(v.User.ID), Username: v.User.Name, Token: token,
		ExpiresAt: formatTime(v.Expires), Created: created, IsAdmin: v.User.Admin, OnlineUsers: online, Rooms: infos,
		Unread: unread, Directs: directs, MaxUploadBytes: h.maxUpload, Guest: v.User.Guest, Bot: v.User.Bot}
	if !v.User.Guest && !v.User.Bot && h.vapidKey != nil {
		a.VAPIDPublicKey = h.vapidKey()
	}
	return a
}

// signIn checks a username and password and stores the token grant for
// the account, registering the name when it is free, registration is
// open and the client did not say create: false. A wrong password and an
// unknown user get the same answer and cost the same time.
//
// Failures are limited per address and per username. The limits are
// taken before the password is hashed and given back only when the
// attempt succeeds, so guesses sent at once on many connections cannot
// all pass the check before any failure is counted.
func (h *authHandlers) signIn(ctx context.Context, s *session, d authData, grant store.TokenGrant) (authResult, error) {
	switch {
	case d.Username == "":
		return authResult{}, errorf(codeBadRequest, "Username required")
	case !validName(d.Username, maxUsernameLen):
		// Names of dots alone are refused only for new accounts (signUp):
		// one registered before that rule may still sign in.
		return authResult{}, checkUsername(d.Username)
	case d.Password == "":
		return authResult{}, errorf(codeInvalidPassword, "Password required")
	case len(d.Password) > maxPasswordBytes:
		return authResult{}, errorf(codeInvalidPassword, "Password is longer than %d bytes", maxPasswordBytes)
	}
	key := strings.ToLower(d.Username)
	attempt, err := h.reserveAttempt(s.conn.ip, key)
	if err != nil {
		return authResult{}, err
	}
	succeeded := false
	defer func() {
		if succeeded {
			attempt.cancel()
		}
	}()
	failed := errorf(codeAuthFailed, "Wrong username or password")
	switch h.registration {
	case "invite":
		failed.Message += "; new members need an invite link"
	case "closed":
		failed.Message += "; this server does not accept new sign-ups"
	}
	// With invite links, a sign-up without one is tried only while the
	// server has no account: the first one signs up freely.
	mayRegister := h.registration == "open" || (h.registration == "invite" && (d.Invite != "" || !h.store.HasAccounts()))
	wantsAccount := d.Create == nil || *d.Create
	u, err := h.store.UserByName(d.Username)
	switch {
	case errors.Is(err, store.ErrNotFound) && mayRegister && wantsAccount:
		// A new account is not a failed guess.
		succeeded = true
		return h.signUp(ctx, s, d, grant, failed)
	case err == nil && d.Create != nil && *d.Create:
		succeeded = true
		return authResult{}, errorf(codeUsernameTaken, "The name %s is taken; choose another or sign in", u.Name)
	case errors.Is(err, store.ErrNotFound) && d.Create != nil && *d.Create:
		succeeded = true
		return authResult{}, registrationClosed(h.registration)
	case errors.Is(err, store.ErrNotFound):
		// The same work as a real check, so timing does not tell whether
		// the user exists.
		if _, err := h.hasher.Verify(ctx, "", d.Password); err != nil {
			return authResult{}, err
		}
		h.log.Info("failed sign-in", "username", d.Username, "ip", s.conn.ip)
		return authResult{}, failed
	case err != nil:
		return authResult{}, err
	}
	ok, err := h.hasher.Verify(ctx, u.PasswordHash, d.Password)
	switch {
	case err != nil:
		return authResult{}, err
	case !ok:
		h.log.Info("failed sign-in", "username", d.Username, "ip", s.conn.ip)
		return authResult{}, failed
	}
	succeeded = true
	if err := h.reserveSignIn(u.ID); err != nil {
		return authResult{}, err
	}
	_, err = h.bus.Do(ctx, s.origin(), store.IssueToken{UserID: u.ID, Token: grant})
	switch {
	case errors.Is(err, store.ErrSuspended):
		return authResult{}, errorf(codeBanned, "This account is suspended")
	case errors.Is(err, store.ErrNotFound):
		return authResult{}, failed // deleted meanwhile
	}
	return authResult{}, err
}

// registrationClosed answers a sign-up the server does not take.
func registrationClosed(registration string) *protoError {
	if registration == "invite" {
		return errorf(codeRegistrationClosed, "This server takes new members by invitation: ask a member for an invite link")
	}
	return errorf(codeRegistrationClosed, "This server does not accept new sign-ups")
}

// signUp registers a new account with the sign-in's token, using up the
// invite link it came with, if any.
func (h *authHandlers) signUp(ctx context.Context, s *session, d authData, grant store.TokenGrant, failed *protoError) (authResult, error) {
	if err := checkUsername(d.Username); err != nil {
		return authResult{}, err
	}
	if len([]rune(d.Password)) < minPasswordLen {
		return authResult{}, errorf(codeInvalidPassword, "Password must be at least %d characters", minPasswordLen)
	}
	res, ok, wait := h.signupsByIP.Reserve(s.conn.ip)
	if !ok {
		h.metrics.rateLimited.WithLabelValues("signup").Inc()
		return authResult{}, rateLimited("Too many new accounts from your address; try again later", wait)
	}
	hash, err := h.hasher.Hash(ctx, d.Password)
	if err != nil {
		res.Cancel()
		return authResult{}, err
	}
	cmd := store.CreateUser{Name: d.Username, PasswordHash: hash, Token: &grant, RequireInvite: h.registration == "invite"}
	if d.Invite != "" {
		cmd.Invite = auth.HashToken(d.Invite)
	}
	out, err := h.bus.Do(ctx, s.origin(), cmd)
	if err != nil {
		res.Cancel()
	}
	switch {
	case errors.Is(err, store.ErrUsernameTaken):
		if d.Create != nil && *d.Create {
			return authResult{}, errorf(codeUsernameTaken, "The name %s is taken; choose another or sign in", d.Username)
		}
		return authResult{}, failed // lost a race for the name
	case errors.Is(err, store.ErrInviteInvalid):
		return authResult{}, errorf(codeInviteInvalid, "This invite link is used up or expired; ask for a new one")
	case errors.Is(err, store.ErrInviteRequired):
		return authResult{}, registrationClosed(h.registration)
	case err != nil:
		return authResult{}, err
	}
	if d.Invite != "" {
		h.log.Info("signed up with an invite link", "user", d.Username, "room", out.Room.ID)
	}
	return authResult{created: true, landed: out.Room.ID}, nil
}

// reserveSignIn takes one sign-in from the account's allowance, before
// its token is issued or its connection attached: all its connections
// together sign in at most limits.sign_ins_per_minute times, so one
// account reconnecting in a loop costs everyone else little.
func (h *authHandlers) reserveSignIn(userID uint64) error {
	if _, ok, wait := h.signIns.Reserve(formatID(userID)); !ok {
		h.metrics.rateLimited.WithLabelValues("sign_ins").Inc()
		return rateLimited("This account has signed in too often in the last minute; try again shortly", wait)
	}
	return nil
}

// attempt is one failed password attempt taken from every allowance it
// counts against; cancel gives it back when the password was right.
type attempt []auth.Reservation

func (a attempt) cancel() {
	for _, r := range a {
		r.Cancel()
	}
}

// reserveAttempt takes one failed attempt from the address's, the
// username's at this address and the username's allowances before a
// password is checked; if any is exhausted it takes none.
func (h *authHandlers) reserveAttempt(ip, usernameKey string) (attempt, error) {
	var taken attempt
	for _, l := range []struct {
		lim  *auth.Limiter
		key  string
		what string
	}{
		{h.failedByIP, ip, "from your address"},
		{h.failedByUserIP, usernameKey + "\x00" + ip, "for this username from your address"},
		{h.failedByUser, usernameKey, "for this username"},
	} {
		res, ok, wait := l.lim.Reserve(l.key)
		if !ok {
			taken.cancel()
			h.metrics.rateLimited.WithLabelValues("login").Inc()
			return nil, rateLimited("Too many failed sign-ins "+l.what+"; try again later", wait)
		}
		taken = append(taken, res)
	}
	return taken, nil
}

// handleChangePassword replaces the password after checking the current
// one. Every token of the user is revoked and their other connections
// are signed out; this connection stays signed in with a fresh token.
func (h *authHandlers) handleChangePassword(ctx context.Context, s *session, f Frame) error {
	var d changePasswordData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkNewPassword(d.NewPassword); err != nil {
		return err
	}
	attempt, err := h.reserveAttempt(s.conn.ip, strings.ToLower(s.user.Name))
	if err != nil {
		return err
	}
	u, err := h.store.UserByID(s.user.ID)
	if err != nil {
		return err
	}
	ok, err := h.hasher.Verify(ctx, u.PasswordHash, d.CurrentPassword)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(codeAuthFailed, "Current password is wrong")
	}
	attempt.cancel()
	hash, err := h.hasher.Hash(ctx, d.NewPassword)
	if err != nil {
		return err
	}
	token, tokHash := auth.NewToken()
	expires := h.now().Add(h.cfg.SessionTTL)
	if _, err := h.bus.Do(ctx, s.origin(), store.SetPassword{UserID: u.ID, PasswordHash: hash,
		Token: &store.TokenGrant{Hash: tokHash, ExpiresAt: expires}, Reason: "password changed"}); err != nil {
		return err
	}
	s.token = tokHash
	s.send(marshalFrame("passwordChanged", passwordChangedData{Token: token, ExpiresAt: formatTime(expires)}))
	h.log.Info("password changed; other sessions signed out", "user", u.Name, "client", s.conn.id)
	return nil
}

func checkNewPassword(pw string) *protoError {
	if n := len([]rune(pw)); n < minPasswordLen || len(pw) > maxPasswordBytes {
		return errorf(codeInvalidPassword, "New password must be %d characters to %d bytes", minPasswordLen, maxPasswordBytes)
	}
	return nil
}

// handleLogout revokes the connection's token; every connection signed
// in with it (the tabs of one browser share it) is signed out.
func (h *authHandlers) handleLogout(ctx context.Context, s *session, f Frame) error {
	_, err := h.bus.Do(ctx, s.origin(), store.RevokeToken{Hash: s.token})
	if errors.Is(err, store.ErrNotFound) {
		// Revoked or expired already: nothing else uses it, but this
		// connection is still told.
		s.send(marshalFrame("loggedOut", loggedOutData{Reason: "signed out"}))
		s.conn.close(websocket.CloseNormalClosure, "signed out")
		err = nil
	}
	if err == nil {
		h.log.Info("signed out", "user", s.user.Name, "client", s.conn.id)
	}
	return err
}

// handleResetLink lets an admin issue a one-time sign-in link for a user
// who forgot their password.
func (h *authHandlers) handleResetLink(ctx context.Context, s *session, f Frame) error {
	var d struct {
		Username string `json:"username"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	me, err := h.store.UserByID(s.user.ID)
	if err != nil {
		return err
	}
	if !me.Admin {
		return errorf(codeForbidden, "Only an admin can issue reset links")
	}
	if err := checkUsername(d.Username); err != nil {
		return err
	}
	target, err := h.store.UserByName(d.Username)
	if err != nil || target.Deleted {
		return errorf(codeUserNotFound, "User not found")
	}
	link, err := issueResetLink(ctx, h.bus, s.origin(), h.links.forConn(s.conn), target.ID, h.cfg.ResetTTL)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(codeUserNotFound, "User not found")
	} else if err != nil {
		return err
	}
	h.log.Info("reset link issued", "admin", me.Name, "user", target.Name)
	s.send(marshalFrame("resetLink", resetLinkData{Username: target.Name, URL: link.URL, ExpiresAt: formatTime(link.Expires)}))
	return nil
}

// handleResetPassword redeems a one-time link: it sets the new password,
// signs the user out everywhere else, and signs this connection in.
func (h *authHandlers) handleResetPassword(ctx context.Context, s *session, f Frame) (err error) {
	if s.user != nil {
		return errorf(codeAlreadyAuthenticated, "Already signed in as %s", s.user.Name)
	}
	var d struct {
		ResetToken  string `json:"resetToken"`
		NewPassword string `json:"newPassword"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	defer func() { h.countSignIn("reset", false, err) }()
	if err := checkNewPassword(d.NewPassword); err != nil {
		return err
	}
	res, ok, wait := h.badTokensByIP.Reserve(s.conn.ip)
	if !ok {
		return rateLimited("Too many unknown links or tokens from your address; try again later", wait)
	}
	hash, err := h.hasher.Hash(ctx, d.NewPassword)
	if err != nil {
		res.Cancel()
		return err
	}
	token, tokHash := auth.NewToken()
	out, err := h.bus.Do(ctx, s.origin(), store.RedeemResetLink{Hash: auth.HashToken(d.ResetToken), PasswordHash: hash,
		Token: store.TokenGrant{Hash: tokHash, ExpiresAt: h.now().Add(h.cfg.SessionTTL)}})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(codeAuthFailed, "This link is used up or expired; ask an admin for a new one")
	case errors.Is(err, store.ErrSuspended):
		res.Cancel()
		return errorf(codeBanned, "This account is suspended")
	case err != nil:
		res.Cancel()
		return err
	}
	res.Cancel()
	h.log.Info("password reset through a one-time link", "user", out.User.Name, "ip", s.conn.ip)
	return h.attach(s, tokHash, token, authResult{})
}

// resetLink is a one-time link and when it stops working.
type resetLink struct {
	URL     string
	Name    string
	Expires time.Time
}

// issueResetLink stores a one-time link that signs a user in and lets
// them set a new password; a small server has no email to send it by, so
// an admin passes it on. The token travels in the URL's fragment, which
// browsers never send to servers or in Referer headers.
func issueResetLink(ctx context.Context, b *bus, origin, base string, userID uint64, ttl time.Duration) (resetLink, error) {
	token, hash := auth.NewToken()
	expires := b.now().Add(ttl)
	out, err := b.Do(ctx, origin, store.CreateResetLink{UserID: userID, Hash: hash, ExpiresAt: expires})
	if err != nil {
		return resetLink{}, err
	}
	return resetLink{URL: strings.TrimRight(base, "/") + "/#reset=" + token, Name: out.User.Name, Expires: expires}, nil
}

// linkBase says where links handed out should point.
type linkBase struct {
	publicURL string // server.public_url, or empty
	fallback  string // publicURL(cfg): where the server listens
	tls       bool
}

// forConn is where links handed to a connection should point: the
// configured public URL, or else the origin the connection's page was
// loaded from (checked at the upgrade), or else its Host header.
func (l linkBase) forConn(c *Conn) string {
	if l.publicURL != "" {
		return l.publicURL
	}
	r := c.Request()
	if origin := r.Header.Get("Origin"); strings.HasPrefix(origin, "http://") || strings.HasPrefix(origin, "https://") {
		return origin
	}
	if r.Host != "" {
		if l.tls {
			return "https://" + r.Host
		}
		return "http://" + r.Host
	}
	return l.fallback
}
