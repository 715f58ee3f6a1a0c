package main

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
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// schemaVersion is the layout of the buckets below. Bump it with a
// migration in store_migrate.go when the layout changes; a database with a
// higher version is refused rather than misread.
const schemaVersion = 3

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

	allBuckets = [][]byte{bucketMeta, bucketUsers, bucketUsernames, bucketTokens, bucketRooms,
		bucketMembers, bucketUserRooms, bucketMessages, bucketDMPeers, bucketUserTokens, bucketResets,
		bucketRoomReads, bucketFiles, bucketFileData, bucketUsage}

	keyApp    = []byte("app")
	keySchema = []byte("schema")
)

// Errors the store's callers act on. Anything else is an I/O failure
// and wraps ErrUnavailable.
var (
	ErrNotFound      = errors.New("not found")
	ErrUsernameTaken = errors.New("username taken")
	ErrStoreClosed   = errors.New("store closed")
	ErrUnavailable   = errors.New("store unavailable")
	ErrDatabaseInUse = errors.New("database is in use by another process")
	ErrNotParleyDB   = errors.New("not a parley database")

	ErrTooManyRooms     = errors.New("user is in too many rooms")
	ErrCreateNotAllowed = errors.New("room does not exist and may not be created now")
	ErrBanned           = errors.New("user is banned from the room")
	ErrPrivateRoom      = errors.New("room is private")
	ErrNotAllowed       = errors.New("not allowed")
	ErrNotMember        = errors.New("sender is not a member of the room")
)

// MutedError refuses a message from a member muted in its room: until the
// zero time means until a moderator unmutes them.
type MutedError struct{ Until time.Time }

func (e *MutedError) Error() string { return "sender is muted in the room" }

// User is an account. PasswordHash is an encoded argon2id hash.
type User struct {
	ID           uint64
	Name         string
	PasswordHash string
	CreatedAt    time.Time
	Admin        bool
	Deleted      bool
	Suspended    bool
}

// Room is a room's metadata.
type Room struct {
	ID            string
	CreatedAt     time.Time
	CreatedBy     uint64 // the owner
	LastMessageAt time.Time
	MemberCount   int
	Private       bool // invite-only and unlisted
	Topic         string
	Moderators    []uint64
	Bans          map[uint64]RoomBan
	Mutes         map[uint64]time.Time // the zero time: until unmuted
}

// RoomBan records who banned a user from a room, and why.
type RoomBan struct {
	By     uint64    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// IsModerator reports whether a user is one of the room's moderators.
func (r Room) IsModerator(userID uint64) bool { return slices.Contains(r.Moderators, userID) }

// MuteAt reports whether a user is muted in the room at now, and until
// when: the zero time means until a moderator unmutes them.
func (r Room) MuteAt(userID uint64, now time.Time) (until time.Time, muted bool) {
	return muteAt(r.Mutes, userID, now)
}

func muteAt(mutes map[uint64]time.Time, userID uint64, now time.Time) (time.Time, bool) {
	until, ok := mutes[userID]
	return until, ok && (until.IsZero() || now.Before(until))
}

// Member is one member of a room.
type Member struct {
	UserID uint64
	Name   string
}

// DirectConversation summarises a user's direct conversation with a peer.
type DirectConversation struct {
	PeerID        uint64
	PeerName      string
	Unread        int // the peer's messages after the user's read marker
	LastRead      uint64
	LastMessageAt time.Time
}

// JoinLimits bound what one JoinRoom may add.
type JoinLimits struct {
	MaxRooms int  // rooms a user may belong to; 0 is no limit
	NoCreate bool // the room must already exist
	// Invited lets the user into a private room and past nothing else.
	Invited bool
	// Private and Topic apply when the join creates the room.
	Private bool
	Topic   string
}

// JoinResult says what JoinRoom changed.
type JoinResult struct {
	Room      Room
	Created   bool // the room did not exist before
	NewMember bool // the user was not a member before
}

// StoreOptions are the store's settings.
type StoreOptions struct {
	// LockTimeout bounds the wait for the file lock that a running
	// server holds; a second instance fails after it.
	LockTimeout time.Duration
	// HistoryPerRoom is how many messages each conversation keeps; 0 keeps all.
	HistoryPerRoom int
	// OnCommit, when set, is called by the single writer goroutine with the
	// messages of each committed batch, in commit order, before any waiting
	// AppendMessage returns. It must not block.
	OnCommit func([]Message)
	// ObserveCommit, when set, is told of every message commit: the
	// batch, how long the transaction took, and whether it failed.
	ObserveCommit func(batch []Message, took time.Duration, err error)
	Logger        *slog.Logger
}

// Store persists users, sessions, rooms, memberships and messages in one
// bbolt file. Every exported method runs in its own transaction; no bbolt
// type leaves this file and its siblings.
type Store struct {
	db   *bolt.DB
	opts StoreOptions
	log  *slog.Logger

	// mu guards closed and the send side of appends: senders hold it for
	// reading, Close for writing, so appends never race the channel close.
	mu         sync.RWMutex
	closed     bool
	appends    chan *appendRequest
	writerDone chan struct{}
}

// OpenStore opens (or creates) the database at path. A file that is empty,
// truncated, corrupted, not a bbolt database, or a bbolt database of some
// other program is refused with an error and left untouched.
func OpenStore(path string, opts StoreOptions) (_ *Store, err error) {
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
	s := &Store{
		db:         db,
		opts:       opts,
		log:        opts.Logger.With("component", "store"),
		appends:    make(chan *appendRequest, appendQueueLen),
		writerDone: make(chan struct{}),
	}
	if err := s.verify(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.init(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	go s.writer()
	return s, nil
}

// verify checks the file's structure before anything reads it.
func (s *Store) verify(path string) error { return verifyStructure(s.db, path) }

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

// checkDatabaseFile opens a file read-only and checks that it is a sound
// parley database this version can use (a backup, say). It never writes.
func checkDatabaseFile(path string) (err error) {
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
		if v > schemaVersion {
			return fmt.Errorf("database schema version %d is newer than this parley understands (%d)", v, schemaVersion)
		}
		return nil
	})
}

// lockDatabase takes the lock a server holds on its database file (an
// exclusive flock, as bbolt takes it) and returns its release. It fails
// with ErrDatabaseInUse while a server runs, and works on a damaged file
// too, so a bad database can be replaced from a backup.
func lockDatabase(path string) (func(), error) {
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
			return meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion)))
		})
	case version > schemaVersion:
		return fmt.Errorf("database schema version %d is newer than this parley understands (%d); run a newer parley", version, schemaVersion)
	case version < 1:
		return fmt.Errorf("%w: schema version %d", ErrNotParleyDB, version)
	case version < schemaVersion:
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

// Close stops accepting appends, commits those already queued, and closes
// the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.appends)
	s.mu.Unlock()
	<-s.writerDone
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Ping reports whether the store can serve a read.
func (s *Store) Ping() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrStoreClosed
	}
	return s.db.View(func(tx *bolt.Tx) error {
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

// Size is the database's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// update runs fn in a write transaction and marks commit failures as
// ErrUnavailable; errors fn itself returns pass through unchanged.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
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
