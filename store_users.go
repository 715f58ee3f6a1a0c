package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// --- users ---

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
}

func (r userRecord) user(id uint64) User {
	return User{ID: id, Name: r.Name, PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt, Admin: r.Admin,
		Deleted: r.Deleted, Suspended: r.Suspended}
}

// CreateUser adds an account. Names are unique ignoring case. The first
// account of a database is its admin.
func (s *Store) CreateUser(name, passwordHash string, now time.Time) (User, error) {
	var u User
	err := s.update(func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketUsernames)
		lower := []byte(strings.ToLower(name))
		if names.Get(lower) != nil {
			return ErrUsernameTaken
		}
		users := tx.Bucket(bucketUsers)
		id, err := users.NextSequence()
		if err != nil {
			return err
		}
		rec := userRecord{Name: name, PasswordHash: passwordHash, CreatedAt: now.UTC(), Admin: id == 1}
		if err := putJSON(users, u64key(id), rec); err != nil {
			return err
		}
		if err := names.Put(lower, u64key(id)); err != nil {
			return err
		}
		u = rec.user(id)
		return nil
	})
	return u, err
}

// UserByName finds an account by name, ignoring case. Deleted accounts
// are found too; callers check Deleted.
func (s *Store) UserByName(name string) (User, error) {
	var u User
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		u, err = userByName(tx, name)
		return err
	})
	return u, err
}

func userByName(tx *bolt.Tx, name string) (User, error) {
	id := tx.Bucket(bucketUsernames).Get([]byte(strings.ToLower(name)))
	if id == nil {
		return User{}, ErrNotFound
	}
	return getUser(tx, binary.BigEndian.Uint64(id))
}

// UserByID finds an account by id.
func (s *Store) UserByID(id uint64) (User, error) {
	var u User
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		u, err = getUser(tx, id)
		return err
	})
	return u, err
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

// Users lists every account in id order, deleted ones included.
func (s *Store) Users() ([]User, error) {
	var out []User
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var rec userRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode user %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, rec.user(binary.BigEndian.Uint64(k)))
			return nil
		})
	})
	return out, err
}

// SetSuspended bans a user from the whole server, revoking their tokens,
// or lifts the ban.
func (s *Store) SetSuspended(userID uint64, suspended bool) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := updateUser(tx, userID, func(r *userRecord) { r.Suspended = suspended }); err != nil {
			return err
		}
		if suspended {
			return revokeUserTokens(tx, userID)
		}
		return nil
	})
}

// AdminsAmong reports which of the given users are admins, in one
// transaction; unknown ids are not admins.
func (s *Store) AdminsAmong(ids []uint64) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		for _, id := range ids {
			v := users.Get(u64key(id))
			if v == nil {
				continue
			}
			var rec struct {
				Admin bool `json:"admin"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode user %d: %w", id, err)
			}
			if rec.Admin {
				out[id] = true
			}
		}
		return nil
	})
	return out, err
}

// SetAdmin grants or withdraws the admin role.
func (s *Store) SetAdmin(userID uint64, admin bool) error {
	return s.update(func(tx *bolt.Tx) error {
		return updateUser(tx, userID, func(r *userRecord) { r.Admin = admin })
	})
}

// SetPassword replaces a user's password hash and revokes every token of
// the user; when newToken is given it is stored in their place, in the
// same transaction.
func (s *Store) SetPassword(userID uint64, passwordHash string, newToken []byte, now, expires time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := updateUser(tx, userID, func(r *userRecord) { r.PasswordHash = passwordHash }); err != nil {
			return err
		}
		if err := revokeUserTokens(tx, userID); err != nil {
			return err
		}
		if newToken == nil {
			return nil
		}
		return putToken(tx, newToken, tokenRecord{UserID: userID, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()})
	})
}

// DeleteUser closes an account: its password, tokens, memberships and
// admin role go; its name and its messages stay.
func (s *Store) DeleteUser(userID uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := updateUser(tx, userID, func(r *userRecord) {
			r.PasswordHash, r.Admin, r.Deleted = "", false, true
		}); err != nil {
			return err
		}
		if err := revokeUserTokens(tx, userID); err != nil {
			return err
		}
		uid := u64key(userID)
		mine := tx.Bucket(bucketUserRooms).Bucket(uid)
		if mine == nil {
			return nil
		}
		var rooms [][]byte
		if err := mine.ForEach(func(k, _ []byte) error { rooms = append(rooms, k); return nil }); err != nil {
			return err
		}
		for _, r := range rooms {
			if _, err := leaveRoomTx(tx, string(r), userID); err != nil {
				return err
			}
		}
		return nil
	})
}

// --- sign-in tokens ---

type tokenRecord struct {
	UserID    uint64    `json:"userId"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// CreateToken stores a sign-in token by its hash; the token itself is
// never stored.
func (s *Store) CreateToken(hash []byte, userID uint64, now, expires time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		return putToken(tx, hash, tokenRecord{UserID: userID, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()})
	})
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

// TokenUser returns the account a token hash signs in and when the token
// expires. Unknown and expired tokens, and tokens of deleted accounts, are
// ErrNotFound.
func (s *Store) TokenUser(hash []byte, now time.Time) (User, time.Time, error) {
	var (
		u   User
		rec tokenRecord
	)
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(hash)
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode token: %w", err)
		}
		if !now.Before(rec.ExpiresAt) {
			return ErrNotFound
		}
		var err error
		if u, err = getUser(tx, rec.UserID); err == nil && (u.Deleted || u.Suspended) {
			err = ErrNotFound
		}
		return err
	})
	return u, rec.ExpiresAt, err
}

