package main

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser tests of the account features: changing a password, reset
// links, and the direct conversations the server lists at sign-in.
// Helpers are in browser_helpers_test.go.

// TestBrowser_ChangePassword changes alice's password in the page. Her
// second tab in the same browser stays signed in (it follows the new
// token); her other computer is signed out; the old password stops working
// and the new one works.
func TestBrowser_ChangePassword(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	tab := alice.newTab("alice's second tab", ts.URL())
	tab.waitText("#conv-title", "#general")
	laptop := b.newPage("alice's laptop", ts.URL())
	laptop.signIn("alice", "alice-password")
	laptop.waitText("#me-name", "alice")
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")

	// The second tab must never show the sign-in form.
	tab.do(chromedp.Evaluate[chromedp.Void](`(() => {
		const signin = document.getElementById('signin');
		new MutationObserver(() => { if (!signin.hidden) window.__sawSignIn = true; }).observe(signin, { attributes: true });
	})()`))
	oldToken := eval[string](alice, `localStorage.getItem('parley.token')`)

	t.Run("mistakes are shown in the dialog", func(t *testing.T) {
		alice := alice.in(t)
		alice.click("#change-password")
		alice.waitText("#password-dialog-title", "Change password")
		alice.typeText("#password-current", "not-alices-password")
		alice.typeText("#password-new", "correct horse battery")
		alice.typeText("#password-confirm", "correct horse battery")
		alice.click("#password-submit")
		alice.waitText("#password-error", "Current password is wrong")

		alice.fill("#password-current", "alice-password")
		alice.fill("#password-confirm", "correct horse battery staple")
		alice.click("#password-submit")
		alice.waitText("#password-error", "The two passwords do not match.")

		alice.fill("#password-new", "short")
		alice.click("#password-submit")
		alice.waitText("#password-error", "at least 8 characters")
	})

	t.Run("the change", func(t *testing.T) {
		alice := alice.in(t)
		alice.fill("#password-new", "correct horse battery")
		alice.fill("#password-confirm", "correct horse battery")
		alice.click("#password-submit")
		alice.waitText("#password-done", "Your password has been changed.")
		alice.waitJS("the password fields are gone", `document.getElementById('password-fields').hidden`)
		if got := eval[string](alice, `localStorage.getItem('parley.token')`); got == oldToken || got == "" {
			t.Errorf("the stored token is %q after the change, want a new one", got)
		}
		alice.click("#password-cancel")
		alice.waitJS("the dialog is closed", `!document.getElementById('password-dialog').open`)
		alice.send("changed my password")
	})

	t.Run("the second tab stays signed in", func(t *testing.T) {
		tab := tab.in(t)
		// The server closed the tab's old connection, so bob's message
		// reaches it only if it signed in again with the new token.
		chatAck(t, bob, "general", "can you still read this?", "b1")
		tab.waitMessage("can you still read this?")
		tab.waitJS("the tab is connected", `document.getElementById('conn-banner').hidden && document.getElementById('me-status').textContent === 'Online'`)
		tab.send("yes, from my second tab")
		if eval[bool](tab, `!!window.__sawSignIn || document.getElementById('app').hidden`) {
			t.Error("the second tab showed the sign-in form")
		}
	})

	t.Run("another computer is signed out", func(t *testing.T) {
		laptop := laptop.in(t)
		laptop.waitText("#signin-error", "You were signed out (password changed).")
	})

	t.Run("a reload keeps the new session", func(t *testing.T) {
		alice := alice.in(t)
		alice.reload()
		alice.waitText("#me-name", "alice")
		alice.waitMessage("yes, from my second tab")
	})

	t.Run("only the new password signs in", func(t *testing.T) {
		p := b.newPage("alice on a new computer", ts.URL()).in(t)
		p.signIn("alice", "alice-password")
		p.waitText("#signin-error", "Wrong username or password")
		p.fill("#signin-password", "correct horse battery")
		p.click("#signin-submit")
		p.waitText("#me-name", "alice")
	})
}

