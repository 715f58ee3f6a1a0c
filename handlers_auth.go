package main

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

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
		if user, created, err = s.signIn(ctx, c, d.Username, d.Password, d.Create); err != nil {
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

	roomIDs := make([]string, len(rooms))
	for i, r := range rooms {
		roomIDs[i] = r.ID
	}
	peers, err := s.store.DirectPeers(a.ID)
	if err != nil {
		return err
	}
	online := s.hub.OnlineUsers(a.ID, roomIDs, peers)
	online = append(online, a.ref())
	slices.SortFunc(online, func(x, y userRef) int { return strings.Compare(x.Username, y.Username) })
	counts := s.hub.OnlineCounts(roomIDs)
	reads, err := s.store.RoomReadStates(user.ID, roomIDs)
	if err != nil {
		return err
	}
	infos := make([]roomInfo, len(rooms))
	for i, r := range rooms {
		infos[i] = toRoomInfo(r, counts[r.ID])
		st := reads[r.ID]
		infos[i].Role, infos[i].Unread, infos[i].Mentions = roomRole(r, user.ID), &st.Unread, &st.Mentions
		if st.LastRead > 0 {
			infos[i].LastRead = formatMessageID(st.LastRead)
		}
	}
	unreadInfos := []unreadInfo{}
	directInfos := make([]directInfo, len(directs))
	for i, d := range directs {
		peer := strconv.FormatUint(d.PeerID, 10)
		directInfos[i] = directInfo{UserID: peer, Username: d.PeerName, Unread: d.Unread,
			LastMessageAt: formatTime(d.LastMessageAt), Online: s.hub.Online(d.PeerID)}
		if d.LastRead > 0 {
			directInfos[i].LastRead = formatMessageID(d.LastRead)
		}
		if d.Unread > 0 {
			unreadInfos = append(unreadInfos, unreadInfo{UserID: peer, Username: d.PeerName,
				Count: d.Unread, LastMessageAt: formatTime(d.LastMessageAt)})
		}
	}
	// Signed in only now, after every read that can fail: an error above
	// leaves the connection as it was, free to try auth again.
	c.tokenHash = tokHash
	c.user.Store(&a)
	hi := authenticatedData{
		ClientID: c.id, UserID: a.idString(), Username: a.Name, Token: token, ExpiresAt: formatTime(expires),
		Created: created, IsAdmin: user.Admin, OnlineUsers: online, Rooms: infos, Unread: unreadInfos, Directs: directInfos,
	}
	if s.cfg.Uploads.Enabled {
		hi.MaxUploadBytes = s.cfg.Uploads.MaxBytes
	}
	hello := marshalFrame("authenticated", hi)
	if first := s.hub.Attach(c, roomIDs, hello); first {
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
	url, name, expires, err := s.admin.resetLinkAt(s.linkBase(c), d.Username)
	var ae *adminError
	if errors.As(err, &ae) {
		return errorf(codeUserNotFound, "User not found")
	} else if err != nil {
		return err
	}
	s.log.Info("reset link issued", "admin", me.Name, "user", name)
	c.send(marshalFrame("resetLink", resetLinkData{Username: name, URL: url, ExpiresAt: formatTime(expires)}))
	return nil
}

// linkBase is where links handed to a connection should point: the
// configured public URL, or else the origin the connection's page was
// loaded from (checked at the upgrade), or else its Host header.
func (s *server) linkBase(c *client) string {
	if s.cfg.Server.PublicURL != "" {
		return s.cfg.Server.PublicURL
	}
	r := c.sess.Request
	if origin := r.Header.Get("Origin"); strings.HasPrefix(origin, "http://") || strings.HasPrefix(origin, "https://") {
		return origin
	}
	if r.Host != "" {
		if s.tls != nil {
			return "https://" + r.Host
		}
		return "http://" + r.Host
	}
	return publicURL(s.cfg)
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
// signIn checks a username and password, or registers the name. create
// nil registers an unknown name when registration is open; true only
// registers (username_taken for a name in use); false never registers.
func (s *server) signIn(ctx context.Context, c *client, username, password string, create *bool) (User, bool, error) {
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
	case create != nil && *create && err == nil:
		return User{}, false, errorf(codeUsernameTaken, "The username %s is taken; choose another, or sign in", u.Name)
	case create != nil && *create && errors.Is(err, ErrNotFound) && s.cfg.Auth.Registration != "open":
		return User{}, false, errorf(codeRegistrationClosed, "This server does not accept new sign-ups")
	case errors.Is(err, ErrNotFound) && s.cfg.Auth.Registration == "open" && (create == nil || *create):
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
		if errors.Is(err, ErrUsernameTaken) && create != nil {
			return User{}, false, errorf(codeUsernameTaken, "The username %s is taken; choose another, or sign in", username)
		} else if errors.Is(err, ErrUsernameTaken) {
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
	if u.Suspended {
		return User{}, false, errorf(codeBanned, "This account is suspended")
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
