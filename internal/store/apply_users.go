package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Accounts, sign-in tokens and reset links.

type userRecord struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"passwordHash"`
	CreatedAt    time.Time `json:"createdAt"`
	Admin        bool      `json:"admin,omitempty"`
	// Deleted accounts keep their name, so nobody can register it and
	// pass as the author of the old messages.
	Deleted bool `json:"deleted,omitempty"`
	// Suspended accounts (banned server-wide) cannot sign in.
	Suspended bool `json:"suspended,omitempty"`
	Guest     bool `json:"guest,omitempty"`
	Bot       bool `json:"bot,omitempty"`
}

func (r userRecord) user(id uint64) User {
	return User{ID: id, Name: r.Name, PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt, Admin: r.Admin,
		Deleted: r.Deleted, Suspended: r.Suspended, Guest: r.Guest, Bot: r.Bot}
}

func getUser(tx *bolt.Tx, id uint64) (User, error) {
	var rec userRecord
	v := tx.Bucket(bucketUsers).Get(u64key(id))
	if v == nil {
		return User{}, ErrNotFound
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return User{}, fmt.Errorf("decode user %d: %w", id, err)
	}
	return rec.user(id), nil
}

func userByName(tx *bolt.Tx, name string) (User, error) {
	id := tx.Bucket(bucketUsernames).Get([]byte(strings.ToLower(name)))
	if id == nil {
		return User{}, ErrNotFound
	}
	return getUser(tx, binary.BigEndian.Uint64(id))
}

// updateUser rewrites a user's record through fn.
func updateUser(tx *bolt.Tx, id uint64, fn func(*userRecord)) error {
	users := tx.Bucket(bucketUsers)
	v := users.Get(u64key(id))
	if v == nil {
		return ErrNotFound
	}
	var rec userRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return fmt.Errorf("decode user %d: %w", id, err)
	}
	fn(&rec)
	return putJSON(users, u64key(id), rec)
}

type tokenRecord struct {
	UserID    uint64    `json:"userId"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// putToken stores a token and indexes it under its user, so a user's
// tokens can be revoked without scanning everyone's.
func putToken(tx *bolt.Tx, hash []byte, rec tokenRecord) error {
	if err := putJSON(tx.Bucket(bucketTokens), hash, rec); err != nil {
		return err
	}
	mine, err := tx.Bucket(bucketUserTokens).CreateBucketIfNotExists(u64key(rec.UserID))
	if err != nil {
		return err
	}
	return mine.Put(hash, nil)
}

// deleteToken removes a token and its index entry.
func deleteToken(tx *bolt.Tx, hash []byte) error {
	tokens := tx.Bucket(bucketTokens)
	v := tokens.Get(hash)
	if v == nil {
		return nil
	}
	var rec tokenRecord
	if json.Unmarshal(v, &rec) == nil {
		if mine := tx.Bucket(bucketUserTokens).Bucket(u64key(rec.UserID)); mine != nil {
			if err := mine.Delete(hash); err != nil {
				return err
			}
		}
	}
	return tokens.Delete(hash)
}

func revokeUserTokens(tx *bolt.Tx, userID uint64) error {
	mine := tx.Bucket(bucketUserTokens).Bucket(u64key(userID))
	if mine == nil {
		return nil
	}
	tokens := tx.Bucket(bucketTokens)
	if err := mine.ForEach(func(k, _ []byte) error { return tokens.Delete(k) }); err != nil {
		return err
	}
	return tx.Bucket(bucketUserTokens).DeleteBucket(u64key(userID))
}

