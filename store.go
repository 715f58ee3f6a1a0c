package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// schemaVersion is the layout of the buckets below. Bump it with a
// migration when the layout changes; a database with a higher version is
// refused rather than misread.
const schemaVersion = 1

// appName marks a bbolt file as ours, so parley never writes into some
// other program's database.
const appName = "parley"

// Bucket layout. Ids are 8-byte big-endian so cursor order is id order.
//
//	meta                          app, schema
//	users        userID        -> userRecord (JSON)
//	usernames    lower(name)   -> userID
//	tokens       sha256(token) -> tokenRecord (JSON)
//	rooms        roomID        -> roomRecord (JSON)
//	members      roomID/userID -> username        (nested bucket per room)
//	userRooms    userID/roomID -> joinedAt        (nested bucket per user)
//	messages     convKey/seq   -> messageRecord   (nested bucket per conversation)
//	dmPeers      userID/peerID -> last read seq   (nested bucket per user)
var (
	bucketMeta      = []byte("meta")
	bucketUsers     = []byte("users")
	bucketUsernames = []byte("usernames")
	bucketTokens    = []byte("tokens")
	bucketRooms     = []byte("rooms")
	bucketMembers   = []byte("members")
	bucketUserRooms = []byte("userRooms")
	bucketMessages  = []byte("messages")
	bucketDMPeers   = []byte("dmPeers")

	allBuckets = [][]byte{bucketMeta, bucketUsers, bucketUsernames, bucketTokens, bucketRooms,
		bucketMembers, bucketUserRooms, bucketMessages, bucketDMPeers}

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
)

// User is an account. PasswordHash is an encoded argon2id hash.
type User struct {
	ID           uint64
	Name         string
	PasswordHash string
	CreatedAt    time.Time
	Admin        bool
}

// Room is a room's metadata.
type Room struct {
	ID            string
	CreatedAt     time.Time
	CreatedBy     uint64
	LastMessageAt time.Time
	MemberCount   int
}

// Member is one member of a room.
type Member struct {
	UserID uint64
	Name   string
}

// UnreadDirect summarises direct messages a user has not read from one peer.
type UnreadDirect struct {
	PeerID        uint64
	PeerName      string
	Count         int
	LastMessageAt time.Time
}

// JoinLimits bound what one JoinRoom may add.
type JoinLimits struct {
	MaxRooms int  // rooms a user may belong to; 0 is no limit
	NoCreate bool // the room must already exist
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
	Logger   *slog.Logger
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
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
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	go s.writer()
	return s, nil
}

// verify checks the file's structure before anything reads it: a file
// shorter than its own page count says (truncated), or pages that do not
// link up (corrupted), are refused rather than served until they crash
// the server. It reads every page, which takes a fraction of a second for
// hundreds of MiB once they are in the page cache.
func (s *Store) verify(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	corrupted := func(why any) error {
		return fmt.Errorf("%w: the database is corrupted (%v); restore it from a backup", ErrNotParleyDB, why)
	}
	return s.db.View(func(tx *bolt.Tx) error {
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

// init checks that the file is ours and at a version we understand, and
// creates the buckets of a new database.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("%w: it holds buckets of another program", ErrNotParleyDB)
			}
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			meta = tx.Bucket(bucketMeta)
			if err := meta.Put(keyApp, []byte(appName)); err != nil {
				return err
			}
			return meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion)))
		}
		if string(meta.Get(keyApp)) != appName {
			return fmt.Errorf("%w: its meta bucket does not name parley", ErrNotParleyDB)
		}
		v, err := strconv.Atoi(string(meta.Get(keySchema)))
		if err != nil {
			return fmt.Errorf("%w: unreadable schema version %q", ErrNotParleyDB, meta.Get(keySchema))
		}
		if v > schemaVersion {
			return fmt.Errorf("database schema version %d is newer than this parley understands (%d); run a newer parley", v, schemaVersion)
		}
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

// --- users ---