// TestBrowser_ResetLink has the admin issue a reset link for bob in the
// page. bob opens it in another tab of his browser, chooses a new password
// and is signed in; his first tab follows. The link works once. Only
// admins are offered the action.
func TestBrowser_ResetLink(t *testing.T) {
	// Links carry server.public_url; give it the address the test serves.
	cfg := testConfig(t.TempDir())
	cfg.Server.Addr = freeLoopbackAddr(t)
	cfg.Server.PublicURL = "http://" + cfg.Server.Addr
	ts := startServer(t, &cfg)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice") // the first account is the admin
	alice.joinRoom("general")
	bob := b.newPage("bob", ts.URL())
	bob.signUp("bob")
	bob.joinRoom("general")

	t.Run("a member is offered no reset action", func(t *testing.T) {
		bob := bob.in(t)
		bob.waitJS("alice is listed in #general", `document.querySelector('#members-online [data-user="alice"]')`)
		if n := eval[int](bob, `document.querySelectorAll('[data-reset]').length`); n != 0 {
			t.Errorf("bob, not an admin, sees %d reset actions", n)
		}
		bob.click(`#members-online [data-user="alice"]`)
		bob.waitText("#conv-title", "alice")
		if !eval[bool](bob, `document.getElementById('reset-peer').hidden`) {
			t.Error("bob, not an admin, sees Reset password… in a direct conversation")
		}
		if strings.Contains(bob.visibleText(), "Reset password") {
			t.Error("bob's page mentions Reset password")
		}
		bob.openRoom("general")
	})

	var link string
	t.Run("the admin issues a link", func(t *testing.T) {
		alice := alice.in(t)
		// From the direct conversation's header too.
		alice.click(`#members-online [data-user="bob"]`)
		alice.waitText("#conv-title", "bob")
		alice.waitText("#reset-peer", "Reset password…")
		alice.openRoom("general")

		alice.click(`#members-online [data-reset="bob"]`)
		alice.waitText("#reset-link-title", "Reset password for bob")
		alice.click("#reset-link-create")
		alice.waitText("#reset-link-expiry", "It works once, until")
		link = eval[string](alice, `document.getElementById('reset-link-url').value`)
		if want := ts.URL() + "/#reset="; !strings.HasPrefix(link, want) || len(link) <= len(want) {
			t.Fatalf("the dialog shows the link %q, want %s…", link, want)
		}
		alice.click("#reset-link-copy")
		alice.waitJS("the link is copied, or selected to copy", `/Copied|selected/.test(document.getElementById('reset-link-copied').textContent)`)
		alice.click("#reset-link-cancel")
	})
	if link == "" {
		t.FailNow()
	}

	t.Run("bob chooses a new password", func(t *testing.T) {
		first := bob.in(t)
		p := first.newTab("bob's reset tab", link)
		// The stored session is not resumed: the link is for choosing a
		// password.
		p.waitText("#reset-title", "Choose a new password")
		if !eval[bool](p, `document.getElementById('app').hidden`) {
			t.Error("the app shows behind the reset view")
		}
		p.typeText("#reset-new", "bobs new password")
		p.typeText("#reset-confirm", "bobs new passwrod")
		p.click("#reset-submit")
		p.waitText("#reset-error", "The two passwords do not match.")
		p.fill("#reset-confirm", "bobs new password")
		p.click("#reset-submit")
		p.waitText("#me-name", "bob")
		p.waitJS("a toast says the password is set", `document.getElementById('toasts').textContent.includes('Your new password is set')`)
		if h := eval[string](p, `location.hash`); h != "" {
			t.Errorf("the address still has the fragment %q", h)
		}
		p.send("bob is back")

		// bob's first tab was signed out by the reset and follows the new
		// token.
		first.waitMessage("bob is back")
		first.waitJS("the first tab is connected", `document.getElementById('conn-banner').hidden && !document.getElementById('app').hidden`)
	})

	t.Run("the link works once", func(t *testing.T) {
		p := b.newPage("bob elsewhere", link).in(t)
		p.waitText("#reset-title", "Choose a new password")
		p.typeText("#reset-new", "yet another password")
		p.typeText("#reset-confirm", "yet another password")
		p.click("#reset-submit")
		p.waitText("#reset-error", "This link is used up or expired; ask an admin for a new one")
		p.waitJS("the password fields are gone", `document.getElementById('reset-fields').hidden`)
		p.click("#reset-back")
		p.waitJS("the sign-in form shows", `!document.getElementById('signin').hidden`)
		if h := eval[string](p, `location.hash`); h != "" {
			t.Errorf("the address still has the fragment %q", h)
		}
		p.signIn("bob", "bobs new password")
		p.waitText("#me-name", "bob")
	})
}