// revokeResetLinks deletes a user's outstanding reset links, so a link
// handed out before a password change or a ban cannot undo it.
func revokeResetLinks(tx *bolt.Tx, userID uint64) error {
	resets := tx.Bucket(bucketResets)
	var stale [][]byte
	if err := resets.ForEach(func(k, v []byte) error {
		var rec tokenRecord
		if json.Unmarshal(v, &rec) != nil || rec.UserID == userID {
			stale = append(stale, k)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range stale {
		if err := resets.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) grant(userID uint64, t TokenGrant) error {
	if len(t.Hash) == 0 {
		return fmt.Errorf("%w: token without a hash", errBadCommand)
	}
	return putToken(a.tx, t.Hash, tokenRecord{UserID: userID, CreatedAt: a.now, ExpiresAt: t.ExpiresAt.UTC()})
}

func (a *applier) createUser(c CreateUser) (Outcome, error) {
	if c.Name == "" {
		return Outcome{}, fmt.Errorf("%w: no name", errBadCommand)
	}
	names := a.tx.Bucket(bucketUsernames)
	lower := []byte(strings.ToLower(c.Name))
	if names.Get(lower) != nil {
		return Outcome{}, ErrUsernameTaken
	}
	meta := a.tx.Bucket(bucketMeta)
	first := meta.Get(keyFirstAccount) == nil
	var link *inviteRecord
	switch {
	case len(c.Invite) > 0:
		var err error
		if link, err = a.usableInvite(c.Invite); err != nil {
			return Outcome{}, err
		}
	case c.RequireInvite && !first:
		return Outcome{}, ErrInviteRequired
	}
	users := a.tx.Bucket(bucketUsers)
	id, err := users.NextSequence()
	if err != nil {
		return Outcome{}, err
	}
	rec := userRecord{Name: c.Name, PasswordHash: c.PasswordHash, CreatedAt: a.now, Admin: first}
	if err := putJSON(users, u64key(id), rec); err != nil {
		return Outcome{}, err
	}
	if err := names.Put(lower, u64key(id)); err != nil {
		return Outcome{}, err
	}
	if first {
		if err := meta.Put(keyFirstAccount, u64key(id)); err != nil {
			return Outcome{}, err
		}
	}
	if c.Token != nil {
		if err := a.grant(id, *c.Token); err != nil {
			return Outcome{}, err
		}
	}
	out := Outcome{User: rec.user(id)}
	if link != nil {
		if out.Room, err = a.useInvite(c.Invite, link, out.User); err != nil {
			return Outcome{}, err
		}
	}
	return out, nil
}

// signInable reads an account that may sign in.
func (a *applier) signInable(id uint64) (User, error) {
	u, err := a.user(id)
	switch {
	case err != nil:
		return User{}, err
	case u.Deleted:
		return User{}, ErrNotFound
	case u.Suspended:
		return User{}, ErrSuspended
	}
	return u, nil
}

func (a *applier) issueToken(c IssueToken) (Outcome, error) {
	u, err := a.signInable(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if err := a.grant(u.ID, c.Token); err != nil {
		return Outcome{}, err
	}
	return Outcome{User: u}, nil
}

func (a *applier) revokeToken(c RevokeToken) (Outcome, error) {
	v := a.tx.Bucket(bucketTokens).Get(c.Hash)
	if v == nil {
		return Outcome{}, ErrNotFound
	}
	var rec tokenRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return Outcome{}, fmt.Errorf("decode token: %w", err)
	}
	if err := deleteToken(a.tx, c.Hash); err != nil {
		return Outcome{}, err
	}
	// Signing out on a device ends its notifications too.
	if err := dropPushForToken(a.tx, rec.UserID, c.Hash); err != nil {
		return Outcome{}, err
	}
	a.emit(SignedOut{UserID: rec.UserID, TokenHash: c.Hash, Reason: "signed out"})
	u, err := a.user(rec.UserID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Outcome{}, err
	}
	return Outcome{User: u}, nil
}

// changePassword sets a password hash, revokes every token and reset link
// of the user, and stores the replacement token if there is one.
func (a *applier) changePassword(u User, hash string, token *TokenGrant, reason string) error {
	if err := updateUser(a.tx, u.ID, func(r *userRecord) { r.PasswordHash = hash }); err != nil {
		return err
	}
	if err := revokeUserTokens(a.tx, u.ID); err != nil {
		return err
	}
	if err := revokeResetLinks(a.tx, u.ID); err != nil {
		return err
	}
	ev := PasswordChanged{UserID: u.ID, Reason: reason}
	if token != nil {
		if err := a.grant(u.ID, *token); err != nil {
			return err
		}
		ev.NewTokenHash = token.Hash
	}
	a.emit(ev)
	return nil
}

func (a *applier) setPassword(c SetPassword) (Outcome, error) {
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if u.Deleted {
		return Outcome{}, ErrNotFound
	}
	if err := a.changePassword(u, c.PasswordHash, c.Token, c.Reason); err != nil {
		return Outcome{}, err
	}
	return Outcome{User: u}, nil
}

func (a *applier) createResetLink(c CreateResetLink) (Outcome, error) {
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if u.Deleted {
		return Outcome{}, ErrNotFound
	}
	if len(c.Hash) == 0 {
		return Outcome{}, fmt.Errorf("%w: reset link without a hash", errBadCommand)
	}
	rec := tokenRecord{UserID: u.ID, CreatedAt: a.now, ExpiresAt: c.ExpiresAt.UTC()}
	if err := putJSON(a.tx.Bucket(bucketResets), c.Hash, rec); err != nil {
		return Outcome{}, err
	}
	return Outcome{User: u}, nil
}

// redeemResetLink uses up a link. A suspended account's link is refused
// (ErrSuspended) and stays unused: the ban, not the link, decides.
func (a *applier) redeemResetLink(c RedeemResetLink) (Outcome, error) {
	resets := a.tx.Bucket(bucketResets)
	v := resets.Get(c.Hash)
	if v == nil {
		return Outcome{}, ErrNotFound
	}
	var rec tokenRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return Outcome{}, fmt.Errorf("decode reset link: %w", err)
	}
	if !a.now.Before(rec.ExpiresAt) {
		return Outcome{}, ErrNotFound
	}
	u, err := a.signInable(rec.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if err := resets.Delete(c.Hash); err != nil {
		return Outcome{}, err
	}
	if err := a.changePassword(u, c.PasswordHash, &c.Token, "password reset"); err != nil {
		return Outcome{}, err
	}
	return Outcome{User: u}, nil
}

func (a *applier) setAdmin(c SetAdmin) (Outcome, error) {
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if u.Deleted {
		return Outcome{}, ErrNotFound
	}
	if err := updateUser(a.tx, u.ID, func(r *userRecord) { r.Admin = c.Admin }); err != nil {
		return Outcome{}, err
	}
	u.Admin = c.Admin
	return Outcome{User: u}, nil
}

func (a *applier) deleteUser(c DeleteUser) (Outcome, error) {
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if u.Deleted {
		return Outcome{}, ErrNotFound
	}
	rooms, err := userRoomIDs(a.tx, u.ID)
	if err != nil {
		return Outcome{}, err
	}
	if err := updateUser(a.tx, u.ID, func(r *userRecord) { r.PasswordHash, r.Admin, r.Deleted = "", false, true }); err != nil {
		return Outcome{}, err
	}
	if err := revokeUserTokens(a.tx, u.ID); err != nil {
		return Outcome{}, err
	}
	if err := revokeResetLinks(a.tx, u.ID); err != nil {
		return Outcome{}, err
	}
	for _, r := range rooms {
		if _, err := a.removeMember(r, u.ID); err != nil {
			return Outcome{}, err
		}
		a.emit(MemberLeft{RoomID: r, User: ref(u), Reason: "deleted"})
	}
	a.emit(SignedOut{UserID: u.ID, Reason: "account removed"})
	return Outcome{User: u}, nil
}

// suspendUser bans a user server-wide: they are signed out everywhere
// and cannot sign in, use a token or redeem a reset link until unbanned.
func (a *applier) suspendUser(c SuspendUser) (Outcome, error) {
	target, err := a.user(c.TargetID)
	if err != nil {
		return Outcome{}, err
	}
	var actor User
	if c.ActorID != 0 {
		if actor, err = a.user(c.ActorID); err != nil {
			return Outcome{}, err
		}
		switch {
		case !actor.Admin:
			return Outcome{}, &ForbiddenError{Need: RankAdmin}
		case actor.ID == target.ID:
			return Outcome{}, &ForbiddenError{Reason: ActOnSelf}
		case target.Admin:
			return Outcome{}, &ForbiddenError{Reason: AdminTarget}
		}
	}
	if target.Suspended == c.Suspend {
		// Nothing changes; the requester is told as if it did.
		return Outcome{User: target}, nil
	}
	rooms, err := userRoomIDs(a.tx, target.ID)
	if err != nil {
		return Outcome{}, err
	}
	if err := updateUser(a.tx, target.ID, func(r *userRecord) { r.Suspended = c.Suspend }); err != nil {
		return Outcome{}, err
	}
	if c.Suspend {
		if err := revokeUserTokens(a.tx, target.ID); err != nil {
			return Outcome{}, err
		}
		if err := revokeResetLinks(a.tx, target.ID); err != nil {
			return Outcome{}, err
		}
	}
	target.Suspended = c.Suspend
	a.emit(UserSuspended{Target: ref(target), Actor: ref(actor), Suspended: c.Suspend, Reason: c.Reason, Rooms: rooms})
	if c.Suspend {
		a.emit(SignedOut{UserID: target.ID, Reason: "account suspended"})
	}
	return Outcome{User: target}, nil
}

// expire deletes tokens and reset links past their expiry, and uploads
// no message took in time.
func (a *applier) expire() (Outcome, error) {
	n := 0
	var expired [][]byte
	if err := a.tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
		var rec tokenRecord
		if json.Unmarshal(v, &rec) != nil || !a.now.Before(rec.ExpiresAt) {
			expired = append(expired, k)
		}
		return nil
	}); err != nil {
		return Outcome{}, err
	}
	for _, k := range expired {
		if err := deleteToken(a.tx, k); err != nil {
			return Outcome{}, err
		}
	}
	n += len(expired)
	resets := a.tx.Bucket(bucketResets)
	var stale [][]byte
	if err := resets.ForEach(func(k, v []byte) error {
		var rec tokenRecord
		if json.Unmarshal(v, &rec) != nil || !a.now.Before(rec.ExpiresAt) {
			stale = append(stale, k)
		}
		return nil
	}); err != nil {
		return Outcome{}, err
	}
	for _, k := range stale {
		if err := resets.Delete(k); err != nil {
			return Outcome{}, err
		}
	}
	n += len(stale)
	files, err := a.purgeUnattachedFiles()
	if err != nil {
		return Outcome{}, err
	}
	invites, err := a.expireInvites()
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Count: n + files + invites}, nil
}
