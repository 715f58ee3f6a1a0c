package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// Browser tests of what parley adds beyond the tutorial (PROTOCOL.md,
// "Beyond the tutorial"): editing and deleting, reactions, replies and
// threads, mentions and read state, search, moderation and private rooms,
// files. Each follows what people see in their own browsers. Helpers are
// in browser_helpers_test.go and at the end of this file.

// TestBrowser_MessageActions: alice and bob in one room edit, delete,
// react to and reply to messages, and each sees the other's changes live.
func TestBrowser_MessageActions(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	bob := b.newPage("bob", ts.URL())
	alice.signUp("alice") // the first account: an admin
	bob.signUp("bob")
	alice.joinRoom("general")
	bob.joinRoom("general")

	t.Run("edit and delete", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		alice.send("teh typo")
		bob.waitMessage("teh typo")

		// From the keyboard: Up in the timeline reaches the message, and
		// its actions appear.
		alice.focusLastMessage()
		if got := eval[string](alice, `document.activeElement.querySelector('.msg-text').textContent`); got != "teh typo" {
			t.Fatalf("the focused message is %q", got)
		}
		alice.click(`#messages .msg-tools [data-tool="edit"]`)
		alice.waitJS("the inline editor has the focus", `document.activeElement.matches('#messages .msg-edit-input')`)
		alice.fill("#messages .msg-edit-input", "the typo")
		alice.pressEnter()
		bob.waitMessage("the typo")
		bob.waitJS("bob sees (edited) with the time in its tooltip",
			rowOf("the typo")+`?.querySelector('.msg-edited')?.title.startsWith('Edited ')`)
		alice.waitJS("alice's editor closed", `!document.querySelector('#messages .msg-edit-input')`)

		// Escape cancels an edit; Up in the empty composer edits one's last message.
		alice.click("#composer-input")
		alice.pressKey("ArrowUp", 38)
		alice.waitJS("Up opened the editor on the last message", `document.activeElement.matches('#messages .msg-edit-input')`)
		alice.typeText("#messages .msg-edit-input", " and more")
		alice.pressKey("Escape", 27)
		alice.waitJS("Escape closed the editor", `!document.querySelector('#messages .msg-edit-input')`)
		alice.waitMessage("the typo")

		// bob, a plain member, may neither edit nor delete alice's message.
		bob.focusMessage("the typo")
		bob.waitJS("bob's actions on alice's message", `document.querySelector('#messages .msg-tools [data-tool="reply"]')`)
		if n := eval[int](bob, `document.querySelectorAll('#messages .msg-tools [data-tool="edit"], #messages .msg-tools [data-tool="delete"]').length`); n != 0 {
			t.Errorf("bob is offered %d edit or delete actions on alice's message", n)
		}

		// Deleting asks first; then everyone sees the tombstone.
		alice.focusMessage("the typo")
		alice.click(`#messages .msg-tools [data-tool="delete"]`)
		alice.waitText("#confirm-text", "Delete this message for everyone?")
		alice.click("#confirm-ok")
		for _, p := range []*page{alice, bob} {
			p.waitMessage("This message was deleted.")
			p.waitJS("the text is gone", `!`+messageShown("the typo"))
		}

		// The admin deletes bob's message from the moderator's menu.
		bob.send("spam spam spam")
		alice.waitMessage("spam spam spam")
		alice.focusMessage("spam spam spam")
		alice.click(`#messages .msg-tools [data-tool="delete"]`)
		alice.waitText("#confirm-text", "Delete bob's message")
		alice.click("#confirm-ok")
		bob.waitJS("bob's message is deleted for bob too", `!`+messageShown("spam spam spam"))
	})

	t.Run("reactions", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		alice.send("ship it?")
		bob.waitMessage("ship it?")
		alice.hover(rowOf("ship it?"))
		alice.click(`#messages .msg-tools [data-tool="react"]`)
		alice.click(`#emoji-picker [aria-label="thumbs up"]`)

		chip := rowOf("ship it?") + `?.querySelector('.reaction[data-emoji="👍"]')`
		bob.waitJS("bob sees alice's 👍, not his", chip+`?.textContent === '👍1' && `+chip+`.getAttribute('aria-pressed') === 'false'`)
		if label := eval[string](bob, chip+`.getAttribute('aria-label')`); !strings.Contains(label, "from alice") {
			t.Errorf("the reaction's label is %q, want it to name alice", label)
		}
		bob.click(`#messages .msg[data-id] .reaction[data-emoji="👍"]`)
		alice.waitJS("alice sees two", chip+`?.textContent === '👍2'`)
		alice.waitJS("the tooltip names both", chip+`.title === 'you and bob reacted with 👍'`)
		bob.waitJS("bob's own reaction is highlighted", chip+`?.classList.contains('is-mine')`)

		// Toggling off.
		bob.click(`#messages .msg[data-id] .reaction[data-emoji="👍"]`)
		alice.waitJS("back to one", chip+`?.textContent === '👍1'`)
		alice.click(`#messages .msg[data-id] .reaction[data-emoji="👍"]`)
		bob.waitJS("no reactions left", `!`+chip)
	})

	t.Run("replies and the thread", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		alice.send("Which day works for the retro?")
		bob.waitMessage("Which day works for the retro?")
		bob.hover(rowOf("Which day works for the retro?"))
		bob.click(`#messages .msg-tools [data-tool="reply"]`)
		bob.waitText("#reply-bar", "Replying to alice")
		bob.send("Thursday works")

		quote := rowOf("Thursday works") + `?.querySelector('.msg-quote')`
		for _, p := range []*page{alice, bob} {
			p.waitJS("the reply quotes its parent", quote+`?.textContent === 'aliceWhich day works for the retro?'`)
		}
		bob.waitJS("the reply bar is gone", `document.getElementById('reply-bar').hidden`)

		// The quote leads to the parent.
		alice.click(`#messages .msg[data-id] .msg-quote`)
		alice.waitJS("the parent is highlighted and focused", `document.activeElement === `+rowOf("Which day works for the retro?")+
			` && document.activeElement.classList.contains('msg-flash')`)

		// "1 reply" opens the thread, which takes a reply of its own.
		alice.click(`#messages .msg-replies`)
		alice.waitText("#thread", "Thursday works")
		alice.waitText("#thread .thread-divider", "1 reply")
		alice.typeText("#thread-input", "Thursday it is")
		alice.pressEnter()
		alice.waitText("#thread .thread-divider", "2 replies")
		got := eval[[]string](alice, `[...document.querySelectorAll('#thread-messages .msg[data-id] .msg-text')].map((el) => el.textContent)`)
		if want := []string{"Which day works for the retro?", "Thursday works", "Thursday it is"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("the thread shows %q, want %q", got, want)
		}
		bob.waitJS("bob sees the thread reply, quoting the parent",
			rowOf("Thursday it is")+`?.querySelector('.msg-quote')?.textContent.includes('Which day')`)
		bob.waitText(`#messages .msg-replies`, "2 replies")
		alice.click("#thread-close")
		alice.waitJS("the thread closed", `document.getElementById('thread').hidden`)
	})
}

