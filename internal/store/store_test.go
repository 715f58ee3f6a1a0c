package store

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

func mustOpen(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// harness applies commands to a store through a Log, as a server does,
// and hands each proposer its outcome.
type harness struct {
	tb  testing.TB
	st  *Store
	log *Log

	mu      sync.Mutex // guards waiting, batches and next
	waiting map[string]chan Applied
	batches []Batch
	next    int
	done    chan struct{}
}

func newHarness(tb testing.TB, path string) *harness {
	tb.Helper()
	st, err := Open(path, Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	h := &harness{tb: tb, st: st, log: NewLog(st, nil), waiting: map[string]chan Applied{}, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for b := range h.log.Batches() {
			h.mu.Lock()
			h.batches = append(h.batches, b)
			for _, ap := range b.Applied {
				if ch := h.waiting[ap.Env.ID]; ch != nil {
					ch <- ap
					delete(h.waiting, ap.Env.ID)
				}
			}
			h.mu.Unlock()
		}
	}()
	tb.Cleanup(h.close)
	return h
}

// close applies what is queued and closes the store; safe to call twice.
func (h *harness) close() {
	h.log.Close()
	<-h.done
	h.st.Close()
}

// send proposes a command sent at at and returns where its outcome comes.
func (h *harness) send(at time.Time, cmd Command) <-chan Applied {
	h.tb.Helper()
	ch := make(chan Applied, 1)
	h.mu.Lock()
	h.next++
	id := fmt.Sprint("t-", h.next)
	h.waiting[id] = ch
	h.mu.Unlock()
	if err := h.log.Propose(context.Background(), Envelope{ID: id, Time: at, Cmd: cmd}); err != nil {
		h.tb.Fatalf("propose %s: %v", Name(cmd), err)
	}
	return ch
}

// do applies a command sent at at and returns its outcome.
func (h *harness) do(at time.Time, cmd Command) Outcome {
	h.tb.Helper()
	return (<-h.send(at, cmd)).Outcome
}

// must applies a command that must succeed.
func (h *harness) must(at time.Time, cmd Command) Outcome {
	h.tb.Helper()
	out := h.do(at, cmd)
	if out.Err != nil {
		h.tb.Fatalf("%s: %v", Name(cmd), out.Err)
	}
	return out
}

// user registers an account and returns its id.
func (h *harness) user(name string) uint64 {
	h.tb.Helper()
	return h.must(time.Now(), CreateUser{Name: name, PasswordHash: "hash"}).User.ID
}

func TestStore_SecondInstanceFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	mustOpen(t, path)
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
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
	s := mustOpen(t, newer)
	s.Close()
	db, err = bolt.Open(newer, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(fmt.Sprint(SchemaVersion+1)))
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
			_, err = Open(path, Options{})
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
	h := newHarness(t, filepath.Join(t.TempDir(), "parley.db"))
	a := h.user("a")
	h.must(time.Now(), JoinRoom{RoomID: "r", UserID: a, AllowCreate: true})
	for i := 1; i <= 25; i++ {
		m := h.must(time.Now(), PostMessage{RoomID: "r", SenderID: a, Content: fmt.Sprint(i), Keep: 10}).Message
		if m.Seq != uint64(i) {
			t.Fatalf("seq %d, want %d", m.Seq, i)
		}
	}
	p, err := h.st.History(RoomConv("r"), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 10 || p.HasMore || p.Messages[0].Content != "16" || p.Messages[9].Content != "25" || !p.Trimmed {
		t.Fatalf("history: %d messages from %q, more=%v trimmed=%v", len(p.Messages), p.Messages[0].Content, p.HasMore, p.Trimmed)
	}
	if out := h.do(time.Now(), PostMessage{RoomID: "nope", SenderID: a, Content: "x"}); !errors.Is(out.Err, ErrRoomNotFound) {
		t.Fatalf("post to an unknown room: %v", out.Err)
	}
}

// TestLog_GroupCommit posts from many goroutines at once: every post gets
// its own outcome, the batches hold each message exactly once in seq
// order per room, commands share transactions, and all of it is on disk
// after reopening.
func TestLog_GroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	h := newHarness(t, path)
	u := h.user("u")
	rooms := []string{"a", "b", "c", "d"}
	for _, r := range rooms {
		h.must(time.Now(), JoinRoom{RoomID: r, UserID: u, AllowCreate: true})
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
				if out := h.do(time.Now(), PostMessage{RoomID: room, SenderID: u, Content: "x"}); out.Err != nil {
					errs <- out.Err
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
	h.close()
	posted := map[string][]uint64{}
	batches := 0
	for _, b := range h.batches {
		if b.Err != nil {
			t.Fatalf("batch failed: %v", b.Err)
		}
		for _, ap := range b.Applied {
			if p, ok := ap.Env.Cmd.(PostMessage); ok {
				posted[p.RoomID] = append(posted[p.RoomID], ap.Outcome.Message.Seq)
			}
		}
		batches++
	}
	total := 0
	for r, seqs := range posted {
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("room %s: applied in order %v", r, seqs)
			}
		}
		total += len(seqs)
	}
	if total != senders*each {
		t.Fatalf("the batches hold %d messages, want %d", total, senders*each)
	}
	if batches >= total {
		t.Fatalf("%d messages took %d transactions: nothing was committed together", total, batches)
	}
	t.Logf("%d messages in %d transactions", total, batches)

	s := mustOpen(t, path)
	n := 0
	for _, r := range rooms {
		p, err := s.History(RoomConv(r), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Messages)
	}
	if n != senders*each {
		t.Fatalf("%d messages on disk, want %d", n, senders*each)
	}
}

func TestLog_ClosedRefusesCommands(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "parley.db"))
	h.close()
	if err := h.log.Propose(context.Background(), Envelope{ID: "late", Cmd: Expire{}}); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("propose after close: %v", err)
	}
	if err := h.st.Ping(); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("ping after close: %v", err)
	}
}

