package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive the web client in headless Chromium against a
// real server, and check what a person would see. Helpers are in
// browser_helpers_test.go.

// TestBrowser_Chat follows two people, each in their own browser, through
// the everyday things: signing up, a room, typing, direct messages,
// reloading, signing out.
func TestBrowser_Chat(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	bob := b.newPage("bob", ts.URL())
	alice.signUp("alice")
	bob.signUp("bob")
	alice.joinRoom("general")
	bob.joinRoom("general")

	t.Run("messages both ways", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		alice.send("Hello from alice")
		bob.waitMessage("Hello from alice")
		bob.send("Hi alice, bob here")
		alice.waitMessage("Hi alice, bob here")

		// Shift+Enter starts a new line instead of sending.
		bob.typeText("#composer-input", "first line")
		bob.do(chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)))
		bob.typeText("#composer-input", "second line")
		bob.pressEnter()
		alice.waitMessage("first line\nsecond line")
		bob.waitMessage("first line\nsecond line")

		want := []shownMessage{
			{"alice", "Hello from alice"},
			{"bob", "Hi alice, bob here"},
			{"bob", "first line\nsecond line"},
		}
		for _, p := range []*page{alice, bob} {
			if got := p.messages(); !slices.Equal(got, want) {
				t.Errorf("%s sees %q, want %q", p.name, got, want)
			}
		}
		alice.waitJS("bob is listed online in #general", `document.querySelector('#members-online [data-user="bob"]')`)
		alice.waitText("#conv-subtitle", "2 members · 2 online")
	})

	t.Run("typing indicator appears and clears", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		bob.typeText("#composer-input", "I am typing a long thought")
		alice.waitText("#typing", "bob is typing…")
		bob.pressEnter()
		alice.waitMessage("I am typing a long thought")
		alice.waitJS("the typing indicator is gone", `document.getElementById('typing').textContent === ''`)
	})

	t.Run("a direct message arrives with a badge", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		alice.click(`#members-online [data-user="bob"]`)
		alice.waitText("#conv-title", "bob")
		alice.send("psst, a secret for bob")

		// bob is still in #general: the conversation appears with a badge,
		// and the tab title counts it.
		bob.waitText(`#dm-list [data-peer="alice"] .badge`, "1")
		bob.waitJS("the tab title counts the unread message", `document.title.startsWith('(1) ')`)
		if got := bob.text("#conv-title"); got != "#general" {
			t.Errorf("bob's open conversation is %q, want #general", got)
		}
		bob.click(`#dm-list [data-peer="alice"]`)
		bob.waitText("#conv-title", "alice")
		bob.waitMessage("psst, a secret for bob")
		bob.waitJS("the badge is gone", `document.querySelector('#dm-list [data-peer="alice"] .badge').hidden`)
		bob.waitJS("the tab title has no count", `!document.title.startsWith('(')`)
		bob.send("got it")
		alice.waitMessage("got it")
	})

	t.Run("reload keeps the session", func(t *testing.T) {
		bob := bob.in(t)
		bob.reload()
		bob.waitText("#me-name", "bob")
		if !eval[bool](bob, `document.getElementById('signin').hidden`) {
			t.Error("the sign-in form shows after a reload")
		}
		// Still in the conversation that was open, with its messages.
		bob.waitText("#conv-title", "alice")
		bob.waitMessage("psst, a secret for bob")
		bob.openRoom("general")
		bob.waitMessage("Hello from alice")

		// A second tab of the same browser signs in by itself too.
		tab := bob.newTab("bob's second tab", ts.URL())
		tab.waitText("#me-name", "bob")
		tab.waitText("#conv-title", "#general")
		tab.waitMessage("Hello from alice")
	})

	t.Run("direct messages sent while offline appear at sign-in", func(t *testing.T) {
		// erin has an account and a room but no page open; carol writes
		// to her.
		erin, _ := signedIn(t, ts, "erin")
		erin.join("lobby")
		erin.conn.Close()
		carol, _ := signedIn(t, ts, "carol")
		for _, text := range []string{"welcome aboard, erin", "ping me when you are in"} {
			carol.send("private", map[string]string{"targetUsername": "erin", "content": text})
			carol.await("privateMessageSent")
		}

		p := b.newPage("erin", ts.URL()).in(t)
		p.signIn("erin", "erin-password")
		p.waitText("#conv-title", "#lobby")
		p.waitText(`#dm-list [data-peer="carol"] .badge`, "2")
		p.click(`#dm-list [data-peer="carol"]`)
		p.waitMessage("welcome aboard, erin")
		p.waitMessage("ping me when you are in")
		p.waitJS("the badge is gone", `document.querySelector('#dm-list [data-peer="carol"] .badge').hidden`)

		// Seen on the page, so read on the server: the next sign-in has
		// nothing unread. The server handles a connection's frames in order,
		// so once the room list (asked for after the read) is shown, the
		// read has been stored.
		p.click("#browse-rooms")
		p.waitJS("the room list is shown", `document.querySelector('#all-rooms [data-join="lobby"]')`)
		if _, a := signedIn(t, ts, "erin"); len(a.Unread) != 0 {
			t.Errorf("after reading on the page, erin still has unread %+v", a.Unread)
		}
	})

	t.Run("sign out", func(t *testing.T) {
		alice := alice.in(t)
		alice.click("#signout")
		alice.waitText("#signin-error", "You have signed out.")
		alice.reload()
		alice.waitJS("the sign-in form shows after a reload", `!document.getElementById('signin').hidden && document.getElementById('app').hidden`)

		// Wrong password: the server's answer is shown.
		alice.signIn("alice", "not-alices-password")
		alice.waitText("#signin-error", "Wrong username or password")
	})
}