// TestBrowser_MentionsAndReadState: a mention in a room bob is not
// looking at gives the room a mention badge; reading it clears the
// badge, on the server too, so it stays cleared after a reload.
func TestBrowser_MentionsAndReadState(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	bob := b.newPage("bob", ts.URL())
	alice.signUp("alice")
	bob.signUp("bob")
	for _, p := range []*page{bob, alice} {
		p.joinRoom("random")
		p.joinRoom("general")
	}
	alice.openRoom("random")

	// alice types "@b" and picks bob from the list.
	alice.typeText("#composer-input", "@b")
	alice.waitText("#mention-list", "bob")
	alice.pressEnter()
	alice.waitJS("bob's name is completed", `document.getElementById('composer-input').value === '@bob '`)
	alice.typeText("#composer-input", "can you look at the release notes?")
	alice.pressEnter()
	alice.waitMessage("@bob can you look at the release notes?")

	random := `#room-list [data-room="random"]`
	bob.waitText(random+" .nav-mention", "@1")
	bob.waitText(random+" .badge", "1")
	if got := bob.text("#conv-title"); got != "#general" {
		t.Fatalf("bob's open conversation is %q, want #general", got)
	}
	bob.openRoom("random")
	bob.waitJS("the mention is highlighted", `document.querySelector('#messages .msg-mention .mention-me')?.textContent === '@bob'`)
	bob.waitJS("the badges are gone", `document.querySelector('`+random+` .nav-mention').hidden && document.querySelector('`+random+` .badge').hidden`)

	// The server has the read marker: a new sign-in has nothing unread.
	token := eval[string](bob, `localStorage.getItem('parley.token')`)
	deadline := time.Now().Add(browserWait)
	for {
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"token": token})
		var a authenticatedData
		decodeInto(t, c.expect("authenticated"), &a)
		c.conn.Close()
		var unread, mentions int
		for _, r := range a.Rooms {
			if r.RoomID == "random" {
				unread, mentions = *r.Unread, *r.Mentions
			}
		}
		if unread == 0 && mentions == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after bob read #random the server still counts %d unread, %d mentions", unread, mentions)
		}
		time.Sleep(50 * time.Millisecond)
	}

	bob.openRoom("general")
	bob.reload()
	bob.waitText("#conv-title", "#general")
	bob.waitJS("#random is listed", `document.querySelector('`+random+`')`)
	if eval[bool](bob, `!document.querySelector('`+random+` .nav-mention').hidden || !document.querySelector('`+random+` .badge').hidden`) {
		t.Error("after a reload #random shows unread or mention badges again")
	}

	// Another mention while bob is elsewhere; bob's other device reads it
	// (readUpdated), and the badge goes on this one too.
	chatAck(t, mustSignIn(t, ts, "alice"), "random", "@bob one more thing", "m2")
	bob.waitText(random+" .nav-mention", "@1")
	phone := dial(t, ts.WSURL())
	phone.send("auth", map[string]string{"token": token})
	phone.expect("authenticated")
	var h historyOutData
	phone.send("history", map[string]string{"roomId": "random"})
	decodeInto(t, phone.await("history"), &h)
	phone.send("read", map[string]string{"roomId": "random", "messageId": h.Messages[len(h.Messages)-1].ID})
	bob.waitJS("the other device's read cleared the badge", `document.querySelector('`+random+` .nav-mention').hidden`)
}

