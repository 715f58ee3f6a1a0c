package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Reads for guests, invite links, bots, webhooks, push and the people
// directory.

// RegistrationDefault is what auth.registration means when it is not
// set: "invite" for a database created by this version, "open" for one
// created before invite links existed, so an upgrade changes nothing.
func (s *Store) RegistrationDefault() string {
	out := "invite"
	_ = s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyRegistration); v != nil {
			out = string(v)
		}
		return nil
	})
	return out
}

// HasAccounts reports whether an account (not a guest or a bot) was ever
// registered: after that, auth.registration invite needs a link.
func (s *Store) HasAccounts() bool {
	has := false
	_ = s.view(func(tx *bolt.Tx) error {
		has = tx.Bucket(bucketMeta).Get(keyFirstAccount) != nil
		return nil
	})
	return has
}

// Guests lists the guests signed in now, by id.
func (s *Store) Guests() ([]uint64, error) {
	var out []uint64
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGuests).ForEach(func(k, _ []byte) error {
			out = append(out, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	return out, err
}

// InviteLinks lists the invite links not yet used up, oldest first; by
// one creator, or everyone's when createdBy is 0.
func (s *Store) InviteLinks(createdBy uint64) ([]InviteLink, error) {
	var out []InviteLink
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvites).ForEach(func(k, v []byte) error {
			var rec inviteRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode invite link: %w", err)
			}
			if createdBy == 0 || rec.CreatedBy == createdBy {
				out = append(out, rec.link(k))
			}
			return nil
		})
	})
	sortByTime(out, func(l InviteLink) time.Time { return l.CreatedAt })
	return out, err
}

// Hooks lists a room's webhooks, or every room's when roomID is empty,
// oldest first.
func (s *Store) Hooks(roomID string) ([]Hook, error) {
	var out []Hook
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHooks).ForEach(func(k, v []byte) error {
			var rec hookRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode hook: %w", err)
			}
			if roomID == "" || rec.RoomID == roomID {
				out = append(out, rec.hook(k))
			}
			return nil
		})
	})
	sortByTime(out, func(h Hook) time.Time { return h.CreatedAt })
	return out, err
}

// HookByHash finds a webhook by the hash of its secret.
func (s *Store) HookByHash(hash []byte) (Hook, error) {
	var h Hook
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketHooks).Get(hash)
		if v == nil {
			return ErrNotFound
		}
		var rec hookRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode hook: %w", err)
		}
		h = rec.hook(hash)
		return nil
	})
	return h, err
}

// botTokenUser finds the bot an API token signs in; its tokens do not
// expire, but stop working when the account is removed or suspended.
func botTokenUser(tx *bolt.Tx, hash []byte) (User, bool) {
	v := tx.Bucket(bucketBotTokens).Get(hash)
	if len(v) != 8 {
		return User{}, false
	}
	u, err := getUser(tx, binary.BigEndian.Uint64(v))
	return u, err == nil
}

// botTokenExpiry is what a bot's API token reports as its expiry.
var botTokenExpiry = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// VAPIDKeys returns the server's Web Push key pair; ErrNotFound before
// SetVAPIDKeys.
func (s *Store) VAPIDKeys() (public, private string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyVAPID)
		if v == nil {
			return ErrNotFound
		}
		var rec vapidRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode VAPID keys: %w", err)
		}
		public, private = rec.Public, rec.Private
		return nil
	})
	return public, private, err
}

// PushTarget is what sending a push to one user takes: their devices,
// whether each device's token still works, and their level for a room.
type PushTarget struct {
	User   User
	Subs   []PushSubscription
	Stale  []PushSubscription // their device signed out: to remove
	Level  string             // for the room asked about; "" for a direct message
	Member bool               // of that room
}

