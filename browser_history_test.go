package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
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

// TestBrowser_ScrollBack: in a room of 5,000 messages, the wheel alone
// reaches the first one; each time older messages are put above, the
// first message in view stays exactly where it was; and the timeline
// never holds more than a few hundred messages.
func TestBrowser_ScrollBack(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	cfg.History.PerRoom = 0
	ts := startServer(t, &cfg)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	const total = 5000
	fillRoom(t, bob, "general", "message", total)

	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.waitMessage(fmt.Sprintf("message %d", total))

	// Older rows go in above the reader: the first row in view keeps its
	// place to the pixel, whether they were loaded already or come from
	// the server.
	type place struct {
		Text   string  `json:"text"`
		Before float64 `json:"before"`
		After  float64 `json:"after"`
		Added  bool    `json:"added"`
	}
	for i := 0; i < 6; i++ {
		p := eval[place](alice, `new Promise((resolve) => {
			const s = document.getElementById('timeline');
			const list = document.getElementById('messages');
			s.scrollTop = 200;
			const top = () => s.getBoundingClientRect().top;
			const row = [...list.querySelectorAll('.msg[data-id]')].find((el) => el.getBoundingClientRect().bottom > top() + 1);
			const before = row.getBoundingClientRect().top - top();
			const first = list.firstElementChild;
			const t0 = performance.now();
			const check = () => {
				if (list.firstElementChild !== first || performance.now() - t0 > 10000) {
					resolve({ text: row.querySelector('.msg-text').textContent, before, after: row.getBoundingClientRect().top - top(),
						added: list.firstElementChild !== first });
				} else requestAnimationFrame(check);
			};
			requestAnimationFrame(check);
		})`, chromedp.EvalAwaitPromise)
		if !p.Added {
			t.Fatalf("prepend %d: scrolled near the top, no older messages were put above %q", i, p.Text)
		}
		if d := p.After - p.Before; d < -1 || d > 1 {
			t.Errorf("prepend %d: %q moved %.1fpx (from %.1f to %.1f) when older messages were put above it", i, p.Text, d, p.Before, p.After)
		}
	}

	// The wheel, and nothing else, goes back to the first message. The
	// frames drawn meanwhile are timed, for docs/web-client.md.
	alice.do(chromedp.Evaluate[chromedp.Void](`(() => {
		window.__frames = [];
		let last = performance.now();
		const tick = (t) => { window.__frames.push(t - last); last = t; if (!window.__stopFrames) requestAnimationFrame(tick); };
		requestAnimationFrame(tick);
	})()`))
	wheels := 0
	for ; wheels < 600; wheels++ {
		if eval[bool](alice, `!document.getElementById('timeline-start').hidden`) {
			break
		}
		alice.wheel("#timeline", -4000)
		alice.waitJS("the timeline has rows", `document.querySelector('#messages .msg')`)
	}
	alice.waitText("#timeline-start", "This is the very beginning of #general")
	alice.waitMessage("message 1")
	t.Logf("%d wheel turns of 4000px reached message 1 of %d", wheels, total)
	type frames struct {
		N   int     `json:"n"`
		P50 float64 `json:"p50"`
		P95 float64 `json:"p95"`
		Max float64 `json:"max"`
	}
	f := eval[frames](alice, `(() => {
		window.__stopFrames = true;
		const d = window.__frames.slice(1).sort((a, b) => a - b);
		const q = (x) => d[Math.min(d.length - 1, Math.floor(d.length * x))];
		return { n: d.length, p50: q(0.5), p95: q(0.95), max: d.at(-1) };
	})()`)
	t.Logf("scrolling back through %d messages: %d frames, frame time p50 %.1f ms, p95 %.1f ms, max %.1f ms", total, f.N, f.P50, f.P95, f.Max)
	if n := eval[int](alice, `document.querySelectorAll('#messages .msg').length`); n > 200 {
		t.Errorf("%d messages are in the DOM after scrolling back; the window should bound them", n)
	}
}

// wheel turns the mouse wheel over the middle of the element sel (a
// negative dy scrolls up), as a person reading back does.
func (p *page) wheel(sel string, dy float64) {
	p.t.Helper()
	type point struct{ X, Y float64 }
	at := eval[point](p, `(() => { const r = document.querySelector(`+js(sel)+`).getBoundingClientRect(); return { X: r.left + r.width / 2, Y: r.top + r.height / 2 }; })()`)
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.DispatchMouseEvent, input.DispatchMouseEventParams{
			Type: input.DispatchMouseEventTypeMouseWheel, X: at.X, Y: at.Y, DeltaY: dy,
			DeltaX: 1e-9}) // deltaX must be sent; omitempty would drop a 0
		return err
	}))
}

// TestBrowser_ManyIncoming: 2,000 messages arriving as fast as the server
// sends them appear promptly, and the page's DOM stays small: rows are
// added, not re-rendered, and the oldest leave the DOM.
func TestBrowser_ManyIncoming(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")

	b := newBrowser(t)
	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")
	alice.waitJS("the member list shows bob", `document.querySelector('#members [data-user="bob"]')`)
	before := eval[int](alice, `document.getElementsByTagName('*').length`)

	const total = 2000
	start := time.Now()
	fillRoom(t, bob, "general", "burst", total)
	stored := time.Since(start)
	alice.waitMessage(fmt.Sprintf("burst %d", total))
	shown := time.Since(start)
	after := eval[int](alice, `document.getElementsByTagName('*').length`)
	rows := eval[int](alice, `document.querySelectorAll('#messages .msg').length`)
	t.Logf("%d incoming messages: stored in %v, all shown after %v; DOM %d elements before, %d after (%d message rows)",
		total, stored.Round(time.Millisecond), shown.Round(time.Millisecond), before, after, rows)
	if after > before+3000 {
		t.Errorf("the DOM grew from %d to %d elements for %d messages; the timeline should keep a bounded window", before, after, total)
	}
	if rows > 200 {
		t.Errorf("%d message rows in the DOM", rows)
	}
	// The reader is still at the newest message, and can scroll back to
	// the first of the burst.
	if !eval[bool](alice, `(() => { const s = document.getElementById('timeline'); return s.scrollHeight - s.scrollTop - s.clientHeight < 50; })()`) {
		t.Error("the reader was at the bottom and is no longer")
	}
}