// TestBrowser_Search finds a message far back in a room's history and
// opens it in context; the newest messages are one click away.
func TestBrowser_Search(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0 // bob writes faster than people do
	cfg.History.PerRoom = 0          // keep every message
	ts := startServer(t, &cfg)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	chatAck(t, bob, "general", "The deploy needle is in the haystack", "needle")
	const filler = 110 // more than two pages: the needle is not near the newest page
	for i := 1; i <= filler; i++ {
		chatAck(t, bob, "general", fmt.Sprintf("filler %d", i), fmt.Sprintf("f%d", i))
	}

	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.joinRoom("random")

	alice.typeText("#search-input", "NEEDLE\n")
	alice.waitText("#search-summary", "1 result for “NEEDLE”")
	alice.waitText("#search-results .search-group-title", "#general")
	if got := eval[string](alice, `document.querySelector('#search-results mark')?.textContent`); got != "needle" {
		t.Errorf("the result marks %q, want the match as written, needle", got)
	}
	alice.click(`#search-results .search-result`)
	alice.waitText("#conv-title", "#general")
	alice.waitJS("the message is shown, highlighted and focused",
		`document.activeElement === `+rowOf("The deploy needle is in the haystack")+` && document.activeElement.classList.contains('msg-flash')`)
	alice.waitJS("a button leads to the newest messages", `!document.getElementById('jump-latest').hidden`)
	if eval[bool](alice, messageShown(fmt.Sprintf("filler %d", filler))) {
		t.Error("the newest message is shown next to the old one, with a gap between them")
	}

	// New messages meanwhile wait behind "Jump to latest".
	chatAck(t, bob, "general", "fresh news", "fresh")
	alice.click("#jump-latest")
	alice.waitMessage("fresh news")
	alice.waitJS("the button is gone", `document.getElementById('jump-latest').hidden`)
	if eval[bool](alice, messageShown("The deploy needle is in the haystack")) {
		t.Error("the old message is still shown next to the newest page")
	}
}

