package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser_InviteLink: on a server that takes members by invitation
// (a new database's default), the first account signs up freely; its
// owner of #welcome makes an invite link in the room's settings; a new
// person opens the link in their own browser, creates an account, and
// lands in #welcome, where the conversation goes both ways.
func TestBrowser_InviteLink(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Auth.Registration = ""
	ts := startServer(t, &cfg)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("welcome")
	alice.send("Welcome, whoever comes next")

	alice.click("#room-settings")
	alice.waitJS("the invite link section shows", `!document.getElementById('link-form').hidden`)
	alice.click("#link-create")
	alice.waitJS("the link is shown", `document.getElementById('link-url').value.includes('#invite=')`)
	link := eval[string](alice, `document.getElementById('link-url').value`)
	alice.do(evalVoid(`document.getElementById('room-dialog').close()`))

	// Without the link, sign-up is refused.
	stranger := b.newPage("stranger", ts.URL())
	stranger.createAccount("stranger", "stranger-password")
	stranger.waitText("#signin-error", "invite link")

	// The link is the server's URL with its secret in the fragment.
	carol := b.newPage("carol", ts.URL()+link[strings.Index(link, "/#invite="):])
	carol.waitJS("the page offers to create an account", `!document.getElementById('signin-confirm-field').hidden`)
	carol.waitText("#signin-lede", "invited")
	carol.typeText("#signin-username", "carol")
	carol.typeText("#signin-password", "carol-password")
	carol.typeText("#signin-confirm", "carol-password")
	carol.click("#signin-submit")
	carol.waitText("#conv-title", "#welcome")
	carol.waitMessage("Welcome, whoever comes next")
	if hash := eval[string](carol, `location.hash`); hash != "" {
		t.Errorf("the invite's secret stays in the address bar: %q", hash)
	}
	carol.send("Thanks for the invite!")
	alice.waitMessage("Thanks for the invite!")
}

// TestBrowser_Webhook: a room's owner adds a webhook in the room's
// settings, and what a script posts to its URL shows in the room, from
// the hook's bot, with the label it gave, as text.
func TestBrowser_Webhook(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("ops")

	alice.click("#room-settings")
	alice.waitJS("the webhooks section shows", `!document.getElementById('hooks-form').hidden`)
	alice.typeText("#hook-name", "ci")
	alice.click("#hook-create")
	alice.waitJS("the hook's URL is shown", `document.getElementById('hook-url').value.includes('/hooks/')`)
	alice.waitJS("the hook is listed", `document.querySelector('#hooks-list [data-hook]')`)
	url := eval[string](alice, `document.getElementById('hook-url').value`)
	alice.do(evalVoid(`document.getElementById('room-dialog').close()`))

	text := `Deploy <b>v2</b> finished`
	if status, r := postHook(t, url, "application/json", `{"text": "`+text+`", "username": "GitLab CI"}`); status != 200 {
		t.Fatalf("POST to the hook: %d %+v", status, r)
	}
	alice.waitMessage(text) // as text: the tags are not markup
	if got := alice.messages(); got[len(got)-1].Sender != "ci" {
		t.Errorf("the hook's message shows as sent by %q", got[len(got)-1].Sender)
	}
	alice.waitJS("the message carries the bot's label", `[...document.querySelectorAll('#messages .msg-bot')].some((el) => el.textContent === 'bot · GitLab CI')`)
	if n := eval[int](alice, `document.querySelectorAll('#messages .msg-text b').length`); n != 0 {
		t.Errorf("the hook's text was rendered as HTML")
	}
	alice.waitJS("the bot is in the member list, marked", `document.querySelector('#members-offline [data-user="ci"] .member-tag, #members-online [data-user="ci"] .member-tag')?.textContent === 'bot'`)
}

// TestBrowser_PeopleAndGroups: the people directory starts a direct
// message with someone who shares no room, and a group conversation,
// which everyone in it sees named by its people.
func TestBrowser_PeopleAndGroups(t *testing.T) {
	ts := startServer(t, nil)
	for _, name := range []string{"carol", "dave"} {
		c, _ := signedIn(t, ts, name)
		c.conn.Close()
	}
	b := newBrowser(t)
	bob := b.newPage("bob", ts.URL())
	bob.signUp("bob")
	carol := b.newPage("carol", ts.URL())
	carol.signIn("carol", "carol-password")
	carol.waitText("#me-name", "carol")

	bob.click("#new-message")
	bob.typeText("#people-query", "car")
	bob.click(`#people-list [data-person="carol"]`)
	bob.click("#people-start")
	bob.waitText("#conv-title", "carol")
	bob.send("found you in the directory")
	carol.waitText(`#dm-list [data-peer="bob"]`, "bob")

	bob.click("#new-message")
	bob.waitJS("everyone is listed", `document.querySelector('#people-list [data-person="dave"]')`)
	bob.click(`#people-list [data-person="carol"]`)
	bob.click(`#people-list [data-person="dave"]`)
	bob.waitText("#people-start", "Start a group of 3")
	bob.click("#people-start")
	bob.waitText("#conv-title", "bob, carol, dave")
	bob.send("hello, group")
	carol.waitJS("the group is in carol's sidebar", `[...document.querySelectorAll('#room-list .nav-label')].some((el) => el.textContent === 'bob, carol, dave')`)
	carol.do(evalVoid(`[...document.querySelectorAll('#room-list .nav-item')].find((el) => el.textContent.includes('bob, carol, dave')).click()`))
	carol.waitMessage("hello, group")
}

// TestBrowser_Installable: the page links a web app manifest with icons,
// and registers a service worker that caches the app shell only.
func TestBrowser_Installable(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	p := b.newPage("alice", ts.URL())
	p.signUp("alice")
	p.joinRoom("general")
	p.send("not for any cache")
	manifest := eval[map[string]any](p, `fetch(document.querySelector('link[rel=manifest]').href).then((r) => r.json())`,
		chromedp.EvalAwaitPromise)
	if manifest["display"] != "standalone" || manifest["start_url"] != "/" || len(manifest["icons"].([]any)) < 2 {
		t.Fatalf("manifest: %v", manifest)
	}
	p.waitJS("the service worker is active", `navigator.serviceWorker.controller || (navigator.serviceWorker.ready.then(() => window.__swReady = true), window.__swReady)`)
	p.reload()
	p.waitText("#me-name", "alice")
	p.waitJS("the page is controlled by the service worker", `!!navigator.serviceWorker.controller`)
	p.waitMessage("not for any cache")
	cached := eval[[]string](p, `caches.keys().then((keys) => Promise.all(keys.map((k) => caches.open(k).then((c) => c.keys())))).then((all) => all.flat().map((r) => new URL(r.url).pathname))`,
		chromedp.EvalAwaitPromise)
	if len(cached) == 0 {
		t.Fatal("the service worker cached nothing")
	}
	for _, path := range cached {
		if path != "/" && !strings.HasPrefix(path, "/v/") {
			t.Errorf("the service worker cached %s, which is not the app shell", path)
		}
	}
}
