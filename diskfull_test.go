package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFull puts the database on a small tmpfs, fills the disk, and
// checks that the sender is told store_unavailable, that nothing is
// acknowledged that is not stored, that the server keeps serving, and that
// it recovers once space returns. It needs to mount a tmpfs (root in a
// sandbox or VM, as in CI); elsewhere it skips and says why.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("PARLEY_DISKFULL_TESTS") == "1" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	cfg := testConfig(dir)
	cfg.DB.Path = filepath.Join(mnt, "parley.db")
	cfg.History.PerRoom = 0
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	c, ca := signedIn(t, ts, "filler")
	c.join("room")
	content := strings.Repeat("d", 4000)
	acked := map[string]bool{}
	for i := 0; i < 5; i++ {
		id := fmt.Sprint("before-", i)
		c.send("chat", map[string]string{"roomId": "room", "content": content, "clientMsgId": id})
		c.await("message")
		acked[id] = true
	}

	// Fill the disk with an unrelated file.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	f.Close()

	// Send until the store refuses; count what was acknowledged.
	refused := false
	for i := 0; i < 2000 && !refused; i++ {
		id := fmt.Sprint("full-", i)
		c.send("chat", map[string]string{"roomId": "room", "content": content, "clientMsgId": id})
		f := c.next()
		switch f.Type {
		case "message":
			acked[id] = true
		case "error":
			var e errorData
			decodeInto(t, f, &e)
			if e.Code != codeStoreUnavailable || e.ClientMsgID != id {
				t.Fatalf("on a full disk: %+v, want store_unavailable for %s", e, id)
			}
			refused = true
		default:
			t.Fatalf("unexpected %s frame", f.Type)
		}
	}
	if !refused {
		t.Fatal("the disk never filled up")
	}
	waitForLog(t, ts, "commit failed")
	if status, _, body := httpGet(t, ts.URL()+"/readyz"); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz on a full disk: %d %s", status, body)
	}
	// The server keeps serving what needs no disk space: reads, and
	// signing in with a token.
	c.send("rooms", nil)
	c.expect("rooms")
	other := dial(t, ts.WSURL())
	other.send("auth", map[string]string{"token": ca.Token})
	other.expect("authenticated")
	other.send("history", map[string]string{"roomId": "room"})
	var h historyOutData
	decodeInto(t, other.expect("history"), &h)
	if len(h.Messages) == 0 {
		t.Fatal("history unreadable on a full disk")
	}

	// Space returns: sending works again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.send("chat", map[string]string{"roomId": "room", "content": "space is back", "clientMsgId": "after"})
	var m messageFrame
	decodeInto(t, c.await("message"), &m)
	if m.ClientMsgID != "after" {
		t.Fatalf("after recovery got %+v", m)
	}
	acked["after"] = true
	if status, _, body := httpGet(t, ts.URL()+"/readyz"); status != http.StatusOK {
		t.Fatalf("readyz once space returned: %d %s", status, body)
	}

	// After a restart the history holds exactly what was acknowledged.
	ts.Restart()
	r, _ := signedIn(t, ts, "filler")
	stored := map[string]bool{}
	for _, m := range allHistory(t, r, "room") {
		if stored[m.ClientMsgID] {
			t.Fatalf("message %s stored twice", m.ClientMsgID)
		}
		stored[m.ClientMsgID] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged message %s is missing", id)
		}
	}
	for id := range stored {
		if !acked[id] {
			t.Fatalf("message %s was stored but never acknowledged", id)
		}
	}
	t.Logf("%d messages acknowledged around the full disk; all stored, nothing else", len(acked))
}