// TestBrowser_Moderation: the owner of a room mutes, unmutes and removes
// a member, who sees why; a member sees no moderation actions. A private
// room is created with a topic, and someone invited sees it appear.
func TestBrowser_Moderation(t *testing.T) {
	ts := startServer(t, nil)
	root, _ := signedIn(t, ts, "root") // the admin, so alice is only the room's owner
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	bob := b.newPage("bob", ts.URL())
	alice.signUp("alice")
	bob.signUp("bob")
	alice.joinRoom("club")
	root.join("club") // after alice, who stays the owner
	bob.joinRoom("club")
	alice.waitJS("alice is the owner", `document.querySelector('#members-online .role-owner')`)

	t.Run("a member has no moderation actions", func(t *testing.T) {
		bob := bob.in(t)
		bob.waitJS("alice is listed, marked owner", `document.querySelector('#members-online [data-user="alice"] .role-owner')`)
		bob.waitJS("root is listed, marked server admin", `document.querySelector('#members [data-user="root"] .role-admin')`)
		if n := eval[int](bob, `document.querySelectorAll('#members .role-admin').length`); n != 1 {
			t.Errorf("%d members marked admin, want root alone", n)
		}
		if n := eval[int](bob, `document.querySelectorAll('[data-menu]').length`); n != 0 {
			t.Errorf("bob sees %d moderation menus", n)
		}
	})

	t.Run("mute, unmute, remove", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		bob.send("hello club")

		alice.memberAction("bob", "mute")
		alice.waitText("#mod-title", "Mute bob in #club")
		alice.click(`#mod-duration input[value="60"]`)
		alice.typeText("#mod-reason", "cool down")
		alice.click("#mod-submit")
		bob.waitJS("bob's composer is off", `document.getElementById('composer-input').disabled`)
		bob.waitText("#composer-notice", "You were muted in #club by alice")
		bob.waitText("#composer-notice", "cool down")
		bob.waitJS("a line says alice muted bob", sysLine("alice muted you until"))
		alice.waitJS("the member list marks bob muted", `document.querySelector('#members-online [data-user="bob"] .muted-badge')`)

		// The mute and its end survive a reload: they come back in joined.
		bob.reload()
		bob.waitJS("after a reload bob's composer is still off", `document.getElementById('composer-input').disabled`)
		bob.waitText("#composer-notice", "You were muted in #club")
		bob.waitText("#composer-notice", "until")

		alice.memberAction("bob", "unmute")
		bob.waitJS("bob's composer is on again", `!document.getElementById('composer-input').disabled && document.getElementById('composer-notice').hidden`)
		bob.send("thanks")

		alice.memberAction("bob", "kick")
		alice.typeText("#mod-reason", "bye for now")
		alice.click("#mod-submit")
		bob.waitJS("#club left bob's sidebar", `!document.querySelector('#room-list [data-room="club"]')`)
		bob.waitToast("You were removed from #club by alice. Reason: “bye for now”.")
		alice.waitJS("alice's timeline says what happened",
			`[...document.querySelectorAll('#messages .sys-line')].at(-1)?.textContent.includes('You removed bob from the room: “bye for now”')`)
		alice.waitJS("bob left the member list", `!document.querySelector('#members [data-user="bob"]')`)
	})

	t.Run("a private room, and an invitation", func(t *testing.T) {
		alice, bob := alice.in(t), bob.in(t)
		alice.click("#browse-rooms")
		alice.typeText("#join-name", "secret")
		alice.click("#join-options summary")
		alice.click("#join-private")
		alice.typeText("#join-topic", "Launch plans\n")
		alice.waitText("#conv-title", "#secret")
		alice.waitJS("the header shows a lock", `!document.getElementById('conv-lock').hidden`)
		alice.waitText("#conv-topic", "Launch plans")
		alice.send("just us for now")

		alice.click("#room-settings")
		alice.typeText("#invite-name", "bob")
		alice.click("#invite-submit")
		alice.waitText("#room-dialog-status", "bob was added to #secret.")
		alice.click(`#room-dialog [data-close]`)

		bob.waitJS("#secret appears in bob's sidebar", `document.querySelector('#room-list [data-room="secret"]')`)
		bob.waitToast("alice added you to the private room #secret.")
		bob.openRoom("secret")
		bob.waitText("#conv-topic", "Launch plans")
		bob.waitMessage("just us for now")
		bob.click("#room-settings")
		bob.waitJS("bob, a member, can neither invite to the private room nor change its topic",
			`document.getElementById('invite-form').hidden && document.getElementById('room-topic').readOnly`)
	})
}

