// Package store keeps parley's state in one bbolt file: users, sign-in
// tokens, rooms, memberships, messages, read markers and uploads. It
// changes the file only by applying Commands in log order (apply.go,
// log.go), and answers reads (the query_*.go files). It knows nothing of
// connections or the network.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout of the buckets below. Bump it with a
// migration in migrate.go when the layout changes; a database with a
// higher version is refused rather than misread.
const SchemaVersion = 5

// appName marks a bbolt file as ours, so parley never writes into some
// other program's database.
const appName = "parley"

// Bucket layout. Ids are 8-byte big-endian so cursor order is id order.
//
//	meta                          app, schema
//	users        userID        -> userRecord (JSON)
//	usernames    lower(name)   -> userID
//	tokens       sha256(token) -> tokenRecord (JSON)
//	userTokens   userID/sha256(token) -> nil      (nested bucket per user; since v2)
//	resets       sha256(token) -> tokenRecord     (one-time reset links; since v2)
//	roomReads    userID/roomID -> last read seq   (nested bucket per user; since v3)
//	files, fileData, usage                        (uploads; see store_files.go; since v3)
//	rooms        roomID        -> roomRecord (JSON)
//	members      roomID/userID -> username        (nested bucket per room)
//	userRooms    userID/roomID -> joinedAt        (nested bucket per user)
//	messages     convKey/seq   -> messageRecord   (nested bucket per conversation)
//	dmPeers      userID/peerID -> last read seq   (nested bucket per user)
//	invitedRooms userID/roomID -> inviter's userID (memberships others made; since v4)
//	guests       userID        -> nil             (guests signed in now; since v5)
//	inviteLinks  sha256(token) -> inviteRecord    (since v5)
//	hooks        sha256(token) -> hookRecord      (incoming webhooks; since v5)
//	botTokens    sha256(token) -> userID          (bots' API tokens; since v5)
//	pushSubs     userID/sha256(endpoint) -> pushRecord (nested bucket per user; since v5)
//	notifyPrefs  userID/roomID -> level           (nested bucket per user; since v5)
var (
	bucketMeta       = []byte("meta")
	bucketUsers      = []byte("users")
	bucketUsernames  = []byte("usernames")
	bucketTokens     = []byte("tokens")
	bucketRooms      = []byte("rooms")
	bucketMembers    = []byte("members")
	bucketUserRooms  = []byte("userRooms")
	bucketMessages   = []byte("messages")
	bucketDMPeers    = []byte("dmPeers")
	bucketUserTokens = []byte("userTokens")
	bucketResets     = []byte("resets")
	bucketRoomReads  = []byte("roomReads")
	bucketFiles      = []byte("files")
	bucketFileData   = []byte("fileData")
	bucketUsage      = []byte("usage")
	bucketInvited    = []byte("invitedRooms")
	bucketGuests     = []byte("guests")
	bucketInvites    = []byte("inviteLinks")
	bucketHooks      = []byte("hooks")
	bucketBotTokens  = []byte("botTokens")
	bucketPushSubs   = []byte("pushSubs")
	bucketNotify     = []byte("notifyPrefs")

	allBuckets = [][]byte{bucketMeta, bucketUsers, bucketUsernames, bucketTokens, bucketRooms,
		bucketMembers, bucketUserRooms, bucketMessages, bucketDMPeers, bucketUserTokens, bucketResets,
		bucketRoomReads, bucketFiles, bucketFileData, bucketUsage, bucketInvited,
		bucketGuests, bucketInvites, bucketHooks, bucketBotTokens, bucketPushSubs, bucketNotify}

	keyApp    = []byte("app")
	keySchema = []byte("schema")
	// keyFirstAccount is set once the first account (not a guest or a
	// bot) exists: that one became the admin (since v5).
	keyFirstAccount = []byte("firstAccount")
	// keyRegistration is auth.registration's default for this database:
	// "invite" for one created by a parley that had invite links, "open"
	// for one created before, whose default was open (since v5).
	keyRegistration = []byte("registrationDefault")
	// keyVAPID holds the server's Web Push key pair (since v5).
	keyVAPID = []byte("vapid")
)

