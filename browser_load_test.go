package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// slow4G is Chrome DevTools' "Slow 4G" profile: 562.5 ms round trips,
// about 1.4 Mbit/s down and 0.67 Mbit/s up.
var slow4G = network.Conditions{Latency: 562.5, DownloadThroughput: 1.4 * 1024 * 1024 / 8 * 0.9, UploadThroughput: 750 * 1024 / 8 * 0.9}

// TestBrowser_LoadOverSlow4G (issue 14, item 9) loads the page over a
// slow 4G connection, first with an empty cache (the sign-in form), then
// signed in, reloading: the files come compressed, and a reload
// revalidates index.html alone. It logs what docs/web-client.md reports:
// bytes on the wire, first paint, and when the messages show.
func TestBrowser_LoadOverSlow4G(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	bob, _ := signedIn(t, ts, "bob")
	bob.join("general")
	fillRoom(t, bob, "general", "message", 30)
	b := newBrowser(t)
	p := b.newPage("alice", "about:blank")
	p.throttle(&slow4G)
	// Record when the first message row appears, from the start of each
	// navigation.
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: `
			new MutationObserver((_, obs) => {
				if (document.querySelector('#messages .msg')) { window.__messagesAt = performance.now(); obs.disconnect(); }
			}).observe(document, { subtree: true, childList: true });`})
		return err
	}))

	type load struct {
		Bytes      int     `json:"bytes"`
		Requests   int     `json:"requests"`
		FirstPaint float64 `json:"firstPaint"`
		Messages   float64 `json:"messages"`
	}
	measure := func() load {
		return eval[load](p, `(() => {
			const nav = performance.getEntriesByType('navigation')[0];
			const res = performance.getEntriesByType('resource').filter((r) => !r.name.startsWith('ws'));
			const paint = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
			return { bytes: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0), requests: res.length + 1,
				firstPaint: paint ? paint.startTime : -1, messages: window.__messagesAt || -1 };
		})()`)
	}

	start := time.Now()
	p.do(chromedp.Navigate(ts.URL()))
	p.waitJS("the sign-in form shows", `!document.getElementById('signin').hidden`)
	cold := measure()
	t.Logf("first visit, empty cache, slow 4G: %d bytes in %d requests, first paint %.0f ms, sign-in form after %v",
		cold.Bytes, cold.Requests, cold.FirstPaint, time.Since(start).Round(10*time.Millisecond))

	p.throttle(nil)
	p.signUp("alice")
	p.joinRoom("general")
	p.waitMessage("message 30")
	p.throttle(&slow4G)
	for i := 0; i < 2; i++ { // the second reload is the steady state
		p.reload()
		p.waitMessage("message 30")
	}
	warm := measure()
	t.Logf("reload, signed in, slow 4G: %d bytes in %d requests, first paint %.0f ms, messages shown at %.0f ms",
		warm.Bytes, warm.Requests, warm.FirstPaint, warm.Messages)
	if cold.Bytes > 150_000 {
		t.Errorf("a first visit transfers %d bytes; the files should come compressed", cold.Bytes)
	}
	if warm.Bytes > 20_000 {
		t.Errorf("a reload transfers %d bytes; only index.html should be revalidated", warm.Bytes)
	}
}

// throttle applies network conditions to the page (nil: none).
func (p *page) throttle(c *network.Conditions) {
	p.t.Helper()
	cond := network.Conditions{DownloadThroughput: -1, UploadThroughput: -1}
	if c != nil {
		cond = *c
	}
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{&cond},
		})
		return err
	}))
}
