package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestCLI_InviteHookBot: parley invite, parley hook and parley bot work
// through a running server's admin socket, and parley invite on a stopped
// server's database.
func TestCLI_InviteHookBot(t *testing.T) {
	ts := startServer(t, nil)
	db := ts.cfg.DB.Path
	alice, _ := signedIn(t, ts, "alice")
	alice.join("ops")
	local := func(url string) string { // the links name server.public_url, here localhost:8080
		return ts.URL() + url[strings.Index(url, "/hooks/"):]
	}
	urlIn := regexp.MustCompile(`https?://\S+`)

	out := mustCLI(t, "", "hook", "add", "ops", "-name", "deploys", "-db", db)
	hookURL := urlIn.FindString(out)
	if !strings.Contains(out, "as deploys") || !strings.Contains(hookURL, "/hooks/") {
		t.Fatalf("hook add said %q", out)
	}
	if status, _ := postHook(t, local(hookURL), "application/json", `{"text": "from the command line's hook"}`); status != 200 {
		t.Fatalf("posting to the hook: %d", status)
	}
	alice.awaitMessage("from the command line's hook")
	id := strings.Fields(mustCLI(t, "", "hook", "list", "-db", db))[4] // after the header's four columns
	if !strings.Contains(out, id) {
		t.Fatalf("hook list names %q, add said %q", id, out)
	}

	out = mustCLI(t, "", "invite", "-room", "ops", "-uses", "1", "-db", db)
	inv := urlIn.FindString(out)
	c := dial(t, ts.WSURL())
	c.send("auth", map[string]any{"username": "carl", "password": "carl-password", "create": true, "invite": inviteToken(t, inv)})
	var a authenticatedData
	decodeInto(t, c.expect("authenticated"), &a)
	if a.InvitedTo != "ops" {
		t.Fatalf("the invited account: %+v", a)
	}

	out = mustCLI(t, "", "bot", "add", "robo", "-db", db)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	b := dial(t, ts.WSURL())
	b.send("auth", map[string]string{"token": lines[len(lines)-1]})
	b.expect("authenticated")

	mustCLI(t, "", "hook", "rm", id, "-db", db)
	if status, _ := postHook(t, local(hookURL), "application/json", `{"text": "gone"}`); status != 404 {
		t.Fatalf("a removed hook answers %d", status)
	}
	if _, err := cli(t, "", "hook", "rm", id, "-db", db); err == nil {
		t.Fatal("removing a hook twice succeeded")
	}

	ts.Stop()
	if out := mustCLI(t, "", "invite", "-db", db); !strings.Contains(out, "#invite=") {
		t.Fatalf("invite on a stopped server's database said %q", out)
	}
}
