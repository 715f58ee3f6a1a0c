package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
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
	dave, daveA := signedIn(t, ts, "dave")
	erin, _ := signedIn(t, ts, "erin")
	for _, c := range []*wsClient{bob, carol, dave, erin} {
		c.join("general")
	}
	bob.join("design")
	carol.join("design")
	alice.send("setTopic", map[string]string{"roomId": "general", "topic": "Everything release 2.0 · ship day is Thursday"})
	alice.await("roomUpdated")

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
		{dave, "general", "Heads up: *staging deploy* in 10 minutes, with `make deploy-staging`."},
		{carol, "design", "New icon set is in Figma, feedback welcome."},
		{bob, "design", "The rounded ones read much better at 16px."},
		{alice, "random", "Who's up for lunch at the ramen place?"},
	}
	var checklist messageFrame
	for i, line := range script {
		m := chatAck(t, line.who, line.room, line.text, fmt.Sprintf("s%d", i))
		if i == 2 {
			checklist = m
		}
	}
	// A reply, and an image with reactions.
	erin.send("chat", map[string]string{"roomId": "general", "content": "Added the search index rebuild to it.", "replyTo": checklist.ID})
	erin.awaitMessage("Added the search index rebuild to it.")
	status, img := upload(t, ts, daveA.Token, "staging-dashboard.png", dashboardPNG(t))
	if status != 201 {
		t.Fatalf("upload: %d", status)
	}
	dave.send("chat", map[string]any{"roomId": "general", "content": "Staging after the deploy: all green.", "files": []string{img.ID}})
	shipped := dave.awaitMessage("Staging after the deploy: all green.")
	for _, r := range []struct {
		who   *wsClient
		emoji string
	}{{bob, "🎉"}, {carol, "🎉"}, {erin, "🚀"}, {bob, "🚀"}} {
		r.who.send("react", map[string]string{"roomId": "general", "messageId": shipped.ID, "emoji": r.emoji})
		r.who.await("reaction")
	}
	dave.conn.Close()
	alice.conn.Close()

	b := newBrowser(t)
	p := b.newPage("alice", ts.URL())
	p.signIn("alice", "alice-password")
	p.waitText("#me-name", "alice")
	p.openRoom("general")
	p.waitMessage("Staging after the deploy: all green.")
	p.waitJS("the image is shown", `document.querySelector('#messages .msg-image img')?.complete`)
	// alice adds her 🎉 to the others'.
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#messages .reaction[data-emoji="🎉"]').click()`))
	p.waitJS("alice's reaction counts", `document.querySelector('#messages .reaction.is-mine')`)
	// A mention of alice in a room she is not looking at.
	chatAck(t, carol, "design", "@alice could you look at the icon sizes?", "mention")
	p.waitJS("#design has a mention badge", `!document.querySelector('#room-list [data-room="design"] .nav-mention').hidden`)

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
			p.hover(`document.getElementById('conv-title')`) // no message under the pointer
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
func chatAck(t *testing.T, c *wsClient, room, text, clientMsgID string) messageFrame {
	t.Helper()
	c.send("chat", map[string]string{"roomId": room, "content": text, "clientMsgId": clientMsgID})
	for {
		var m messageFrame
		decodeInto(t, c.await("message"), &m)
		if m.ClientMsgID == clientMsgID {
			return m
		}
	}
}

// dashboardPNG draws a small bar chart to stand for a shared screenshot.
func dashboardPNG(t *testing.T) []byte {
	t.Helper()
	const w, h = 480, 220
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill := func(x0, y0, x1, y1 int, c color.RGBA) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	fill(0, 0, w, h, color.RGBA{246, 247, 252, 255})
	fill(0, 0, w, 34, color.RGBA{29, 31, 58, 255})
	for i, c := range []color.RGBA{{255, 95, 87, 255}, {254, 188, 46, 255}, {40, 200, 64, 255}} {
		fill(16+i*18, 12, 26+i*18, 22, c)
	}
	heights := []int{70, 95, 82, 120, 105, 140, 132, 150, 146, 158}
	for i, bh := range heights {
		x := 30 + i*44
		c := color.RGBA{91, 79, 224, 255}
		if i >= 7 {
			c = color.RGBA{34, 160, 107, 255}
		}
		fill(x, h-24-bh, x+28, h-24, c)
	}
	fill(20, h-24, w-20, h-22, color.RGBA{213, 215, 227, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
