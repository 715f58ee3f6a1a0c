package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNames_OnlyDotsRefused: ".", ".." and "..." are neither usernames
// nor room ids; dots inside a name are fine.
func TestNames_OnlyDotsRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	for _, name := range []string{".", "..", "..."} {
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": name, "password": "dots-password"})
		c.expectError(codeInvalidUsername)
		c.send("auth", map[string]any{"username": name, "password": "dots-password", "create": true})
		c.expectError(codeInvalidUsername)
	}
	c, _ := signedIn(t, ts, "a.b.")
	for _, room := range []string{".", "..", "..."} {
		c.send("join", map[string]string{"roomId": room})
		c.expectError(codeInvalidRoom)
	}
	c.join(".hidden.room")
	if out, err := cli(t, "dots-password\n", "user", "add", "-db", ts.cfg.DB.Path, ".."); err == nil {
		t.Fatalf("parley user add .. succeeded: %s", out)
	}
}

// TestNames_DotAccountsManageable: accounts named "." and ".." from
// before the rule can still sign in and be managed with parley user,
// directly and through a running server's admin socket, which carries
// names in the request body where path cleaning cannot touch them.
func TestNames_DotAccountsManageable(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "parley.db")
	o := openOffline(t, db)
	o.user("root")
	o.user(".")
	o.user("..")
	o.Close()

	// Directly, with no server running.
	mustCLI(t, "offline-password\n", "user", "passwd", "-db", db, ".")
	mustCLI(t, "", "user", "admin", "-db", db, "..")
	if out := mustCLI(t, "", "user", "reset", "-db", db, ".."); !strings.Contains(out, "#reset=") {
		t.Fatalf("reset link for ..: %s", out)
	}

	// Through the running server.
	cfg := testConfig(t.TempDir())
	cfg.DB.Path = db
	ts := startServer(t, &cfg)
	dot := dial(t, ts.WSURL())
	dot.auth(".", "offline-password")
	if a := dial(t, ts.WSURL()).auth("..", "..-password"); !a.IsAdmin {
		t.Fatal(".. is not an admin after parley user admin ..")
	}
	mustCLI(t, "online-password\n", "user", "passwd", "-db", db, ".")
	dot.await("loggedOut")
	dial(t, ts.WSURL()).auth(".", "online-password")
	mustCLI(t, "", "user", "admin", "-revoke", "-db", db, "..")
	if out := mustCLI(t, "", "user", "reset", "-db", db, "."); !strings.Contains(out, "#reset=") {
		t.Fatalf("reset link for . through the server: %s", out)
	}
	if out := mustCLI(t, "", "user", "unban", "-db", db, ".."); !strings.Contains(out, "was not banned") {
		t.Fatalf("unban ..: %s", out)
	}
	mustCLI(t, "", "user", "rm", "-db", db, ".")
	mustCLI(t, "", "user", "rm", "-db", db, "..")
	list := mustCLI(t, "", "user", "list", "-db", db)
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 2 && (f[1] == "." || f[1] == "..") && f[2] != "removed" {
			t.Fatalf("%s not removed through the admin socket:\n%s", f[1], list)
		}
	}
	u, err := ts.srv.store.UserByName("..")
	if err != nil || !u.Deleted {
		t.Fatalf(".. after rm: %+v, %v", u, err)
	}
}
