package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core, vendored for the tests (testdata/axe-core).
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/axe-core/axe.min.js")
	if err != nil {
		t.Fatalf("read axe-core: %v", err)
	}
	return string(b)
}

type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
	Summary string   `json:"summary"`
}

// axe runs axe-core's WCAG 2.x A and AA rules (and its best practices)
// on the page as it is, and returns the violations.
func (p *page) axe(src string) []axeViolation {
	p.t.Helper()
	if !eval[bool](p, `typeof window.axe === 'object'`) {
		p.do(chromedp.Evaluate[chromedp.Void](src))
	}
	return eval[[]axeViolation](p, `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({
		id: v.id, impact: v.impact, help: v.help,
		targets: v.nodes.slice(0, 6).map((n) => n.target.join(' ')),
		summary: (v.nodes[0] && v.nodes[0].failureSummary || '').split('\n').slice(0, 3).join(' '),
	})))`, chromedp.EvalAwaitPromise)
}

// checkA11y fails the test for every critical or serious violation in
// the view, and logs the others.
func (p *page) checkA11y(src, view string) {
	p.t.Helper()
	for _, v := range p.axe(src) {
		msg := fmt.Sprintf("%s: %s %s (%s): %s; e.g. %s", view, v.Impact, v.ID, v.Help, v.Summary, strings.Join(v.Targets, " | "))
		if v.Impact == "critical" || v.Impact == "serious" {
			p.t.Error(msg)
		} else {
			p.t.Log(msg)
		}
	}
}

