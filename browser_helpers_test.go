package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// browserWait bounds how long a page may take to show what a test waits
// for; it is a ceiling for slow machines, not an expected duration.
const browserWait = 15 * time.Second

// requireChromium skips the test when Chromium is missing, unless CI asked
// for the browser tests with PARLEY_BROWSER_TESTS=1.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	if os.Getenv("PARLEY_BROWSER_TESTS") == "1" {
		t.Fatalf("PARLEY_BROWSER_TESTS=1 but %s is missing: apt-get install -y chromium", chromiumPath)
	}
	t.Skipf("browser test skipped: %s not found (apt-get install -y chromium; PARLEY_BROWSER_TESTS=1 makes this a failure)", chromiumPath)
}

// browser is one headless Chromium. Each page opened from it gets its own
// browser context, with its own localStorage: two pages are two people on
// two computers.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	return newBrowserWith(t)
}

// newBrowserWith starts Chromium with extra command-line options.
func newBrowserWith(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 800),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// The browser lives as long as ctx; start it without a deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &browser{t: t, ctx: ctx}
}

// page is one tab in its own browser context. It records uncaught
// exceptions, Content Security Policy violations and JavaScript dialogs
// (alert, confirm), and fails the test if any happened.
type page struct {
	t        *testing.T // the test that is using the page; see in
	name     string
	ctx      context.Context
	problems *problemLog
}

// problemLog collects what went wrong inside a page, from the goroutines
// that read its console and dialogs.
type problemLog struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (l *problemLog) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
}

// in returns the page for use by t, a subtest: a failure then stops the
// subtest, not its parent.
func (p *page) in(t *testing.T) *page {
	c := *p
	c.t = t
	return &c
}

// newPage opens url in a fresh browser context.
func (b *browser) newPage(name, url string) *page {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	return openTab(b.t, ctx, name, url)
}

// newTab opens url in another tab of p's browser context, which shares
// p's localStorage, as a second tab of one browser does.
func (p *page) newTab(name, url string) *page {
	p.t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	p.t.Cleanup(cancel)
	return openTab(p.t, ctx, name, url)
}

func openTab(t *testing.T, ctx context.Context, name, url string) *page {
	t.Helper()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open tab: %v", name, err)
	}
	p := &page{t: t, name: name, ctx: ctx, problems: &problemLog{}}
	console := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
				p.problems.add("console: " + m.String())
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			p.problems.add(fmt.Sprintf("a JavaScript %s dialog opened: %q", ev.Type, ev.Message))
			_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	t.Cleanup(func() {
		p.problems.mu.Lock()
		defer p.problems.mu.Unlock()
		for _, msg := range p.problems.msgs {
			t.Errorf("%s: %s", name, msg)
		}
	})
	p.setColorScheme("light")
	p.do(chromedp.Navigate(url))
	return p
}

// do runs actions with the browserWait deadline.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage shows:\n%s", p.name, err, p.visibleText())
	}
}

// eval runs a JavaScript expression and decodes its value into T.
func eval[T any](p *page, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is truthy; what says, for
// the failure message, what the user would have seen.
func (p *page) waitJS(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+cond+")",
		chromedp.WithPollingInterval(40*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
	if err != nil {
		p.t.Fatalf("%s: waiting until %s: %v\npage shows:\n%s", p.name, what, err, p.visibleText())
	}
}

// visibleText is what the page shows, for failure messages.
func (p *page) visibleText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	if len(text) > 3000 {
		text = text[:3000] + "…"
	}
	return text
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// typeText types into a field as a person would, key by key; "\n" is
// the Enter key.
func (p *page) typeText(sel, text string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// fill replaces what a field holds with text, as selecting all and typing
// over it would.
func (p *page) fill(sel, text string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+js(sel)+`).value = ''`),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, `(document.querySelector(`+js(sel)+`) || {}).textContent || ""`)
}

func (p *page) waitText(sel, want string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("%s shows %q", sel, want),
		`(() => { const el = document.querySelector(`+js(sel)+`); return el && el.offsetParent !== null && el.textContent.includes(`+js(want)+`); })()`)
}

// signIn fills in the sign-in form and signs in to an existing account.
func (p *page) signIn(username, password string) {
	p.t.Helper()
	p.typeText("#signin-username", username)
	p.typeText("#signin-password", password)
	p.click("#signin-submit")
}