func TestStore_Tokens(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "parley.db"))
	u := h.user("amy")
	if out := h.do(time.Now(), CreateUser{Name: "AMY", PasswordHash: "hash"}); !errors.Is(out.Err, ErrUsernameTaken) {
		t.Fatalf("duplicate name: %v", out.Err)
	}
	now := time.Now()
	live, old := []byte("live-token-hash"), []byte("old-token-hash")
	h.must(now, IssueToken{UserID: u, Token: TokenGrant{Hash: live, ExpiresAt: now.Add(time.Hour)}})
	h.must(now.Add(-2*time.Hour), IssueToken{UserID: u, Token: TokenGrant{Hash: old, ExpiresAt: now.Add(-time.Hour)}})
	if got, _, err := h.st.TokenUser(live, now); err != nil || got.ID != u {
		t.Fatalf("live token: %v %v", got, err)
	}
	if _, _, err := h.st.TokenUser(old, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	if out := h.must(now, Expire{}); out.Count != 1 {
		t.Fatalf("expire deleted %d, want 1", out.Count)
	}
	if _, _, err := h.st.TokenUser(live, now); err != nil {
		t.Fatalf("expire removed a live token: %v", err)
	}
	// A suspended account's tokens go, and it cannot get new ones.
	h.must(now, SuspendUser{TargetID: u, Suspend: true})
	if _, _, err := h.st.TokenUser(live, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token of a suspended account: %v", err)
	}
	if out := h.do(now, IssueToken{UserID: u, Token: TokenGrant{Hash: live, ExpiresAt: now.Add(time.Hour)}}); !errors.Is(out.Err, ErrSuspended) {
		t.Fatalf("sign-in of a suspended account: %v", out.Err)
	}
}