// TestBrowser_Accessibility (issue 14, item 7) runs axe-core on every main
// view of the page, light and dark, desktop and phone: no critical or
// serious violation is allowed.
func TestBrowser_Accessibility(t *testing.T) {
	src := axeSource(t)
	ts := startServer(t, nil)
	root, _ := signedIn(t, ts, "root") // the admin
	root.conn.Close()
	b := newBrowser(t)

	// Signed out: the sign-in form, in both of its modes.
	guest := b.newPage("guest", ts.URL())
	for _, v := range viewports {
		for _, scheme := range []string{"light", "dark"} {
			guest.emulate(v, scheme)
			guest.waitJS("the sign-in form shows", `!document.getElementById('signin').hidden`)
			guest.checkA11y(src, "sign-in, "+v.name+", "+scheme)
			guest.click("#signin-switch")
			guest.checkA11y(src, "create account, "+v.name+", "+scheme)
			guest.click("#signin-switch")
		}
	}

	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	bob, bobA := signedIn(t, ts, "bob")
	bob.join("general")
	carol, _ := signedIn(t, ts, "carol")
	carol.join("general")
	alice.send("Release notes are at https://example.com/notes")
	q := chatAck(t, bob, "general", "@alice can you review the release checklist?", "a1")
	bob.send("chat", map[string]string{"roomId": "general", "content": "Thursday works for me", "replyTo": q.ID})
	bob.awaitMessage("Thursday works for me")
	status, img := upload(t, ts, bobA.Token, "chart.png", pngBytes)
	if status != 201 {
		t.Fatalf("upload: %d", status)
	}
	bob.send("chat", map[string]any{"roomId": "general", "content": "the chart", "files": []string{img.ID}})
	shipped := bob.awaitMessage("the chart")
	carol.send("react", map[string]string{"roomId": "general", "messageId": shipped.ID, "emoji": "🎉"})
	carol.await("reaction")
	bob.send("private", map[string]string{"targetUsername": "alice", "content": "a word in private"})
	alice.waitMessage("the chart")
	alice.send("my own message")
	alice.setTopicFromSettings("ship it on Thursday")

	for _, v := range viewports {
		for _, scheme := range []string{"light", "dark"} {
			t.Run(v.name+" "+scheme, func(t *testing.T) {
				p := alice.in(t)
				p.emulate(v, scheme)
				at := func(view string) string { return view + ", " + v.name + ", " + scheme }
				p.waitMessage("the chart")
				p.checkA11y(src, at("room"))

				if v.phone {
					p.click("#sidebar-open")
					p.waitJS("the drawer is open", `getComputedStyle(document.getElementById('sidebar')).visibility === 'visible'`)
					p.checkA11y(src, at("drawer"))
					p.click("#sidebar-close")
					p.click("#members-toggle")
					p.waitJS("the member list is open", `getComputedStyle(document.getElementById('members')).visibility === 'visible'`)
					p.checkA11y(src, at("member list"))
					p.click("#members-close")
				}

				p.hover(rowOf("my own message"))
				p.click(`#messages .msg-tools [data-tool="react"]`)
				p.waitJS("the emoji picker is open", `!document.getElementById('emoji-picker').hidden`)
				p.checkA11y(src, at("emoji picker"))
				p.pressKey("Escape", 27)

				p.click(`#messages .msg-replies`)
				p.waitJS("the thread shows the reply", `!document.getElementById('thread').hidden && document.getElementById('thread').textContent.includes('Thursday works for me')`)
				p.checkA11y(src, at("thread"))
				p.click("#thread-close")

				if v.phone {
					p.click("#search-open")
				}
				p.fill("#search-input", "release\n")
				p.waitJS("the search has results", `document.getElementById('search-summary').textContent.includes('results for')`)
				p.checkA11y(src, at("search results"))
				p.click("#search-close")

				for _, d := range []struct{ open, dialog string }{
					{"#room-settings", "#room-dialog"},
					{"#change-password", "#password-dialog"},
					{"#new-message", "#people-dialog"},
				} {
					if v.phone && (d.open == "#change-password" || d.open == "#new-message") {
						p.click("#sidebar-open")
					}
					p.click(d.open)
					p.waitJS(d.dialog+" is open", `document.querySelector('`+d.dialog+`').open`)
					p.checkA11y(src, at(d.dialog))
					p.do(evalVoid(`document.querySelector('` + d.dialog + `').close()`))
				}
				if v.phone {
					p.click("#sidebar-open")
				}
				p.click("#browse-rooms")
				p.waitJS("the rooms dialog is open", `document.getElementById('rooms-dialog').open`)
				p.checkA11y(src, at("join a room"))
				p.do(evalVoid(`document.getElementById('rooms-dialog').close()`))

				if v.phone {
					p.click("#members-toggle")
				}
				p.memberAction("bob", "mute")
				p.waitJS("the moderation dialog is open", `document.getElementById('mod-dialog').open`)
				p.checkA11y(src, at("moderation dialog"))
				p.do(evalVoid(`document.getElementById('mod-dialog').close()`))

				p.focusMessage("my own message")
				p.click(`#messages .msg-tools [data-tool="delete"]`)
				p.waitJS("the confirmation is open", `document.getElementById('confirm-dialog').open`)
				p.checkA11y(src, at("delete confirmation"))
				p.do(evalVoid(`document.getElementById('confirm-dialog').close()`))

				if v.phone {
					p.click("#sidebar-open")
				}
				p.click(`#dm-list [data-peer="bob"]`)
				p.waitMessage("a word in private")
				p.checkA11y(src, at("direct conversation"))
				if v.phone {
					p.click("#sidebar-open")
				}
				p.openRoom("general")
			})
		}
	}
}

// viewport is a screen the page is checked on.
type viewport struct {
	name          string
	width, height int64
	phone         bool
}

var viewports = []viewport{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}}

// emulate shows the page on v in the colour scheme.
func (p *page) emulate(v viewport, scheme string) {
	p.t.Helper()
	if v.phone {
		p.do(chromedp.EmulateViewport(v.width, v.height, chromedp.EmulateMobile))
	} else {
		p.do(chromedp.EmulateViewport(v.width, v.height))
	}
	p.setColorScheme(scheme)
}

// setTopicFromSettings sets the open room's topic in its settings dialog.
func (p *page) setTopicFromSettings(topic string) {
	p.t.Helper()
	p.click("#room-settings")
	p.fill("#room-topic", topic)
	p.click("#room-topic-save")
	p.waitText("#room-dialog-status", "Topic saved.")
	p.do(evalVoid(`document.getElementById('room-dialog').close()`))
}
