package store

import (
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// migrations[i] upgrades a database from schema version i+1 to i+2 inside
// one write transaction. Append to it, never edit an entry that shipped.
var migrations = []func(tx *bolt.Tx) error{
	migrateV1ToV2,
	migrateV2ToV3,
	migrateV3ToV4,
	migrateV4ToV5,
}

// migrate brings a database at version from up to SchemaVersion, one
// version per transaction, after copying it beside itself so an upgrade can
// always be undone by putting the copy back.
func (s *Store) migrate(path string, from int) error {
	backup := fmt.Sprintf("%s.schema-v%d.bak", path, from)
	if err := s.db.View(func(tx *bolt.Tx) error { return tx.CopyFile(backup, 0o600) }); err != nil {
		return fmt.Errorf("back up before migrating: write %s: %w", backup, err)
	}
	s.log.Info("backed up the database before migrating", "backup", backup, "from", from, "to", SchemaVersion)
	for v := from; v < SchemaVersion; v++ {
		err := s.db.Update(func(tx *bolt.Tx) error {
			if err := migrations[v-1](tx); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(v+1)))
		})
		if err != nil {
			return fmt.Errorf("migrate schema v%d to v%d (the database is unchanged at v%d; %s holds the original): %w", v, v+1, v, backup, err)
		}
		s.log.Info("migrated the database", "from", v, "to", v+1)
	}
	return nil
}

// migrateV1ToV2 adds one-time reset links and an index of each user's
// sign-in tokens, built from the tokens already stored.
func migrateV1ToV2(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketUserTokens, bucketResets} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	index := tx.Bucket(bucketUserTokens)
	return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
		var rec tokenRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode token: %w", err)
		}
		mine, err := index.CreateBucketIfNotExists(u64key(rec.UserID))
		if err != nil {
			return err
		}
		return mine.Put(k, nil)
	})
}

// migrateV3ToV4 records which memberships someone else made (an
// invitation), so they do not count against the member's own room limit.
// Memberships from before were all counted; they stay the member's own.
func migrateV3ToV4(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketInvited); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketInvited, err)
	}
	return nil
}

// migrateV2ToV3 adds room read markers and uploaded files.
func migrateV2ToV3(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketRoomReads, bucketFiles, bucketFileData, bucketUsage} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateV4ToV5 adds guests, invite links, webhooks, bots' tokens, push
// subscriptions and notification levels. A database from before keeps
// the registration it had by default, open; and if it has accounts, its
// first one was made the admin already.
func migrateV4ToV5(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketGuests, bucketInvites, bucketHooks, bucketBotTokens, bucketPushSubs, bucketNotify} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyRegistration, []byte("open")); err != nil {
		return err
	}
	if tx.Bucket(bucketUsers).Sequence() > 0 {
		return meta.Put(keyFirstAccount, []byte("1"))
	}
	return nil
}