type userRecord struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"passwordHash"`
	CreatedAt    time.Time `json:"createdAt"`
	Admin        bool      `json:"admin,omitempty"`
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

// UserByName finds an account by name, ignoring case.
func (s *Store) UserByName(name string) (User, error) {
	var u User
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketUsernames).Get([]byte(strings.ToLower(name)))
		if id == nil {
			return ErrNotFound
		}
		var err error
		u, err = getUser(tx, binary.BigEndian.Uint64(id))
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

func (r userRecord) user(id uint64) User {
	return User{ID: id, Name: r.Name, PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt, Admin: r.Admin}
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
		return putJSON(tx.Bucket(bucketTokens), hash, tokenRecord{UserID: userID, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()})
	})
}

// TokenUser returns the account a token hash signs in and when the token
// expires. Unknown and expired tokens are ErrNotFound.
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
		u, err = getUser(tx, rec.UserID)
		return err
	})
	return u, rec.ExpiresAt, err
}

// DeleteToken revokes one token. Revoking an unknown token is not an error.
func (s *Store) DeleteToken(hash []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).Delete(hash)
	})
}

// ChangePassword sets a user's password hash, revokes every token of the
// user, and stores newToken in their place, all in one transaction.
func (s *Store) ChangePassword(userID uint64, passwordHash string, newToken []byte, now, expires time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		var rec userRecord
		v := users.Get(u64key(userID))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode user %d: %w", userID, err)
		}
		rec.PasswordHash = passwordHash
		if err := putJSON(users, u64key(userID), rec); err != nil {
			return err
		}
		tokens := tx.Bucket(bucketTokens)
		c := tokens.Cursor()
		for k, v := c.First(); k != nil; {
			var t tokenRecord
			if json.Unmarshal(v, &t) == nil && t.UserID != userID {
				k, v = c.Next()
				continue
			}
			if err := c.Delete(); err != nil {
				return err
			}
			k, v = c.Seek(k)
		}
		return putJSON(tokens, newToken, tokenRecord{UserID: userID, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()})
	})
}

// PurgeExpiredTokens deletes tokens that expired before now and returns
// how many it deleted.
func (s *Store) PurgeExpiredTokens(now time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTokens).Cursor()
		for k, v := c.First(); k != nil; {
			var rec tokenRecord
			if json.Unmarshal(v, &rec) == nil && now.Before(rec.ExpiresAt) {
				k, v = c.Next()
				continue
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
			// Delete moves the cursor; look up the successor afresh.
			k, v = c.Seek(k)
		}
		return nil
	})
	return n, err
}

// --- rooms and membership ---

type roomRecord struct {
	CreatedAt     time.Time `json:"createdAt"`
	CreatedBy     uint64    `json:"createdBy"`
	LastMessageAt time.Time `json:"lastMessageAt,omitzero"`
	MemberCount   int       `json:"memberCount"`
}

func (r roomRecord) room(id string) Room {
	return Room{ID: id, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, LastMessageAt: r.LastMessageAt, MemberCount: r.MemberCount}
}

// JoinRoom makes the user a member of the room, creating the room when it
// does not exist. Joining a room twice changes nothing. Within lim, it
// fails with ErrTooManyRooms or ErrCreateNotAllowed.
func (s *Store) JoinRoom(roomID string, user Member, now time.Time, lim JoinLimits) (JoinResult, error) {
	var res JoinResult
	err := s.update(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bucketRooms)
		var rec roomRecord
		if v := rooms.Get([]byte(roomID)); v != nil {
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode room %s: %w", roomID, err)
			}
		} else {
			rec = roomRecord{CreatedAt: now.UTC(), CreatedBy: user.UserID}
			res.Created = true
		}
		uid := u64key(user.UserID)
		if existing := tx.Bucket(bucketMembers).Bucket([]byte(roomID)); existing != nil && existing.Get(uid) != nil {
			res.Room = rec.room(roomID)
			return nil
		}
		mine, err := tx.Bucket(bucketUserRooms).CreateBucketIfNotExists(uid)
		if err != nil {
			return err
		}
		if lim.MaxRooms > 0 && mine.Stats().KeyN >= lim.MaxRooms {
			return ErrTooManyRooms
		}
		if res.Created && lim.NoCreate {
			return ErrCreateNotAllowed
		}
		members, err := tx.Bucket(bucketMembers).CreateBucketIfNotExists([]byte(roomID))
		if err != nil {
			return err
		}
		res.NewMember = true
		rec.MemberCount++
		if err := members.Put(uid, []byte(user.Name)); err != nil {
			return err
		}
		if err := mine.Put([]byte(roomID), []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
			return err
		}
		res.Room = rec.room(roomID)
		return putJSON(rooms, []byte(roomID), rec)
	})
	return res, err
}

// LeaveRoom ends the user's membership. It reports whether the user was a
// member. The room and its history stay.
func (s *Store) LeaveRoom(roomID string, userID uint64) (bool, error) {
	was := false
	err := s.update(func(tx *bolt.Tx) error {
		members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
		uid := u64key(userID)
		if members == nil || members.Get(uid) == nil {
			return nil
		}
		was = true
		if err := members.Delete(uid); err != nil {
			return err
		}
		if mine := tx.Bucket(bucketUserRooms).Bucket(uid); mine != nil {
			if err := mine.Delete([]byte(roomID)); err != nil {
				return err
			}
		}
		rooms := tx.Bucket(bucketRooms)
		var rec roomRecord
		if v := rooms.Get([]byte(roomID)); v != nil {
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode room %s: %w", roomID, err)
			}
			rec.MemberCount--
			return putJSON(rooms, []byte(roomID), rec)
		}
		return nil
	})
	return was, err
}

// UserRooms lists the rooms the user belongs to, by room id.
func (s *Store) UserRooms(userID uint64) ([]Room, error) {
	var out []Room
	err := s.view(func(tx *bolt.Tx) error {
		mine := tx.Bucket(bucketUserRooms).Bucket(u64key(userID))
		if mine == nil {
			return nil
		}
		rooms := tx.Bucket(bucketRooms)
		return mine.ForEach(func(k, _ []byte) error {
			var rec roomRecord
			if err := json.Unmarshal(rooms.Get(k), &rec); err != nil {
				return fmt.Errorf("decode room %s: %w", k, err)
			}
			out = append(out, rec.room(string(k)))
			return nil
		})
	})
	return out, err
}

// Rooms lists every room, by room id.
func (s *Store) Rooms() ([]Room, error) {
	var out []Room
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
			var rec roomRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode room %s: %w", k, err)
			}
			out = append(out, rec.room(string(k)))
			return nil
		})
	})
	return out, err
}

// RoomMembers lists a room's members in id order; an unknown room has none.
func (s *Store) RoomMembers(roomID string) ([]Member, error) {
	var out []Member
	err := s.view(func(tx *bolt.Tx) error {
		members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
		if members == nil {
			return nil
		}
		return members.ForEach(func(k, v []byte) error {
			out = append(out, Member{UserID: binary.BigEndian.Uint64(k), Name: string(v)})
			return nil
		})
	})
	return out, err
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
