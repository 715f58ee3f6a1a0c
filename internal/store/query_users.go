package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

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

// tokenUser returns the account a token hash signs in and when the token
// expires. Unknown and expired tokens, and tokens of deleted or
// suspended accounts, are ErrNotFound.
func tokenUser(tx *bolt.Tx, hash []byte, now time.Time) (User, time.Time, error) {
	v := tx.Bucket(bucketTokens).Get(hash)
	if v == nil {
		if u, ok := botTokenUser(tx, hash); ok && !u.Deleted && !u.Suspended {
			return u, botTokenExpiry, nil
		}
		return User{}, time.Time{}, ErrNotFound
	}
	var rec tokenRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return User{}, time.Time{}, fmt.Errorf("decode token: %w", err)
	}
	if !now.Before(rec.ExpiresAt) {
		return User{}, time.Time{}, ErrNotFound
	}
	u, err := getUser(tx, rec.UserID)
	if err == nil && (u.Deleted || u.Suspended) {
		err = ErrNotFound
	}
	return u, rec.ExpiresAt, err
}

// TokenUser is tokenUser in a transaction of its own.
func (s *Store) TokenUser(hash []byte, now time.Time) (User, time.Time, error) {
	var (
		u   User
		exp time.Time
	)
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		u, exp, err = tokenUser(tx, hash, now)
		return err
	})
	return u, exp, err
}
