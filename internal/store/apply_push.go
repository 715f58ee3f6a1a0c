package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Web Push: the server's key pair, each device's subscription, and what
// of each room a member wants to hear of when away. Sending is not done
// here: it is a side effect of MessagePosted events, outside apply.

type vapidRecord struct {
	Public  string `json:"public"`
	Private string `json:"private"`
}

type pushRecord struct {
	Endpoint  string    `json:"endpoint"`
	P256dh    string    `json:"p256dh"`
	Auth      string    `json:"auth"`
	TokenHash []byte    `json:"tokenHash"`
	CreatedAt time.Time `json:"createdAt"`
}

func (r pushRecord) subscription(user uint64) PushSubscription {
	return PushSubscription{UserID: user, Endpoint: r.Endpoint, P256dh: r.P256dh, Auth: r.Auth, TokenHash: r.TokenHash, CreatedAt: r.CreatedAt}
}

func endpointKey(endpoint string) []byte {
	k := sha256.Sum256([]byte(endpoint))
	return k[:]
}

func (a *applier) setVAPIDKeys(c SetVAPIDKeys) (Outcome, error) {
	if c.Public == "" || c.Private == "" {
		return Outcome{}, fmt.Errorf("%w: empty VAPID keys", errBadCommand)
	}
	meta := a.tx.Bucket(bucketMeta)
	if meta.Get(keyVAPID) != nil {
		return Outcome{}, nil // the first pair stays: subscriptions are bound to it
	}
	if err := putJSON(meta, keyVAPID, vapidRecord(c)); err != nil {
		return Outcome{}, err
	}
	return Outcome{Count: 1}, nil
}

func (a *applier) addPushSubscription(c AddPushSubscription) (Outcome, error) {
	if c.Endpoint == "" || c.P256dh == "" || c.Auth == "" || len(c.TokenHash) == 0 {
		return Outcome{}, fmt.Errorf("%w: incomplete push subscription", errBadCommand)
	}
	u, err := a.signInable(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	mine, err := a.tx.Bucket(bucketPushSubs).CreateBucketIfNotExists(u64key(u.ID))
	if err != nil {
		return Outcome{}, err
	}
	key := endpointKey(c.Endpoint)
	if mine.Get(key) == nil && c.Max > 0 {
		// Past the cap, the oldest subscriptions (devices long gone,
		// likely) make way.
		type held struct {
			key []byte
			at  time.Time
		}
		var all []held
		if err := mine.ForEach(func(k, v []byte) error {
			var rec pushRecord
			_ = json.Unmarshal(v, &rec)
			all = append(all, held{append([]byte(nil), k...), rec.CreatedAt})
			return nil
		}); err != nil {
			return Outcome{}, err
		}
		sortByTime(all, func(h held) time.Time { return h.at })
		for i := 0; len(all)-i >= c.Max; i++ {
			if err := mine.Delete(all[i].key); err != nil {
				return Outcome{}, err
			}
		}
	}
	rec := pushRecord{Endpoint: c.Endpoint, P256dh: c.P256dh, Auth: c.Auth, TokenHash: c.TokenHash, CreatedAt: a.now}
	if err := putJSON(mine, key, rec); err != nil {
		return Outcome{}, err
	}
	return Outcome{User: u}, nil
}

func (a *applier) removePushSubscription(c RemovePushSubscription) (Outcome, error) {
	mine := a.tx.Bucket(bucketPushSubs).Bucket(u64key(c.UserID))
	key := endpointKey(c.Endpoint)
	if mine == nil || mine.Get(key) == nil {
		return Outcome{}, ErrNotFound
	}
	return Outcome{}, mine.Delete(key)
}

// dropPushForToken deletes the subscriptions a device made with the
// token it signs out of.
func dropPushForToken(tx *bolt.Tx, userID uint64, tokenHash []byte) error {
	mine := tx.Bucket(bucketPushSubs).Bucket(u64key(userID))
	if mine == nil {
		return nil
	}
	var stale [][]byte
	if err := mine.ForEach(func(k, v []byte) error {
		var rec pushRecord
		if json.Unmarshal(v, &rec) != nil || bytes.Equal(rec.TokenHash, tokenHash) {
			stale = append(stale, k)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range stale {
		if err := mine.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// dropPushForUser deletes all of a user's subscriptions.
func dropPushForUser(tx *bolt.Tx, userID uint64) error {
	if tx.Bucket(bucketPushSubs).Bucket(u64key(userID)) == nil {
		return nil
	}
	return tx.Bucket(bucketPushSubs).DeleteBucket(u64key(userID))
}

func (a *applier) setNotifyLevel(c SetNotifyLevel) (Outcome, error) {
	switch c.Level {
	case NotifyAll, NotifyMentions, NotifyNothing:
	default:
		return Outcome{}, fmt.Errorf("%w: notify level %q", errBadCommand, c.Level)
	}
	if !isMemberTx(a.tx, c.RoomID, c.UserID) {
		return Outcome{}, ErrNotMember
	}
	mine, err := a.tx.Bucket(bucketNotify).CreateBucketIfNotExists(u64key(c.UserID))
	if err != nil {
		return Outcome{}, err
	}
	if c.Level == NotifyMentions {
		return Outcome{}, mine.Delete([]byte(c.RoomID)) // the default is not stored
	}
	return Outcome{}, mine.Put([]byte(c.RoomID), []byte(c.Level))
}