// keyApplied in the meta bucket is the log position of the last command
// applied, written in the same transaction as the command.
var keyApplied = []byte("applied")

// Options are the store's settings.
type Options struct {
	// LockTimeout bounds the wait for the file lock that a running
	// server holds; a second instance fails after it.
	LockTimeout time.Duration
	Logger      *slog.Logger
}

// Store is one open bbolt file. Every exported read runs in its own read
// transaction; writes happen only in apply, through a Log. No bbolt type
// leaves this package.
type Store struct {
	db  *bolt.DB
	log *slog.Logger

	badMu sync.Mutex          // guards bad
	bad   map[string]struct{} // damaged message records already logged
}

// Open opens (or creates) the database at path. A file that is empty,
// truncated, corrupted, not a bbolt database, or a bbolt database of some
// other program is refused with an error and left untouched.
func Open(path string, opts Options) (_ *Store, err error) {
	// Reading a corrupted file can fault inside bbolt's mmap or make it
	// panic; either becomes an error instead of a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("open store %s: %w: the database is corrupted (%v); restore it from a backup", path, ErrNotParleyDB, r)
		}
	}()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("open store %s: the file is empty, so it is not a parley database; move it away to start a new one", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// A generous initial mapping means the file rarely needs remapping as
	// it grows; a remap waits for open read transactions (a running
	// backup, say). It reserves address space, not memory.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, InitialMmapSize: 256 << 20})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s: %w (is parley already running?)", path, ErrDatabaseInUse)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open store %s: %w: the file is not a valid bbolt database (%v)", path, ErrNotParleyDB, err)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, log: opts.Logger.With("component", "store"), bad: map[string]struct{}{}}
	if err := verifyStructure(db, path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.init(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// verifyStructure refuses a file shorter than its own page count says
// (truncated) or whose pages do not link up (corrupted), rather than
// serving it until it crashes the server. It reads every page, which takes
// a fraction of a second for hundreds of MiB once they are in the page
// cache.
func verifyStructure(db *bolt.DB, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	corrupted := func(why any) error {
		return fmt.Errorf("%w: the database is corrupted (%v); restore it from a backup", ErrNotParleyDB, why)
	}
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: the database is truncated (%d bytes, want at least %d); restore it from a backup",
				ErrNotParleyDB, fi.Size(), tx.Size())
		}
		// Touch every page here first, where a fault is recovered;
		// bbolt's Check reads them again on a goroutine of its own.
		if err := walkAll(tx); err != nil {
			return corrupted(err)
		}
		// Drain every report: Check's goroutine uses tx until it is done.
		var first error
		for cerr := range tx.Check() {
			if first == nil {
				first = corrupted(cerr)
			}
		}
		return first
	})
}

// CheckFile opens a file read-only and checks that it is a sound parley
// database this version can use (a backup, say). It never writes.
func CheckFile(path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the database is corrupted (%v)", ErrNotParleyDB, r)
		}
	}()
	if fi, err := os.Stat(path); err != nil {
		return err
	} else if fi.Size() == 0 {
		return fmt.Errorf("%w: the file is empty", ErrNotParleyDB)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotParleyDB, err)
	}
	defer db.Close()
	return checkOpenDatabase(db, path)
}

// checkOpenDatabase is CheckFile for a file this process holds open:
// sound pages, parley's, at a schema it understands.
func checkOpenDatabase(db *bolt.DB, path string) error {
	if err := verifyStructure(db, path); err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || string(meta.Get(keyApp)) != appName {
			return fmt.Errorf("%w: it is some other program's bbolt file", ErrNotParleyDB)
		}
		v, err := strconv.Atoi(string(meta.Get(keySchema)))
		if err != nil || v < 1 {
			return fmt.Errorf("%w: unreadable schema version %q", ErrNotParleyDB, meta.Get(keySchema))
		}
		if v > SchemaVersion {
			return fmt.Errorf("database schema version %d is newer than this parley understands (%d)", v, SchemaVersion)
		}
		return nil
	})
}