// DeleteToken revokes one token. Revoking an unknown token is not an error.
func (s *Store) DeleteToken(hash []byte) error {
	return s.update(func(tx *bolt.Tx) error { return deleteToken(tx, hash) })
}

// PurgeExpiredTokens deletes tokens and reset links that expired before
// now and returns how many it deleted.
func (s *Store) PurgeExpiredTokens(now time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		var expired [][]byte
		if err := tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var rec tokenRecord
			if json.Unmarshal(v, &rec) != nil || !now.Before(rec.ExpiresAt) {
				expired = append(expired, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range expired {
			if err := deleteToken(tx, k); err != nil {
				return err
			}
		}
		n = len(expired)
		resets := tx.Bucket(bucketResets)
		var stale [][]byte
		if err := resets.ForEach(func(k, v []byte) error {
			var rec tokenRecord
			if json.Unmarshal(v, &rec) != nil || !now.Before(rec.ExpiresAt) {
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
		n += len(stale)
		return nil
	})
	return n, err
}

// --- one-time reset links ---

// CreateResetToken stores a one-time sign-in / password-reset token for a
// user by its hash. Issuing a new one does not revoke older ones; each
// expires on its own.
func (s *Store) CreateResetToken(hash []byte, userID uint64, now, expires time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		u, err := getUser(tx, userID)
		if err != nil {
			return err
		}
		if u.Deleted {
			return ErrNotFound
		}
		return putJSON(tx.Bucket(bucketResets), hash, tokenRecord{UserID: userID, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()})
	})
}

// RedeemResetToken uses up a reset token: in one transaction it checks the
// token, deletes it, sets the user's new password hash, revokes the user's
// sign-in tokens, and stores newToken. Unknown, used and expired reset
// tokens are ErrNotFound.
func (s *Store) RedeemResetToken(hash []byte, passwordHash string, newToken []byte, now, expires time.Time) (User, error) {
	var u User
	err := s.update(func(tx *bolt.Tx) error {
		resets := tx.Bucket(bucketResets)
		v := resets.Get(hash)
		if v == nil {
			return ErrNotFound
		}
		var rec tokenRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode reset token: %w", err)
		}
		if !now.Before(rec.ExpiresAt) {
			return ErrNotFound
		}
		if err := resets.Delete(hash); err != nil {
			return err
		}
		var err error
		if u, err = getUser(tx, rec.UserID); err != nil {
			return err
		}
		if u.Deleted {
			return ErrNotFound
		}
		if err := updateUser(tx, u.ID, func(r *userRecord) { r.PasswordHash = passwordHash }); err != nil {
			return err
		}
		if err := revokeUserTokens(tx, u.ID); err != nil {
			return err
		}
		return putToken(tx, newToken, tokenRecord{UserID: u.ID, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()})
	})
	return u, err
}