// TestBrowser_ServerWideBan: an admin bans an account from the server
// from a member's menu, and lifts the ban in a room's settings.
func TestBrowser_ServerWideBan(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	root := b.newPage("root", ts.URL())
	root.signUp("root") // the first account: an admin
	root.joinRoom("lobby")
	carol, _ := signedIn(t, ts, "carol")
	carol.join("lobby")

	root.memberAction("carol", "global-ban")
	root.waitText("#mod-title", "Ban carol from the server")
	root.typeText("#mod-reason", "spam")
	root.click("#mod-submit")
	carol.await("loggedOut")
	root.waitJS("carol left the member list", `!document.querySelector('#members [data-user="carol"]')`)
	root.waitJS("the timeline says why",
		`[...document.querySelectorAll('#messages .sys-line')].some((el) => el.textContent.includes('carol was banned from the server by root: “spam”'))`)
	c := dial(t, ts.WSURL())
	c.send("auth", map[string]string{"username": "carol", "password": "carol-password"})
	c.expectError(codeBanned)

	root.click("#room-settings")
	root.click("#unban-global")
	root.typeText("#unban-name", "carol\n")
	root.waitText("#room-dialog-status", "carol may sign in again.")
	dial(t, ts.WSURL()).auth("carol", "carol-password")
}

