package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser_Details (issue 14, item 11): the smaller things a day of use
// found.
func TestBrowser_Details(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Uploads.MaxBytes = 8000
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	bob, bobA := signedIn(t, ts, "bob")
	bob.join("general")
	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	fillRoom(t, bob, "general", "filler", 30)
	status, img := upload(t, ts, bobA.Token, "chart.png", dashboardPNG(t))
	status2, doc := upload(t, ts, bobA.Token, "notes.txt", []byte("plain notes"))
	if status != 201 || status2 != 201 {
		t.Fatalf("uploads: %d, %d", status, status2)
	}
	bob.send("chat", map[string]any{"roomId": "general", "content": "an image and a file", "files": []string{img.ID, doc.ID}})
	bob.awaitMessage("an image and a file")
	alice.waitMessage("an image and a file")
	alice.send("my message")

	t.Run("a file card keeps its own height next to an image", func(t *testing.T) {
		alice := alice.in(t)
		alice.waitJS("the image loaded", rowOf("an image and a file")+`?.querySelector('.msg-image img')?.complete`)
		type heights struct{ Image, File float64 }
		h := eval[heights](alice, `(() => { const row = `+rowOf("an image and a file")+`;
			return { Image: row.querySelector('.msg-image').getBoundingClientRect().height, File: row.querySelector('.file-chip').getBoundingClientRect().height }; })()`)
		if h.File > 80 {
			t.Errorf("the file card is %.0fpx high next to a %.0fpx image; it should keep its own height", h.File, h.Image)
		}
	})

	t.Run("the delete confirmation focuses Cancel", func(t *testing.T) {
		alice := alice.in(t)
		alice.focusMessage("my message")
		alice.click(`#messages .msg-tools [data-tool="delete"]`)
		alice.waitJS("the confirmation is open", `document.getElementById('confirm-dialog').open`)
		if got := eval[string](alice, `document.activeElement.textContent.trim()`); got != "Cancel" {
			t.Errorf("the confirmation opens with the focus on %q, want Cancel", got)
		}
		alice.pressKey("Escape", 27)
		alice.waitJS("the confirmation closed", `!document.getElementById('confirm-dialog').open`)
		alice.waitMessage("my message")
	})

	t.Run("a file over the limit is refused before it is sent", func(t *testing.T) {
		alice := alice.in(t)
		big := filepath.Join(t.TempDir(), "big.bin")
		if err := os.WriteFile(big, make([]byte, 9000), 0o644); err != nil {
			t.Fatal(err)
		}
		alice.do(evalVoid(`(() => { window.__uploads = 0; const send = XMLHttpRequest.prototype.send;
			XMLHttpRequest.prototype.send = function (...a) { window.__uploads++; return send.apply(this, a); }; })()`))
		alice.do(chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), []string{big}))
		alice.waitText("#attachments", "larger than")
		if n := eval[int](alice, `window.__uploads`); n != 0 {
			t.Errorf("%d uploads started for a file over the server's limit", n)
		}
		alice.click(`#attachments .attachment button`)
	})

	t.Run("a growing composer keeps the newest message in view", func(t *testing.T) {
		alice := alice.in(t)
		alice.click("#composer-input")
		for i := 0; i < 6; i++ {
			alice.typeText("#composer-input", "a line")
			alice.do(chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)))
		}
		alice.waitJS("the newest message is fully in view", `(() => {
			const row = `+rowOf("my message")+`, s = document.getElementById('timeline');
			return row.getBoundingClientRect().bottom <= s.getBoundingClientRect().bottom + 1;
		})()`)
		alice.fill("#composer-input", "")
	})

	t.Run("toasts do not cover the composer", func(t *testing.T) {
		for _, v := range viewports {
			alice := alice.in(t)
			alice.emulate(v, "light")
			alice.do(evalVoid(`document.getElementById('room-settings').click()`))
			alice.do(evalVoid(`document.getElementById('room-topic').value = 'the same topic'; document.getElementById('topic-form').requestSubmit(); document.getElementById('room-dialog').close()`))
			alice.waitJS("a toast shows", `document.querySelector('#toasts .toast')`)
			if eval[bool](alice, `(() => {
				const a = document.querySelector('#toasts .toast').getBoundingClientRect(), b = document.getElementById('composer').getBoundingClientRect();
				return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
			})()`) {
				t.Errorf("%s: a toast covers the composer", v.name)
			}
			alice.do(evalVoid(`document.querySelectorAll('#toasts .toast').forEach((el) => el.remove())`))
		}
	})

	t.Run("touch targets on a phone are at least 44px", func(t *testing.T) {
		alice := alice.in(t)
		alice.emulate(viewports[1], "light")
		alice.click("#sidebar-open")
		small := eval[[]string](alice, `[...document.querySelectorAll('#app button, #app a[href], #app input, #app textarea')]
			.filter((el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
				return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !el.closest('.msg-text, .sys-line, .visually-hidden') && !el.classList.contains('skip-link') &&
					r.bottom > 0 && r.top < innerHeight && (r.height < 44 || r.width < 44); })
			.map((el) => (el.id ? '#' + el.id : el.className || el.tagName) + ' ' + Math.round(el.getBoundingClientRect().width) + 'x' + Math.round(el.getBoundingClientRect().height))`)
		if len(small) > 0 {
			t.Errorf("touch targets under 44px on a phone: %q", small)
		}
		alice.click("#sidebar-close")
		alice.emulate(viewports[0], "light")
	})
}