// TestStore_PostChecksMembershipAndMute checks that applying a message
// refuses one whose sender is no longer in the room, or is muted in it,
// however long the message waited in the queue.
func TestStore_PostChecksMembershipAndMute(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "parley.db"))
	owner, member, stranger := h.user("u1"), h.user("u2"), h.user("u3")
	now := time.Now()
	h.must(now, JoinRoom{RoomID: "r", UserID: owner, AllowCreate: true})
	h.must(now, JoinRoom{RoomID: "r", UserID: member})
	send := func(sender uint64, at time.Time) error {
		return h.do(at, PostMessage{RoomID: "r", SenderID: sender, Content: "hi", Keep: 10}).Err
	}
	if err := send(stranger, now); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a stranger's message: %v, want ErrNotMember", err)
	}
	until := now.Add(time.Hour).UTC()
	h.must(now, Mute{ModTarget: ModTarget{RoomID: "r", ActorID: owner, TargetID: member}, Until: until})
	var muted *MutedError
	if err := send(member, now); !errors.As(err, &muted) || !muted.Until.Equal(until) {
		t.Fatalf("a muted member's message: %v, want MutedError until %v", err, until)
	}
	if err := send(member, until.Add(time.Second)); err != nil {
		t.Fatalf("a message after the mute ended: %v", err)
	}
	h.must(now, LeaveRoom{RoomID: "r", UserID: member})
	if err := send(member, until.Add(2*time.Second)); !errors.Is(err, ErrNotMember) {
		t.Fatalf("a message after leaving: %v, want ErrNotMember", err)
	}
	p, err := h.st.History(RoomConv("r"), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 1 || p.Messages[0].SenderID != member {
		t.Fatalf("history holds %d messages, want only the one sent after the mute", len(p.Messages))
	}
}

// TestApplyLogged_BatchesShareAPosition: a cluster's log entry may carry
// several commands at one position. They apply together, the database's
// position moves once, and an entry delivered again (a consumer that
// restarted) applies nothing twice; a missing entry is a gap.
func TestApplyLogged_BatchesShareAPosition(t *testing.T) {
	st := mustOpen(t, filepath.Join(t.TempDir(), "parley.db"))
	at := time.Now()
	user := func(id, name string) Envelope {
		return Envelope{ID: id, Time: at, Cmd: CreateUser{Name: name, PasswordHash: "hash"}}
	}
	b := st.ApplyLogged([]Envelope{user("a", "ann"), user("b", "ben"), user("c", "cat")}, []uint64{1, 1, 1})
	if b.Err != nil || len(b.Applied) != 3 {
		t.Fatalf("first entry: %d applied, err %v", len(b.Applied), b.Err)
	}
	for _, ap := range b.Applied {
		if ap.Seq != 1 || ap.Outcome.Err != nil {
			t.Fatalf("%s: position %d, outcome %v", ap.Env.ID, ap.Seq, ap.Outcome.Err)
		}
	}
	if st.AppliedSeq() != 1 {
		t.Fatalf("position after the first entry = %d, want 1", st.AppliedSeq())
	}
	// The first entry again, with the second: only the second applies.
	b = st.ApplyLogged([]Envelope{user("a", "ann"), user("b", "ben"), user("c", "cat"), user("d", "dan"), user("e", "eve")},
		[]uint64{1, 1, 1, 2, 2})
	if b.Err != nil || len(b.Applied) != 2 || b.Applied[0].Env.ID != "d" || b.Applied[1].Seq != 2 {
		t.Fatalf("replayed entry and the next: %+v, err %v", b.Applied, b.Err)
	}
	for _, name := range []string{"ann", "ben", "cat", "dan", "eve"} {
		if _, err := st.UserByName(name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if b := st.ApplyLogged([]Envelope{user("g", "gus")}, []uint64{4}); !errors.Is(b.Err, ErrGap) {
		t.Fatalf("entry 4 after 2: err %v, want ErrGap", b.Err)
	}
	if _, err := st.UserByName("gus"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("gus after a gap: %v, want not found", err)
	}
}