// PushTargets reads, in one transaction, what pushing a message of roomID
// ("" for a direct message) to each of users takes, as of now. With no
// users, it reads every user who has a subscription (the members of
// roomID among them are the ones who may hear of its message); the cost
// grows with the people who turned notifications on, not the room.
func (s *Store) PushTargets(roomID string, users []uint64, now time.Time) ([]PushTarget, error) {
	var out []PushTarget
	err := s.view(func(tx *bolt.Tx) error {
		if users == nil {
			_ = tx.Bucket(bucketPushSubs).ForEachBucket(func(k []byte) error {
				if id := binary.BigEndian.Uint64(k); roomID == "" || isMemberTx(tx, roomID, id) {
					users = append(users, id)
				}
				return nil
			})
		}
		for _, id := range users {
			u, err := getUser(tx, id)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			t := PushTarget{User: u, Level: NotifyMentions}
			mine := tx.Bucket(bucketPushSubs).Bucket(u64key(id))
			if mine == nil || u.Deleted || u.Suspended {
				continue
			}
			_ = mine.ForEach(func(_, v []byte) error {
				var rec pushRecord
				if json.Unmarshal(v, &rec) != nil {
					return nil
				}
				sub := rec.subscription(id)
				if tu, _, err := tokenUser(tx, rec.TokenHash, now); err != nil || tu.ID != id {
					t.Stale = append(t.Stale, sub)
				} else {
					t.Subs = append(t.Subs, sub)
				}
				return nil
			})
			if roomID != "" {
				t.Member = isMemberTx(tx, roomID, id)
				if prefs := tx.Bucket(bucketNotify).Bucket(u64key(id)); prefs != nil {
					if v := prefs.Get([]byte(roomID)); v != nil {
						t.Level = string(v)
					}
				}
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// notifyLevels returns a user's levels for the rooms that do not have
// the default ("mentions").
func notifyLevels(tx *bolt.Tx, userID uint64) map[string]string {
	out := map[string]string{}
	if prefs := tx.Bucket(bucketNotify).Bucket(u64key(userID)); prefs != nil {
		_ = prefs.ForEach(func(k, v []byte) error { out[string(k)] = string(v); return nil })
	}
	return out
}

// People finds accounts whose name contains query (ignoring case), in
// name order after the name after, up to limit: people who can be
// written to. Removed and suspended accounts are left out. It reads at
// most scanLimit names.
func (s *Store) People(query, after string, limit int) (people []User, more bool, err error) {
	const scanLimit = 20000
	query, after = strings.ToLower(query), strings.ToLower(after)
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsernames).Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && bytes.Equal(k, []byte(after)) {
				k, v = c.Next()
			}
		}
		for n := 0; k != nil && n < scanLimit; k, v = c.Next() {
			n++
			if !strings.Contains(string(k), query) || len(v) != 8 {
				continue
			}
			u, err := getUser(tx, binary.BigEndian.Uint64(v))
			if err != nil || u.Deleted || u.Suspended {
				continue
			}
			if len(people) == limit {
				more = true
				return nil
			}
			u.PasswordHash = ""
			people = append(people, u)
		}
		return nil
	})
	return people, more, err
}

// Kinds tells which of the given users are admins, guests and bots.
type Kinds struct {
	Admins, Guests, Bots map[uint64]bool
}

func kindsAmong(tx *bolt.Tx, ids []uint64) (Kinds, error) {
	k := Kinds{Admins: map[uint64]bool{}, Guests: map[uint64]bool{}, Bots: map[uint64]bool{}}
	users := tx.Bucket(bucketUsers)
	for _, id := range ids {
		v := users.Get(u64key(id))
		if v == nil {
			continue
		}
		var rec struct {
			Admin bool `json:"admin"`
			Guest bool `json:"guest"`
			Bot   bool `json:"bot"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return k, fmt.Errorf("decode user %d: %w", id, err)
		}
		if rec.Admin {
			k.Admins[id] = true
		}
		if rec.Guest {
			k.Guests[id] = true
		}
		if rec.Bot {
			k.Bots[id] = true
		}
	}
	return k, nil
}

// UserKinds is kindsAmong in a transaction of its own.
func (s *Store) UserKinds(ids []uint64) (Kinds, error) {
	var k Kinds
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		k, err = kindsAmong(tx, ids)
		return err
	})
	return k, err
}

func sortByTime[T any](xs []T, at func(T) time.Time) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && at(xs[j]).Before(at(xs[j-1])); j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}