// TestBrowser_Files: an image sent from one browser shows as a preview in
// the other; an HTML file shows as a download, never inline.
func TestBrowser_Files(t *testing.T) {
	ts := startServer(t, nil)
	dir := t.TempDir()
	png := filepath.Join(dir, "pixel.png")
	html := filepath.Join(dir, "page.html")
	if err := os.WriteFile(png, pngBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(html, []byte(`<html><script>window.__xss = 'file'</script></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	bob := b.newPage("bob", ts.URL())
	alice.signUp("alice")
	bob.signUp("bob")
	alice.joinRoom("general")
	bob.joinRoom("general")

	// An image alone, no text.
	alice.do(chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), []string{png}))
	alice.waitJS("the upload is done", `document.querySelector('#attachments .attachment.is-done')`)
	alice.click("#composer-input")
	alice.pressEnter()
	img := `document.querySelector('#messages .msg[data-id] .msg-image img')`
	for _, p := range []*page{bob, alice} {
		p.waitJS("the image preview loaded", img+`?.complete && `+img+`.naturalWidth === 1`)
	}
	if src := eval[string](bob, img+`.getAttribute('src')`); !strings.HasPrefix(src, "/files/") || !strings.HasSuffix(src, "/pixel.png") {
		t.Errorf("the preview's src is %q", src)
	}
	if target := eval[string](bob, `document.querySelector('#messages .msg-image').target`); target != "_blank" {
		t.Errorf("the preview opens in %q, want a new tab", target)
	}
	alice.waitJS("the tray is empty", `document.getElementById('attachments').hidden`)

	// HTML: a download chip with the text.
	alice.do(chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), []string{html}))
	alice.waitJS("the upload is done", `document.querySelector('#attachments .attachment.is-done')`)
	alice.send("the page, as a file")
	chip := rowOf("the page, as a file") + `?.querySelector('a.file-chip')`
	bob.waitJS("bob sees a download chip", chip+`?.querySelector('.file-name').textContent === 'page.html'`)
	if !eval[bool](bob, chip+`.hasAttribute('download') && `+chip+`.getAttribute('href').endsWith('/page.html')`) {
		t.Error("the HTML file's chip is not a download link")
	}
	if n := eval[int](bob, `document.querySelectorAll('#messages iframe, #messages object, #messages embed, #messages img[src$=".html"]').length`); n != 0 {
		t.Errorf("the HTML file is shown inline (%d elements)", n)
	}
	if v := eval[string](bob, `String(window.__xss)`); v != "undefined" {
		t.Errorf("the uploaded page ran: window.__xss = %s", v)
	}
}

// --- helpers ---

// rowOf is a JavaScript expression: the confirmed message row with
// exactly this text, or undefined.
func rowOf(text string) string {
	return `[...document.querySelectorAll('#messages .msg[data-id]')].find((li) => li.querySelector('.msg-text')?.textContent === ` + js(text) + `)`
}

// focusMessage gives a message the focus, as the arrow keys in the
// timeline do; its actions appear.
func (p *page) focusMessage(text string) {
	p.t.Helper()
	p.waitMessage(text)
	p.do(chromedp.Evaluate[chromedp.Void](rowOf(text) + `.focus()`))
	p.waitJS("the message's actions show", rowOf(text)+`.querySelector('.msg-tools')`)
}

// focusLastMessage moves into the messages with the arrow keys, as a
// keyboard user does, and checks the focused one shows its actions.
func (p *page) focusLastMessage() {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('timeline').focus()`))
	p.pressKey("ArrowUp", 38)
	p.waitJS("a message has the focus, with its actions", `document.activeElement.matches('#messages .msg[data-id]') && document.activeElement.querySelector('.msg-tools')`)
}

// hover moves the mouse over the element an expression returns.
func (p *page) hover(expr string) {
	p.t.Helper()
	p.waitJS("the element to hover is shown", expr)
	type point struct{ X, Y float64 }
	at := eval[point](p, `(() => { const el = `+expr+`; el.scrollIntoView({ block: 'nearest' }); const r = el.getBoundingClientRect(); return { X: r.left + r.width / 2, Y: r.top + r.height / 2 }; })()`)
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: at.X, Y: at.Y})
		return err
	}))
}

// pressKey presses a key (its DOM name and key code) in the focused element.
func (p *page) pressKey(key string, code int64) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: key, Code: key, WindowsVirtualKeyCode: code, NativeVirtualKeyCode: code,
			})
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// waitToast waits for a toast (a notice at the bottom) with this text.
func (p *page) waitToast(text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("a toast says %q", text), `[...document.querySelectorAll('#toasts .toast')].some((el) => el.textContent.includes(`+js(text)+`))`)
}

// memberAction opens the moderation menu of a member of the open room
// and chooses an action (data-action).
func (p *page) memberAction(username, action string) {
	p.t.Helper()
	p.click(`#members [data-menu=` + js(username) + `]`)
	p.click(`#popup-menu [data-action=` + js(action) + `]`)
}

// mustSignIn signs a user in over the WebSocket (for sending as them).
func mustSignIn(t *testing.T, ts *testServer, username string) *wsClient {
	t.Helper()
	c, _ := signedIn(t, ts, username)
	return c
}