// TestBrowser_ReconnectAfterRestart restarts the server under an open
// page. The page shows it is disconnected, marks what could not be sent,
// reconnects by itself and shows the messages sent while it was away,
// once each and in order.
func TestBrowser_ReconnectAfterRestart(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	alice.send("before the restart")

	// Keep the page away from the server until the test lets it back.
	alice.setOffline(true)
	ts.Restart()
	alice.waitText("#conn-banner", "The server is restarting.")

	alice.typeText("#composer-input", "written while away")
	alice.pressEnter()
	alice.waitText("#messages .msg-queued", "Waiting for the connection")

	bob, _ = signedIn(t, ts, "bob")
	for i := 1; i <= 3; i++ {
		chatAck(t, bob, "general", fmt.Sprintf("missed %d", i), fmt.Sprintf("m%d", i))
	}

	alice.setOffline(false)
	alice.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('reconnect-now').click()`))
	alice.waitJS("the connection banner is gone", `document.getElementById('conn-banner').hidden`)

	// The message written while away goes out by itself, once, after
	// what was missed.
	alice.waitMessage("written while away")
	want := []shownMessage{
		{"alice", "before the restart"},
		{"bob", "missed 1"},
		{"bob", "missed 2"},
		{"bob", "missed 3"},
		{"alice", "written while away"},
	}
	if got := alice.messages(); !slices.Equal(got, want) {
		t.Errorf("after reconnecting alice sees %q, want %q", got, want)
	}
	var m messageFrame
	decodeInto(t, bob.await("message"), &m)
	if m.Content != "written while away" || m.SenderName != "alice" {
		t.Errorf("bob got %+v, want alice's message from the outbox", m)
	}
	noMoreMessages(t, bob, 300*time.Millisecond)
	if n := eval[int](alice, `document.querySelectorAll('#messages .msg-pending, #messages .msg-failed').length`); n != 0 {
		t.Errorf("%d own messages are still pending or failed", n)
	}
}

// TestBrowser_History covers a conversation longer than one page: older
// messages load on demand without gaps or duplicates, and a reader who has
// scrolled up is told about new messages instead of being moved.
func TestBrowser_History(t *testing.T) {
	// bob writes faster than the default allowance of messages lets him.
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	const total = 70 // more than the 50 a join returns
	for i := 1; i <= total; i++ {
		chatAck(t, bob, "general", fmt.Sprintf("message %d", i), fmt.Sprintf("h%d", i))
	}

	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.waitMessage(fmt.Sprintf("message %d", total))
	if n := len(alice.messages()); n >= total {
		t.Fatalf("the first page already has %d messages; the test needs more than a page", n)
	}

	alice.click("#load-older")
	alice.waitMessage("message 1")
	alice.waitText("#timeline-start", "This is the very beginning of #general")
	got := alice.messages()
	if len(got) != total {
		t.Fatalf("after loading older messages alice sees %d messages, want %d", len(got), total)
	}
	for i, m := range got {
		if want := fmt.Sprintf("message %d", i+1); m.Text != want {
			t.Fatalf("message %d is %q, want %q", i, m.Text, want)
		}
	}

	// Scrolled up: a new message does not move the view; a pill says so.
	alice.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('timeline').scrollTop = 0`))
	chatAck(t, bob, "general", "news while you read", "news")
	alice.waitMessage("news while you read")
	alice.waitJS("the new messages pill shows", `!document.getElementById('new-pill').hidden`)
	if top := eval[float64](alice, `document.getElementById('timeline').scrollTop`); top > 100 {
		t.Errorf("the view moved to %.0fpx while the reader was at the top", top)
	}
	alice.click("#new-pill")
	alice.waitJS("the view is at the newest message", `(() => { const s = document.getElementById('timeline'); return s.scrollHeight - s.scrollTop - s.clientHeight < 50; })()`)
	alice.waitJS("the pill is gone", `document.getElementById('new-pill').hidden`)
}