// LockFile takes the lock a server holds on its database file (an
// exclusive flock, as bbolt takes it) and returns its release. It fails
// with ErrDatabaseInUse while a server runs, and works on a damaged file
// too, so a bad database can be replaced from a backup.
func LockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("database %s: %w", path, ErrDatabaseInUse)
		}
		return nil, fmt.Errorf("lock database %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// walkAll reads every key and value of every bucket.
func walkAll(tx *bolt.Tx) error {
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if child := b.Bucket(k); child != nil {
					return walk(child)
				}
			}
			return nil
		})
	}
	return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
}

// init checks that the file is ours and at a version we understand,
// creates the buckets of a new database, and migrates an older one.
func (s *Store) init(path string) error {
	var (
		version int
		fresh   bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("%w: it holds buckets of another program", ErrNotParleyDB)
			}
			fresh = true
			return nil
		}
		if string(meta.Get(keyApp)) != appName {
			return fmt.Errorf("%w: its meta bucket does not name parley", ErrNotParleyDB)
		}
		var err error
		if version, err = strconv.Atoi(string(meta.Get(keySchema))); err != nil {
			return fmt.Errorf("%w: unreadable schema version %q", ErrNotParleyDB, meta.Get(keySchema))
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case fresh:
		return s.db.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			meta := tx.Bucket(bucketMeta)
			if err := meta.Put(keyApp, []byte(appName)); err != nil {
				return err
			}
			if err := meta.Put(keyRegistration, []byte("invite")); err != nil {
				return err
			}
			return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
		})
	case version > SchemaVersion:
		return fmt.Errorf("database schema version %d is newer than this parley understands (%d); run a newer parley", version, SchemaVersion)
	case version < 1:
		return fmt.Errorf("%w: schema version %d", ErrNotParleyDB, version)
	case version < SchemaVersion:
		if err := s.migrate(path, version); err != nil {
			return err
		}
	}
	return s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %s is missing", ErrNotParleyDB, name)
			}
		}
		return nil
	})
}

// Close closes the database. Close the Log that applies to it first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ping reports whether the store can serve a read.
func (s *Store) Ping() error {
	return s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return ErrNotParleyDB
		}
		return nil
	})
}

// Backup writes a consistent snapshot of the whole database to w, taken
// in one read transaction while writes go on, and returns its size.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Snapshot is Backup that also says at which log position the copy
// stands: the copy holds exactly the commands up to it.
func (s *Store) Snapshot(w io.Writer) (seq uint64, n int64, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		seq = appliedSeq(tx)
		n, err = tx.WriteTo(w)
		return err
	})
	return seq, n, err
}

// Size is the database's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// AppliedSeq is the log position of the last command applied.
func (s *Store) AppliedSeq() uint64 {
	var n uint64
	_ = s.view(func(tx *bolt.Tx) error { n = appliedSeq(tx); return nil })
	return n
}

func appliedSeq(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyApplied); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrStoreClosed
	}
	return err
}

// --- encoding helpers ---

func u64key(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// keyCluster in the meta bucket names the cluster whose log this
// database applies; absent on a single server's database.
var keyCluster = []byte("cluster")

// Cluster says which cluster's log the database applies ("" for none),
// and whether it holds anything at all.
func (s *Store) Cluster() (id string, empty bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(keyCluster))
		empty = tx.Bucket(bucketUsers).Sequence() == 0 && tx.Bucket(bucketRooms).Stats().KeyN == 0
		return nil
	})
	return id, empty, err
}

// JoinCluster marks the database as applying the log of cluster id from
// position seq on. A single server's database that becomes a cluster's
// first state is marked at position 0: the cluster's log starts after it.
func (s *Store) JoinCluster(id string, seq uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyCluster, []byte(id)); err != nil {
			return err
		}
		return meta.Put(keyApplied, u64key(seq))
	})
	if err != nil {
		return fmt.Errorf("mark the database as cluster %s's: %w", id, err)
	}
	return nil
}
