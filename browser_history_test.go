package main

import (
	"fmt"
	"testing"
)

// Browser tests of long histories (issue 14): what the top of the
// timeline says, scrolling back through thousands of messages, and a
// timeline that stays small however much arrives.

// fillRoom posts n messages "prefix 1" … "prefix n" to room from c as
// fast as the server takes them, and waits until every one is stored.
func fillRoom(t *testing.T, c *wsClient, room, prefix string, n int) {
	t.Helper()
	go func() {
		for i := 1; i <= n; i++ {
			c.send("chat", map[string]string{"roomId": room, "content": fmt.Sprintf("%s %d", prefix, i)})
		}
	}()
	for i := 1; i <= n; i++ {
		c.await("message")
	}
}

// TestBrowser_HistoryTrimmed: with the default history.per_room of 100,
// 130 messages leave 31..130 on the server. Scrolling back ends at 31
// under a notice that older messages are not kept, not under "the very
// beginning".
func TestBrowser_HistoryTrimmed(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	fillRoom(t, bob, "general", "message", 130)

	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.waitMessage("message 130")
	alice.waitJS("the history was scrolled back to its start", `(() => {
		document.getElementById('timeline').scrollTop = 0;
		return !document.getElementById('timeline-start').hidden;
	})()`)
	alice.waitMessage("message 31")
	alice.waitText("#timeline-start", "Older messages are not kept on this server")
	if first := alice.messages()[0].Text; first != "message 31" {
		t.Errorf("the oldest message shown is %q, want message 31", first)
	}
	if eval[bool](alice, `document.getElementById('timeline-start').textContent.includes('very beginning')`) {
		t.Error("the top of a trimmed history says it is the very beginning")
	}

	// A room whose whole history is kept still starts at the beginning.
	alice.joinRoom("quiet")
	alice.send("first words")
	alice.waitText("#timeline-start", "This is the very beginning of #quiet")
}