// TestBrowser_PhoneLayout checks the narrow layout: the sidebar is a
// drawer behind a menu button, and choosing a conversation closes it.
func TestBrowser_PhoneLayout(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	p := b.newPage("alice", ts.URL())
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	p.signUp("alice")
	p.waitJS("the sidebar is hidden", `getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'`)

	p.click("#sidebar-open")
	p.waitJS("the sidebar is shown", `getComputedStyle(document.getElementById('sidebar')).visibility === 'visible'`)
	p.click("#browse-rooms")
	p.typeText("#join-name", "general\n")
	p.waitText("#conv-title", "#general")
	p.waitJS("the drawer closed", `getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'`)
	p.send("hello from a phone")

	p.click("#members-toggle")
	p.waitJS("the member list is shown", `getComputedStyle(document.getElementById('members')).visibility === 'visible'`)
	p.waitText("#members-online", "alice")
	p.click("#members-close")
	p.waitJS("the member list is hidden", `getComputedStyle(document.getElementById('members')).visibility === 'hidden'`)
}

// TestBrowser_NoScriptInjection sends markup and script in every place a
// user controls text. The page must show it as the literal text it is,
// create no element from it, and run none of it.
func TestBrowser_NoScriptInjection(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())

	// Usernames cannot hold markup; the server's refusal is shown as text.
	alice.signIn(`<img src=x onerror="window.__xss='username'">`, "password-123")
	alice.waitText("#signin-error", "Username must be")
	alice.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('signin-username').value = ''; document.getElementById('signin-password').value = ''`))
	alice.signUp("alice")
	alice.joinRoom("general")

	mallory, _ := signedIn(t, ts, "mallory")
	mallory.join("general")
	payloads := []string{
		`<img src=x onerror="window.__xss='img'">`,
		`<img src=x onerror=alert(1)>`,
		`<script>window.__xss='script'</script>`,
		`<script>alert(1)</script>`,
		`"><svg onload="window.__xss='svg'"><a href="javascript:window.__xss='href'">click</a>`,
		`javascript:window.__xss='scheme' and data:text/html,<script>alert(1)</script>`,
		`<style>body{display:none}</style><b onmouseover="window.__xss='b'">bold?</b>`,
	}
	for i, text := range payloads {
		chatAck(t, mallory, "general", text, fmt.Sprintf("x%d", i))
	}
	// A link among markup: only the http URL becomes a link.
	linkText := `see https://example.com/docs?a=1&b=2 or <a href="https://evil.example">this</a>`
	chatAck(t, mallory, "general", linkText, "link")
	for _, text := range payloads {
		alice.waitMessage(text)
	}
	alice.waitMessage(linkText)

	// Markup alice types herself, through her own pending and acknowledged rendering.
	own := `<img src=x onerror="window.__xss='own'"> & <i>not italic</i>`
	alice.send(own)

	// And in a direct message.
	dm := `<iframe src="javascript:window.__xss='iframe'"></iframe>`
	mallory.send("private", map[string]string{"targetUsername": "alice", "content": dm})
	alice.waitText(`#dm-list [data-peer="mallory"] .badge`, "1")
	alice.click(`#dm-list [data-peer="mallory"]`)
	alice.waitMessage(dm)
	alice.openRoom("general")
	alice.waitMessage(own)

	if v := eval[string](alice, `String(window.__xss)`); v != "undefined" {
		t.Errorf("injected script ran: window.__xss = %s", v)
	}
	forbidden := eval[[]string](alice, `[...document.querySelectorAll('#messages *')]
		.filter((el) => !['LI', 'DIV', 'SPAN', 'TIME', 'A', 'BUTTON', 'STRONG', 'EM', 'CODE', 'PRE', 'BLOCKQUOTE'].includes(el.tagName) ||
			[...el.attributes].some((a) => a.name.startsWith('on') || a.name === 'style'))
		.map((el) => el.outerHTML)`)
	if len(forbidden) > 0 {
		t.Errorf("message content created elements: %q", forbidden)
	}
	type link struct {
		Href   string `json:"href"`
		Text   string `json:"text"`
		Rel    string `json:"rel"`
		Target string `json:"target"`
	}
	links := eval[[]link](alice, `[...document.querySelectorAll('#messages a')].map((a) => ({
		href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target }))`)
	// Each URL written out becomes a link that shows where it goes; the
	// <a> tag itself is only text.
	want := []link{
		{Href: "https://example.com/docs?a=1&b=2", Text: "https://example.com/docs?a=1&b=2", Rel: "noopener noreferrer", Target: "_blank"},
		{Href: "https://evil.example/", Text: "https://evil.example", Rel: "noopener noreferrer", Target: "_blank"},
	}
	if !slices.Equal(links, want) {
		t.Errorf("links in the messages: %+v, want %+v", links, want)
	}
	if visible := eval[bool](alice, `document.body.offsetParent !== null || getComputedStyle(document.body).display !== 'none'`); !visible {
		t.Error("a <style> in a message hid the page")
	}
}

