package main

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"parley/internal/store"

	bolt "go.etcd.io/bbolt"
)

// corruptMessage flips the first byte of a stored message, as a bad disk
// sector would: bbolt's page checks pass, the record no longer decodes.
func corruptMessage(t *testing.T, path string, bucket []byte, seq uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, seq)
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("messages")).Bucket(bucket)
		v := append([]byte{}, b.Get(key)...)
		if len(v) == 0 {
			return fmt.Errorf("no message %d", seq)
		}
		v[0] ^= 0x55
		return b.Put(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorrupt_MessageNeverWedges: one damaged message in a room and one
// in a direct conversation. Signing in, joining, history, threads and
// search skip them and log them; acting on them answers not_found; new
// messages are stored and trim the damaged ones away; parley check finds
// them, offline and through the running server, until they are gone.
func TestCorrupt_MessageNeverWedges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.History.PerRoom = 6
	cfg.Limits.MessagesPerSecond = 0
	o := openOffline(t, cfg.DB.Path)
	alice, bob := o.user("alice"), o.user("bob")
	o.must(store.JoinRoom{RoomID: "general", UserID: alice, AllowCreate: true})
	o.must(store.JoinRoom{RoomID: "general", UserID: bob})
	for i := 1; i <= 5; i++ {
		o.must(store.PostMessage{RoomID: "general", SenderID: alice, Content: fmt.Sprint("note ", i), Keep: cfg.History.PerRoom})
	}
	for i := 1; i <= 3; i++ {
		o.must(store.PostMessage{SenderID: alice, TargetID: bob, Content: fmt.Sprint("psst ", i), Keep: cfg.History.PerRoom})
	}
	o.Close()
	direct := make([]byte, 17)
	direct[0] = 'd'
	binary.BigEndian.PutUint64(direct[1:], alice)
	binary.BigEndian.PutUint64(direct[9:], bob)
	corruptMessage(t, cfg.DB.Path, []byte("rgeneral"), 2)
	corruptMessage(t, cfg.DB.Path, direct, 3) // the newest: sign-in reads it

	out, err := cli(t, "", "check", "-db", cfg.DB.Path)
	if err == nil || !strings.Contains(out, "messages/room general/2") || !strings.Contains(out, "messages/direct 1-2/3") {
		t.Fatalf("parley check offline: %v\n%s", err, out)
	}

	ts := startServer(t, &cfg)
	b, _ := signedIn(t, ts, "bob") // reads the damaged direct message
	a, _ := signedIn(t, ts, "alice")
	j := a.join("general")
	if len(j.History) != 4 || j.History[0].Content != "note 1" || j.History[1].Content != "note 3" {
		t.Fatalf("joined history around a damaged record: %+v", j.History)
	}
	a.send("history", map[string]any{"roomId": "general", "around": formatMessageID(2), "limit": 4})
	var h historyOutData
	decodeInto(t, a.await("history"), &h)
	if len(h.Messages) != 4 || h.Messages[1].Content != "note 3" {
		t.Fatalf("history around the damaged record: %+v", h.Messages)
	}
	b.send("history", map[string]string{"withUserId": formatID(alice)})
	decodeInto(t, b.await("history"), &h)
	if len(h.Messages) != 2 {
		t.Fatalf("direct history around a damaged record: %+v", h.Messages)
	}
	damaged := formatMessageID(2)
	a.send("thread", map[string]string{"roomId": "general", "messageId": damaged})
	a.awaitError(codeNotFound)
	a.send("react", map[string]string{"roomId": "general", "messageId": damaged, "emoji": "👍"})
	a.awaitError(codeNotFound)
	a.send("edit", map[string]string{"roomId": "general", "messageId": damaged, "content": "fixed?"})
	a.awaitError(codeNotFound)
	a.send("chat", map[string]string{"roomId": "general", "content": "a reply", "replyTo": damaged})
	a.awaitError(codeNotFound)
	a.send("search", map[string]string{"query": "note"})
	var sr searchResultsData
	decodeInto(t, a.await("searchResults"), &sr)
	if len(sr.Results) != 4 {
		t.Fatalf("search around a damaged record: %d results", len(sr.Results))
	}
	waitForLog(t, ts, "undecodable message record")

	out, err = cli(t, "", "check", "-db", cfg.DB.Path)
	if err == nil || !strings.Contains(out, "messages/room general/2") || !strings.Contains(err.Error(), "through the running server") {
		t.Fatalf("parley check through the server: %v\n%s", err, out)
	}

	// New messages are stored, and trimming deletes the damaged ones.
	for i := 6; i <= 12; i++ {
		a.send("chat", map[string]string{"roomId": "general", "content": fmt.Sprint("note ", i)})
		a.awaitMessage(fmt.Sprint("note ", i))
		a.send("private", map[string]string{"targetUserId": formatID(bob), "content": fmt.Sprint("psst ", i)})
		a.awaitMessage(fmt.Sprint("psst ", i))
	}
	if out := mustCLI(t, "", "check", "-db", cfg.DB.Path); !strings.Contains(out, "every record decodes") {
		t.Fatalf("parley check after trimming: %s", out)
	}
}
