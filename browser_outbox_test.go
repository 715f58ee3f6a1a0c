package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowser_Outbox (issue 14, item 3): messages written while the page
// cannot reach the server wait in an outbox that survives leaving the page, go
// out when the connection is back, in order and exactly once (one the
// server already stored is recognised by its clientMsgId), and a draft
// survives the reload too.
func TestBrowser_Outbox(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	alice.send("before the outage")
	bob.awaitMessage("before the outage")

	// The server goes away: the page's socket closes and cannot come back.
	ts.Stop()
	alice.waitJS("the page knows it is disconnected", `!document.getElementById('conn-banner').hidden`)

	for _, text := range []string{"queued one", "queued two", "maybe sent"} {
		alice.typeText("#composer-input", text)
		alice.pressEnter()
	}
	alice.waitJS("three messages wait in the outbox", `document.querySelectorAll('#messages .msg-queued').length === 3`)
	if n := eval[int](alice, `document.querySelectorAll('#messages .msg-failed').length`); n != 0 {
		t.Errorf("%d messages failed at once instead of waiting for the connection", n)
	}
	alice.typeText("#composer-input", "a draft, not sent")
	id := eval[string](alice, `(() => {
		const key = Object.keys(localStorage).find((k) => k.endsWith('.outbox'));
		const all = JSON.parse(localStorage.getItem(key) || '{}');
		return Object.values(all).flatMap((e) => e.items).find((it) => it.content === 'maybe sent')?.clientMsgId || '';
	})()`)
	if id == "" {
		t.Fatal("the outbox in localStorage has no clientMsgId for the waiting message")
	}

	// The tab leaves the page while the server is away, and opens it again
	// once it is back.
	alice.do(chromedp.Navigate("about:blank"))
	ts.start()
	bob, _ = signedIn(t, ts, "bob")
	bob.join("general")
	// "maybe sent" had reached the server before the connection dropped:
	// the page never heard its acknowledgement. Another connection of
	// alice stands in for that, with the page's own clientMsgId.
	aliceWS, _ := signedIn(t, ts, "alice")
	chatAck(t, aliceWS, "general", "maybe sent", id)
	bob.awaitMessage("maybe sent")

	alice.do(chromedp.Navigate(ts.URL()))
	alice.waitMessage("queued two")
	alice.waitJS("nothing waits any more", `!document.querySelector('#messages .msg-pending, #messages .msg-failed')`)
	want := []string{"queued one", "queued two"}
	for _, text := range want {
		bob.awaitMessage(text)
	}
	noMoreMessages(t, bob, 500*time.Millisecond)
	got := alice.messages()
	var texts []string
	for _, m := range got {
		texts = append(texts, m.Text)
	}
	count := map[string]int{}
	for _, s := range texts {
		count[s]++
	}
	for _, s := range []string{"queued one", "queued two", "maybe sent"} {
		if count[s] != 1 {
			t.Errorf("%q is shown %d times, want once: %q", s, count[s], texts)
		}
	}
	if v := eval[string](alice, `document.getElementById('composer-input').value`); v != "a draft, not sent" {
		t.Errorf("after the reload the composer holds %q, want the draft", v)
	}
}

// noMoreMessages fails if a room or direct message reaches c within d;
// other frames (presence, typing) are let through.
func noMoreMessages(t *testing.T, c *wsClient, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f := <-c.frames:
			if f.Type == "message" || f.Type == "privateMessage" {
				t.Errorf("one more %s frame: %s", f.Type, f.Data)
			}
		case <-deadline:
			return
		}
	}
}