// createAccount switches the sign-in form to "Create an account" and
// submits it.
func (p *page) createAccount(username, password string) {
	p.t.Helper()
	p.waitJS("the sign-in form shows", `!document.getElementById('signin').hidden`)
	if eval[bool](p, `document.getElementById('signin-confirm-field').hidden`) {
		p.click("#signin-switch")
	}
	p.typeText("#signin-username", username)
	p.typeText("#signin-password", password)
	p.typeText("#signin-confirm", password)
	p.click("#signin-submit")
}

// signUp creates an account and waits for the chat to show.
func (p *page) signUp(username string) {
	p.t.Helper()
	p.createAccount(username, username+"-password")
	p.waitText("#me-name", username)
}

// joinRoom joins a room through the "join a room" dialog and waits until
// it is the open conversation.
func (p *page) joinRoom(room string) {
	p.t.Helper()
	p.click("#browse-rooms")
	p.typeText("#join-name", room+"\n")
	p.waitText("#conv-title", "#"+room)
	p.waitJS("#"+room+" is listed in the sidebar", `document.querySelector('#room-list [data-room=`+js(room)+`]')`)
}

// openRoom opens a room from the sidebar.
func (p *page) openRoom(room string) {
	p.t.Helper()
	p.click(`#room-list [data-room=` + js(room) + `]`)
	p.waitText("#conv-title", "#"+room)
}

// pressEnter presses Enter in the focused element as a keyboard does.
// SendKeys("\n") would also send a char event, which types a newline even
// after the page cancelled the keydown; a real keyboard does not.
func (p *page) pressEnter() {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter",
				WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			})
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// send types a message in the composer, presses Enter, and waits for the
// server's acknowledgement (the message stops being pending).
func (p *page) send(text string) {
	p.t.Helper()
	p.typeText("#composer-input", text)
	p.pressEnter()
	p.waitJS(fmt.Sprintf("own message %q is acknowledged", text), messageShown(text))
}

// messageShown is a condition: a confirmed message with exactly this text
// is in the open conversation.
func messageShown(text string) string {
	return `[...document.querySelectorAll('#messages .msg[data-id] .msg-text')].some((el) => el.textContent === ` + js(text) + `)`
}

func (p *page) waitMessage(text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("message %q is shown", text), messageShown(text))
}

// messages returns the sender and text of each confirmed message shown,
// in order; continued messages carry their sender in hidden text.
func (p *page) messages() []shownMessage {
	p.t.Helper()
	return eval[[]shownMessage](p, `[...document.querySelectorAll('#messages .msg[data-id]')].map((el) => ({
		sender: el.querySelector('.msg-sender').textContent,
		text: el.querySelector('.msg-text').textContent,
	}))`)
}

type shownMessage struct {
	Sender string `json:"sender"`
	Text   string `json:"text"`
}

// setColorScheme emulates prefers-color-scheme ("light" or "dark"). It
// also asks for reduced motion, which turns the page's transitions off, so
// what a test sees (and screenshots) never catches a drawer mid-slide.
func (p *page) setColorScheme(scheme string) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{
				{Name: "prefers-color-scheme", Value: scheme},
				{Name: "prefers-reduced-motion", Value: "reduce"},
			},
		})
		return err
	}))
}

// setOffline cuts the page off the network, or reconnects it. While it is
// offline the page's reconnect attempts fail as they would with no
// network, so a test can act while the page is away.
func (p *page) setOffline(offline bool) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: offline}},
		})
		return err
	}))
}

// reload reloads the page, as a person pressing F5 does.
func (p *page) reload() {
	p.t.Helper()
	p.do(chromedp.Reload())
}

// grantNotifications answers "allow" for origin's notification permission
// in the page's browser context, as a person clicking Allow would.
func (p *page) grantNotifications(origin string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission:       &cdpbrowser.PermissionDescriptor{Name: "notifications"},
		Setting:          cdpbrowser.PermissionSettingGranted,
		Origin:           origin,
		BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
	})
	if err != nil {
		p.t.Fatalf("%s: grant notifications: %v", p.name, err)
	}
}

// recordNotifications replaces the page's Notification constructor with
// one that records "title | body" in window.__notes, since a headless
// browser has no notification area to look at.
func (p *page) recordNotifications() {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](`(() => {
		const Real = window.Notification;
		window.__notes = [];
		window.Notification = class {
			constructor(title, options) { window.__notes.push(title + ' | ' + options.body); }
			addEventListener() {}
			close() {}
			static get permission() { return Real.permission; }
			static requestPermission() { return Real.requestPermission(); }
		};
	})()`))
}
