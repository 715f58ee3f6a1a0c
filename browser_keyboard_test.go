package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser_KeyboardFocus (issue 14, item 6): editing from the
// composer returns there; Escape from anything inside a message returns
// to the composer; the message list is one tab stop; a skip link leads
// to the message box.
func TestBrowser_KeyboardFocus(t *testing.T) {
	ts := startServer(t, nil)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	for i, text := range []string{"see https://example.com/a for details", "and https://example.com/b too", "a third with https://example.com/c"} {
		chatAck(t, bob, "general", text, "k"+string(rune('0'+i)))
	}
	alice.waitMessage("a third with https://example.com/c")
	alice.send("my own words")
	composerFocused := `document.activeElement === document.getElementById('composer-input')`

	t.Run("edit from the composer returns there", func(t *testing.T) {
		alice := alice.in(t)
		for _, key := range []struct {
			name string
			code int64
		}{{"Enter", 13}, {"Escape", 27}} {
			alice.click("#composer-input")
			alice.pressKey("ArrowUp", 38)
			alice.waitJS("the editor has the focus", `document.activeElement.matches('#messages .msg-edit-input')`)
			if key.name == "Enter" {
				alice.typeText("#messages .msg-edit-input", " (edited)")
				alice.pressEnter()
			} else {
				alice.pressKey(key.name, key.code)
			}
			alice.waitJS("the editor closed", `!document.querySelector('#messages .msg-edit-input')`)
			alice.waitJS("after "+key.name+" the composer has the focus", composerFocused)
		}
		alice.waitMessage("my own words (edited)")
	})

	t.Run("Escape from a link in a message", func(t *testing.T) {
		alice := alice.in(t)
		alice.focusMessage("see https://example.com/a for details")
		alice.pressKey("Tab", 9)
		alice.waitJS("Tab reached the message's link", `document.activeElement.matches('#messages a[href="https://example.com/a"]')`)
		alice.pressKey("Escape", 27)
		alice.waitJS("Escape went back to the composer", composerFocused)
	})

	t.Run("the message list is one tab stop", func(t *testing.T) {
		alice := alice.in(t)
		n := eval[int](alice, `[...document.querySelectorAll('#messages a[href], #messages button')].filter((el) => el.tabIndex >= 0 && !el.closest('.msg-tools')).length`)
		if n != 0 {
			t.Errorf("%d links and buttons inside messages are in the tab order", n)
		}
		alice.do(evalVoid(`document.getElementById('timeline').focus()`))
		alice.pressKey("Tab", 9)
		alice.waitJS("Tab leaves the message list", `!document.activeElement.closest('#messages') && document.activeElement !== document.body`)
	})

	t.Run("skip link", func(t *testing.T) {
		alice := alice.in(t)
		if first := eval[string](alice, `document.querySelector('#app a[href], #app button, #app input, #app textarea, #app [tabindex]').id`); first != "skip-link" {
			t.Errorf("the first control of the page is #%s, want the skip link", first)
		}
		if eval[bool](alice, `document.getElementById('skip-link').getBoundingClientRect().bottom > 0`) {
			t.Error("the skip link shows without the focus")
		}
		alice.do(evalVoid(`document.getElementById('skip-link').focus()`))
		alice.waitJS("the skip link shows once focused", `document.getElementById('skip-link').getBoundingClientRect().top >= 0`)
		alice.pressEnter()
		alice.waitJS("the skip link led to the composer", composerFocused)
	})
}

// evalVoid runs JavaScript for its effect.
func evalVoid(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](expr)
}

// TestBrowser_LiveRegion (issue 14, item 8): screen readers are told of
// new messages and of nothing else in the timeline: loading older
// messages, the top of the timeline, a topic change or a re-render put
// no text into a live region of messages.
func TestBrowser_LiveRegion(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	bob, _ := signedIn(t, ts, "bob") // the room's owner
	bob.join("general")
	fillRoom(t, bob, "general", "older", 80)

	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.waitMessage("older 80")
	// Record every text that enters a log or a polite or assertive region
	// that holds messages (the toasts, the typing line and the
	// connection banner are regions of their own).
	alice.do(evalVoid(`(() => {
		window.__live = [];
		const live = (n) => n.closest && n.closest('[role="log"], [aria-live="polite"], [aria-live="assertive"]');
		new MutationObserver((records) => {
			for (const r of records) {
				const region = live(r.target.nodeType === 1 ? r.target : r.target.parentElement);
				if (!region || ['toasts', 'typing', 'conn-banner'].includes(region.id)) continue;
				if (r.type === 'characterData') window.__live.push(r.target.textContent);
				for (const n of r.addedNodes) if (n.textContent.trim()) window.__live.push(n.textContent.trim());
			}
		}).observe(document.body, { subtree: true, childList: true, characterData: true });
	})()`))

	chatAck(t, bob, "general", "fresh one", "f1")
	alice.waitMessage("fresh one")
	alice.waitJS("older messages were loaded", `(() => { document.getElementById('timeline').scrollTop = 0; return !document.getElementById('timeline-start').hidden; })()`)
	alice.waitMessage("older 1")
	bob.send("setTopic", map[string]string{"roomId": "general", "topic": "a new topic"})
	alice.waitText("#conv-topic", "a new topic")
	chatAck(t, bob, "general", "fresh two", "f2")
	alice.waitMessage("fresh two")
	alice.waitJS("the second message was announced", `window.__live.some((s) => s.includes('fresh two'))`)

	got := eval[[]string](alice, `window.__live`)
	if len(got) != 2 || got[0] != "bob: fresh one" || got[1] != "bob: fresh two" {
		t.Errorf("the live region of messages heard %q, want only the two new messages", got)
	}
}