// TestBrowser_DirectsFromServer signs alice in on a computer that has
// never seen her: her direct conversations are listed all the same,
// including one with nothing unread, because the server lists them.
func TestBrowser_DirectsFromServer(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.click(`#members-online [data-user="bob"]`)
	alice.waitText("#conv-title", "bob")
	alice.send("lunch tomorrow?")
	bob.send("private", map[string]string{"targetUsername": "alice", "content": "sure, noon"})
	alice.waitMessage("sure, noon")
	alice.send("see you then") // alice's own message: nothing is left unread

	p := b.newPage("alice on a new computer", ts.URL())
	if n := eval[int](p, `localStorage.length`); n != 0 {
		t.Fatalf("the new browser context has %d localStorage items", n)
	}
	p.signIn("alice", "alice-password")
	p.waitText("#me-name", "alice")
	p.waitText(`#dm-list [data-peer="bob"]`, "bob")
	if !eval[bool](p, `document.querySelector('#dm-list [data-peer="bob"] .badge').hidden`) {
		t.Error("the conversation with bob shows an unread badge")
	}
	p.click(`#dm-list [data-peer="bob"]`)
	p.waitText("#conv-title", "bob")
	p.waitMessage("see you then")
	want := []shownMessage{{"alice", "lunch tomorrow?"}, {"bob", "sure, noon"}, {"alice", "see you then"}}
	if got := p.messages(); !slices.Equal(got, want) {
		t.Errorf("the conversation shows %q, want %q", got, want)
	}
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago, for a server whose configuration must name its own address.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return addr
}

// TestBrowser_SignInOrCreate (issue 14, item 5): "Sign in" never creates
// an account, so a typo of a name is refused like a wrong password and
// nobody new comes online; "Create an account" refuses a name in use.
func TestBrowser_SignInOrCreate(t *testing.T) {
	ts := startServer(t, nil)
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")

	p := b.newPage("alice's typo", ts.URL())
	p.signIn("alcie", "alice-password")
	p.waitText("#signin-error", "Wrong username or password")
	if _, err := ts.srv.store.UserByName("alcie"); err == nil {
		t.Fatal("signing in as alcie created an account")
	}

	p.fill("#signin-username", "alice")
	p.fill("#signin-password", "alice-password")
	p.click("#signin-submit")
	p.waitText("#me-name", "alice")
	p.click("#signout")
	p.waitText("#signin-error", "You have signed out.")

	// Creating an account under a name in use says so.
	p.fill("#signin-username", "")
	p.fill("#signin-password", "")
	p.createAccount("Alice", "another-password")
	p.waitText("#signin-error", "taken")
	if got := eval[string](p, `document.activeElement.id`); got != "signin-username" {
		t.Errorf("after username_taken the focus is on #%s, want the username", got)
	}
	// The two passwords must match before anything is sent.
	p.fill("#signin-username", "alicia")
	p.fill("#signin-password", "alicias-password")
	p.fill("#signin-confirm", "alicias-passwort")
	p.click("#signin-submit")
	p.waitText("#signin-error", "do not match")
	p.fill("#signin-confirm", "alicias-password")
	p.click("#signin-submit")
	p.waitText("#me-name", "alicia")
}