// TestBrowser_Notifications checks the opt-in browser notifications: none
// before the user turns them on, then one for each direct message and
// each @mention of the user, and none for other messages.
func TestBrowser_Notifications(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.grantNotifications(ts.URL())
	alice.signUp("alice")
	alice.joinRoom("random")
	alice.joinRoom("general")
	alice.recordNotifications()
	mallory, _ := signedIn(t, ts, "mallory")
	mallory.join("random")

	mallory.send("private", map[string]string{"targetUsername": "alice", "content": "before you opted in"})
	alice.waitText(`#dm-list [data-peer="mallory"] .badge`, "1")

	alice.click("#notify-toggle")
	alice.waitJS("notifications are on", `document.getElementById('notify-toggle').getAttribute('aria-pressed') === 'true'`)
	chatAck(t, mallory, "random", "nothing for alice here", "n1")
	chatAck(t, mallory, "random", "@alice lunch at noon?", "n2")
	mallory.send("private", map[string]string{"targetUsername": "alice", "content": "psst"})
	alice.waitText(`#room-list [data-room="random"] .badge`, "2")
	alice.waitText(`#dm-list [data-peer="mallory"] .badge`, "2")

	got := eval[[]string](alice, `window.__notes`)
	want := []string{"mallory in #random | @alice lunch at noon?", "mallory | psst"}
	if !slices.Equal(got, want) {
		t.Errorf("notifications %q, want %q", got, want)
	}
	alice.waitJS("the tab title counts the unread messages", `document.title.startsWith("(4) ")`)
}
