package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser_Screenshots writes the README's screenshots of the desktop
// and phone layouts in light and dark mode to docs/. It runs only with
// PARLEY_SCREENSHOTS=1, so ordinary test runs leave the tree clean.
func TestBrowser_Screenshots(t *testing.T) {
	if os.Getenv("PARLEY_SCREENSHOTS") != "1" {
		t.Skip("set PARLEY_SCREENSHOTS=1 to write docs/screenshot-*.png")
	}
	requireChromium(t)
	ts := startServer(t, nil)

	// The cast: alice looks at the page; the others talk through the
	// protocol. dave has been around but is offline now.
	alice, _ := signedIn(t, ts, "alice")
	for _, r := range []string{"general", "design", "random", "release-2-0"} {
		alice.join(r)
	}
	bob, _ := signedIn(t, ts, "bob")
	carol, _ := signedIn(t, ts, "carol.nguyen")
	dave, _ := signedIn(t, ts, "dave")
	erin, _ := signedIn(t, ts, "erin")
	for _, c := range []*wsClient{bob, carol, dave, erin} {
		c.join("general")
	}
	bob.join("design")
	carol.join("design")

	script := []struct {
		who  *wsClient
		room string
		text string
	}{
		{dave, "general", "Morning all! Coffee machine on 3 is fixed ☕"},
		{bob, "general", "Finally. I was about to start a petition."},
		{carol, "general", "Release checklist for 2.0 is up: https://example.com/wiki/release-2.0"},
		{carol, "general", "Please add anything I missed before Thursday."},
		{alice, "general", "Looks great. I'll take the migration notes."},
		{erin, "general", "Can someone review the new onboarding copy?\nIt's short, promise — two screens."},
		{bob, "general", "@alice can you pair with me on the websocket reconnect bug after lunch?"},
		{alice, "general", "Sure, 1:30 works."},
		{dave, "general", "Heads up: staging deploy in 10 minutes."},
		{carol, "design", "New icon set is in Figma, feedback welcome."},
		{bob, "design", "The rounded ones read much better at 16px."},
		{alice, "random", "Who's up for lunch at the ramen place?"},
	}
	for i, line := range script {
		chatAck(t, line.who, line.room, line.text, fmt.Sprintf("s%d", i))
	}
	dave.conn.Close()
	alice.conn.Close()

	b := newBrowser(t)
	p := b.newPage("alice", ts.URL())
	p.signIn("alice", "alice-password")
	p.waitText("#me-name", "alice")
	p.openRoom("general")
	p.waitMessage("Heads up: staging deploy in 10 minutes.")

	// A direct message waiting, and someone typing.
	bob.send("private", map[string]string{"targetUsername": "alice", "content": "Got a minute for the deploy notes?"})
	p.waitJS("bob's direct message has a badge", `document.querySelector('#dm-list [data-peer="bob"] .badge:not([hidden])')`)
	p.do(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))

	shots := []struct {
		name          string
		width, height int64
		scale         float64
		mobile        bool
	}{
		{"desktop", 1280, 800, 1, false},
		{"phone", 390, 844, 2, true},
	}
	for _, s := range shots {
		for _, scheme := range []string{"light", "dark"} {
			opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(s.scale)}
			if s.mobile {
				opts = append(opts, chromedp.EmulateMobile)
			}
			p.do(chromedp.EmulateViewport(s.width, s.height, opts...))
			p.setColorScheme(scheme)
			carol.send("typing", map[string]any{"roomId": "general", "isTyping": true})
			p.waitText("#typing", "carol.nguyen is typing…")
			p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('timeline').scrollTop = 1e9`))
			buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatalf("screenshot %s %s: %v", s.name, scheme, err)
			}
			path := filepath.Join("docs", fmt.Sprintf("screenshot-%s-%s.png", s.name, scheme))
			if err := os.WriteFile(path, buf, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
	}
}

// chatAck sends a room message from c and waits for its acknowledgement.
func chatAck(t *testing.T, c *wsClient, room, text, clientMsgID string) {
	t.Helper()
	c.send("chat", map[string]string{"roomId": room, "content": text, "clientMsgId": clientMsgID})
	for {
		var m messageFrame
		decodeInto(t, c.await("message"), &m)
		if m.ClientMsgID == clientMsgID {
			return
		}
	}
}
