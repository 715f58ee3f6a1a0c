package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// tutorialClient is the tutorial's own page, exactly as it ships: it
// signs in with auth {username} and no password, and opens its socket to
// ws://localhost:8080.
const tutorialClient = "../shared/seed/reference/client.html"

// TestBrowser_TutorialClient serves the tutorial's unmodified client.html
// from an origin of its own, as its author would, and chats between it
// and parley's page: with the two settings README shows (auth.guests and
// server.allowed_origins), it signs in as a guest, joins a room, and
// messages go both ways.
func TestBrowser_TutorialClient(t *testing.T) {
	html, err := os.ReadFile(tutorialClient)
	if err != nil {
		t.Skipf("the tutorial's client is not here: %v", err)
	}
	// The tutorial's page, from another origin.
	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(html)
	}))
	t.Cleanup(pageSrv.Close)

	cfg := testConfig(t.TempDir())
	cfg.Auth.Guests = true
	cfg.Server.AllowedOrigins = []string{pageSrv.URL}
	ts := startServer(t, &cfg)

	// The page dials ws://localhost:8080, hard-coded; the browser is told
	// that localhost:8080 is where this test's server listens, so the test
	// needs no fixed port.
	_, port, _ := net.SplitHostPort(ts.addr)
	b := newBrowserWith(t, chromedp.Flag("host-resolver-rules", "MAP localhost:8080 127.0.0.1:"+port))

	alice := b.newPage("alice", ts.URL())
	alice.signUp("alice")
	alice.joinRoom("general")

	tutor := b.newPage("tutorial", pageSrv.URL)
	tutor.typeText("#username", "tutor")
	tutor.click(`#login button`)
	tutor.waitJS("the tutorial page signed in", `document.getElementById('chat').style.display === 'block'`)
	tutor.typeText("#roomInput", "general")
	tutor.click(`#rooms button`)
	alice.waitJS("the guest is listed in #general", `document.querySelector('#members-online [data-user="tutor"]')`)
	tutor.typeText("#messageInput", "hello from the tutorial's page")
	tutor.click(`#chat > button`)
	alice.waitMessage("hello from the tutorial's page")
	if got := alice.messages(); got[len(got)-1].Sender != "tutor" {
		t.Errorf("the guest's message shows as sent by %q", got[len(got)-1].Sender)
	}
	alice.waitJS("the guest is marked as a guest", `document.querySelector('#members-online [data-user="tutor"] .member-tag')?.textContent === 'guest'`)

	alice.send("hi tutor, alice here")
	tutor.waitText("#messages", "alice: hi tutor, alice here")

	// A registered name is not a guest's to take: the page stays on its
	// sign-in form (it shows no errors), and nobody named alice appears.
	impostor := b.newPage("impostor", pageSrv.URL)
	impostor.typeText("#username", "alice")
	impostor.click(`#login button`)
	impostor.do(chromedp.Sleep(500 * time.Millisecond))
	if shown := eval[string](impostor, `document.getElementById('chat').style.display`); shown == "block" {
		t.Error("a guest signed in with a registered name")
	}
}
