package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func mustOpenStore(tb testing.TB, path string, opts StoreOptions) *Store {
	tb.Helper()
	s, err := OpenStore(path, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStore_SecondInstanceFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	mustOpenStore(t, path, StoreOptions{})
	start := time.Now()
	_, err := OpenStore(path, StoreOptions{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v, want database in use", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("second open took %s", took)
	}
}

// TestStore_RefusesForeignFiles checks that files that are not parley
// databases are refused with a clear error and left byte-for-byte alone.
func TestStore_RefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	otherBolt := filepath.Join(dir, "other.db")
	db, err := bolt.Open(otherBolt, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("widgets"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	newer := filepath.Join(dir, "newer.db")
	s := mustOpenStore(t, newer, StoreOptions{})
	s.Close()
	db, err = bolt.Open(newer, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(fmt.Sprint(schemaVersion+1)))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	files := map[string][]byte{
		"text.db":  []byte("these are my notes, not a database\n"),
		"empty.db": {},
		"zeros.db": make([]byte, 64<<10),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, want string
	}{
		{"text.db", "not a parley database"},
		{"empty.db", "empty"},
		{"zeros.db", "not a parley database"},
		{"other.db", "another program"},
		{"newer.db", "newer than this parley"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = OpenStore(path, StoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open %s: %v, want an error about %q", tc.name, err, tc.want)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatalf("open %s changed the file", tc.name)
			}
		})
	}
}

func TestStore_HistoryTrimmedInSameTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	s := mustOpenStore(t, path, StoreOptions{HistoryPerRoom: 10})
	if _, err := s.JoinRoom("r", Member{UserID: 1, Name: "a"}, time.Now(), JoinLimits{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 1; i <= 25; i++ {
		m, err := s.AppendMessage(ctx, Message{RoomID: "r", SenderID: 1, SenderName: "a", Content: fmt.Sprint(i), Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if m.Seq != uint64(i) {
			t.Fatalf("seq %d, want %d", m.Seq, i)
		}
	}
	msgs, more, err := s.RoomHistory("r", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 10 || more || msgs[0].Content != "16" || msgs[9].Content != "25" {
		t.Fatalf("history: %d messages from %q, more=%v", len(msgs), msgs[0].Content, more)
	}
	if _, err := s.AppendMessage(ctx, Message{RoomID: "nope", SenderID: 1, Content: "x", Time: time.Now()}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("append to unknown room: %v", err)
	}
}

// TestStore_GroupCommit appends from many goroutines at once: every
// append returns its own committed message, OnCommit sees each exactly
// once in seq order per room, and all of it is on disk after reopening.
func TestStore_GroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	var (
		mu        sync.Mutex
		committed = map[string][]uint64{}
		batches   int
	)
	s, err := OpenStore(path, StoreOptions{HistoryPerRoom: 0, OnCommit: func(msgs []Message) {
		mu.Lock()
		defer mu.Unlock()
		batches++
		for _, m := range msgs {
			committed[m.RoomID] = append(committed[m.RoomID], m.Seq)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	rooms := []string{"a", "b", "c", "d"}
	for _, r := range rooms {
		if _, err := s.JoinRoom(r, Member{UserID: 1, Name: "u"}, time.Now(), JoinLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	const senders, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				room := rooms[(i+j)%len(rooms)]
				if _, err := s.AppendMessage(context.Background(), Message{RoomID: room, SenderID: 1, Content: "x", Time: time.Now()}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for r, seqs := range committed {
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("room %s: OnCommit order %v", r, seqs)
			}
		}
		total += len(seqs)
	}
	if total != senders*each {
		t.Fatalf("OnCommit saw %d messages, want %d", total, senders*each)
	}
	t.Logf("%d messages in %d transactions", total, batches)

	s = mustOpenStore(t, path, StoreOptions{})
	n := 0
	for _, r := range rooms {
		msgs, _, err := s.RoomHistory(r, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n += len(msgs)
	}
	if n != senders*each {
		t.Fatalf("%d messages on disk, want %d", n, senders*each)
	}
}

func TestStore_ClosedRefusesAppends(t *testing.T) {
	s := mustOpenStore(t, filepath.Join(t.TempDir(), "parley.db"), StoreOptions{})
	s.Close()
	if _, err := s.AppendMessage(context.Background(), Message{RoomID: "r"}); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := s.Ping(); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("ping after close: %v", err)
	}
}

func TestStore_Tokens(t *testing.T) {
	s := mustOpenStore(t, filepath.Join(t.TempDir(), "parley.db"), StoreOptions{})
	u, err := s.CreateUser("amy", "hash", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser("AMY", "hash", time.Now()); !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	now := time.Now()
	_, live := newToken()
	_, old := newToken()
	if err := s.CreateToken(live, u.ID, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(old, u.ID, now.Add(-2*time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.TokenUser(live, now); err != nil || got.ID != u.ID {
		t.Fatalf("live token: %v %v", got, err)
	}
	if _, _, err := s.TokenUser(old, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	if n, err := s.PurgeExpiredTokens(now); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, _, err := s.TokenUser(live, now); err != nil {
		t.Fatalf("purge removed a live token: %v", err)
	}
}

// TestStore_AppendChecksMembershipAndMute checks that the commit itself
// refuses a message whose sender is no longer in the room, or is muted in
// it, however long the message waited in the queue.
func TestStore_AppendChecksMembershipAndMute(t *testing.T) {
	s := mustOpenStore(t, filepath.Join(t.TempDir(), "parley.db"), StoreOptions{HistoryPerRoom: 10})
	for _, id := range []uint64{1, 2} {
		if _, err := s.JoinRoom("r", Member{UserID: id, Name: fmt.Sprint("u", id)}, time.Now(), JoinLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	send := func(sender uint64, at time.Time) error {
		_, err := s.AppendMessage(ctx, Message{RoomID: "r", SenderID: sender, SenderName: fmt.Sprint("u", sender), Content: "hi", Time: at})
		return err
	}
	now := time.Now()
	if err := send(3, now); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a stranger's message: %v, want ErrNotMember", err)
	}
	if _, err := s.LeaveRoom("r", 2); err != nil {
		t.Fatal(err)
	}
	if err := send(2, now); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a message after leaving: %v, want ErrNotMember", err)
	}
	until := now.Add(time.Hour)
	if _, err := s.UpdateRoom("r", func(r Room) (Room, error) {
		r.Mutes = map[uint64]time.Time{1: until}
		return r, nil
	}); err != nil {
		t.Fatal(err)
	}
	var muted *MutedError
	if err := send(1, now); !errors.As(err, &muted) || !muted.Until.Equal(until) {
		t.Fatalf("a muted member's message: %v, want MutedError until %v", err, until)
	}
	if err := send(1, until.Add(time.Second)); err != nil {
		t.Fatalf("a message after the mute ended: %v", err)
	}
	msgs, _, err := s.RoomHistory("r", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].SenderID != 1 {
		t.Fatalf("history holds %d messages, want only the one sent after the mute", len(msgs))
	}
}
