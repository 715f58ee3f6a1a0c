package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestSignIn_CreateFlag: create: false never registers (a typo is a failed
// sign-in, nobody comes online), create: true never signs in to an
// existing account, and without create the tutorial's form does either.
func TestSignIn_CreateFlag(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	watcher, _ := signedIn(t, ts, "alice")

	typo := dial(t, ts.WSURL())
	typo.send("auth", map[string]any{"username": "alcie", "password": "alice-password", "create": false})
	typo.expectError(codeAuthFailed)
	watcher.none("userOnline")
	if _, err := ts.srv.store.UserByName("alcie"); err == nil {
		t.Fatal("create: false registered the account")
	}

	taken := dial(t, ts.WSURL())
	taken.send("auth", map[string]any{"username": "ALICE", "password": "alice-password", "create": true})
	if e := taken.expectError(codeUsernameTaken); !strings.Contains(e.Message, "alice") {
		t.Fatalf("username_taken message %q does not name the account", e.Message)
	}

	fresh := dial(t, ts.WSURL())
	fresh.send("auth", map[string]any{"username": "bob", "password": "bob-password", "create": true})
	var a authenticatedData
	decodeInto(t, fresh.expect("authenticated"), &a)
	if !a.Created {
		t.Fatal("create: true did not register bob")
	}
	again := dial(t, ts.WSURL())
	again.send("auth", map[string]any{"username": "bob", "password": "bob-password", "create": false})
	decodeInto(t, again.expect("authenticated"), &a)
	if a.Created {
		t.Fatal("create: false says it registered an existing account")
	}
}

// TestSignIn_ConcurrentGuessesAreCounted: 50 wrong guesses for one
// account sent at once on 50 connections get at most the allowance
// checked; the rest are refused before any password is hashed. The same
// holds for sign-ups from one address.
func TestSignIn_ConcurrentGuessesAreCounted(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Auth.FailedLoginsPerUser = 10
	cfg.Auth.FailedLoginsPerIP = 20
	cfg.Auth.SignupsPerIPPerHour = 10
	cfg.Limits.ConnectionsPerIP = 0 // the attack's 100 connections
	ts := startServer(t, &cfg)
	dial(t, ts.WSURL()).auth("target", "the-real-password")

	attack := func(n int, frame func(i int) map[string]any) map[string]int {
		conns := make([]*wsClient, n)
		for i := range conns {
			conns[i] = dial(t, ts.WSURL())
		}
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); _ = c.trySend("auth", frame(i)) }()
		}
		wg.Wait()
		codes := map[string]int{}
		for _, c := range conns {
			f := c.next()
			if f.Type == "authenticated" {
				codes["authenticated"]++
				continue
			}
			var e errorData
			decodeInto(t, f, &e)
			codes[e.Code]++
		}
		return codes
	}
	guesses := attack(50, func(i int) map[string]any {
		return map[string]any{"username": "target", "password": fmt.Sprintf("guess-%02d-password", i)}
	})
	t.Logf("50 simultaneous guesses: %v", guesses)
	if guesses[codeAuthFailed] > 10 || guesses[codeAuthFailed]+guesses[codeRateLimited] != 50 {
		t.Fatalf("50 simultaneous guesses: %v, want at most 10 checked and the rest rate_limited", guesses)
	}
	signups := attack(50, func(i int) map[string]any {
		return map[string]any{"username": fmt.Sprintf("sock%02d", i), "password": "puppet-password"}
	})
	t.Logf("50 simultaneous sign-ups: %v", signups)
	if signups["authenticated"] > 10 || signups["authenticated"]+signups[codeRateLimited] != 50 {
		t.Fatalf("50 simultaneous sign-ups: %v, want at most 10 accounts", signups)
	}
}

// TestSignIn_ResetLinkAndBans: a server-wide ban, and a password change,
// revoke a user's outstanding reset links; a link cannot sign in a
// suspended account.
func TestSignIn_ResetLinkAndBans(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	admin, _ := signedIn(t, ts, "admin") // the first account
	_, troll := signedIn(t, ts, "troll")
	issue := func(user string) string {
		t.Helper()
		admin.send("resetLink", map[string]string{"username": user})
		var l resetLinkData
		decodeInto(t, admin.await("resetLink"), &l)
		return l.URL[strings.Index(l.URL, "#reset=")+len("#reset="):]
	}
	redeem := func(token string) *wsClient {
		c := dial(t, ts.WSURL())
		c.send("resetPassword", map[string]string{"resetToken": token, "newPassword": "a-new-password"})
		return c
	}

	before := issue("troll")
	admin.send("ban", map[string]any{"userId": troll.UserID, "global": true})
	admin.await("banned")
	redeem(before).expectError(codeAuthFailed) // revoked by the ban
	during := issue("troll")
	redeem(during).expectError(codeBanned) // refused while banned
	admin.send("unban", map[string]any{"userId": troll.UserID, "global": true})
	admin.await("unbanned")
	redeem(during).await("authenticated") // the ban decided, not the link

	link := issue("troll")
	if err := ts.srv.admin.SetPassword(context.Background(), "troll", "set-by-admin"); err != nil {
		t.Fatal(err)
	}
	redeem(link).expectError(codeAuthFailed) // revoked by the password change
}

// fromAddress dials as a client at ip behind the server's trusted proxy.
func fromAddress(t *testing.T, ts *testServer, ip string) *wsClient {
	t.Helper()
	return dialHeader(t, ts.WSURL(), http.Header{"X-Forwarded-For": {ip}})
}

// TestLockout_FailuresSlowTheGuesser: wrong guesses for the admin from
// one address stop that address guessing, not the admin signing in from
// elsewhere; password failures never block a valid token, even from the
// guesser's own address; guesses spread over many addresses still meet
// the per-account cap.
func TestLockout_FailuresSlowTheGuesser(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Server.TrustedProxies = []string{"127.0.0.1"}
	cfg.Auth.FailedLoginsPerUser = 30 // the default is 100; fewer guesses to reach it
	ts := startServer(t, &cfg)
	owner := fromAddress(t, ts, "198.51.100.7")
	ownerA := owner.auth("admin", "the-admins-password")

	guesser := fromAddress(t, ts, "203.0.113.66")
	guess := func(c *wsClient, user string, i int) string {
		t.Helper()
		c.send("auth", map[string]any{"username": user, "password": fmt.Sprintf("guess-%03d-password", i), "create": false})
		var e errorData
		decodeInto(t, c.expect("error"), &e)
		return e.Code
	}
	for i := range 10 {
		if code := guess(guesser, "admin", i); code != codeAuthFailed {
			t.Fatalf("guess %d: %s", i, code)
		}
	}
	if code := guess(guesser, "admin", 10); code != codeRateLimited {
		t.Fatalf("the 11th guess from one address: %s, want rate_limited", code)
	}
	guesser.send("auth", map[string]string{"username": "admin", "password": "the-admins-password"})
	guesser.expectError(codeRateLimited) // no oracle for the guesser
	// The owner, from an address that has not failed, gets in.
	fromAddress(t, ts, "198.51.100.7").auth("admin", "the-admins-password")
	fromAddress(t, ts, "192.0.2.44").auth("admin", "the-admins-password")

	// The guesser's address runs out for everyone behind it, but tokens
	// still resume there.
	for i := range 10 {
		guess(guesser, fmt.Sprintf("nobody%d", i), i)
	}
	neighbour := fromAddress(t, ts, "203.0.113.66")
	neighbour.send("auth", map[string]string{"username": "neighbour", "password": "neighbour-password"})
	neighbour.expectError(codeRateLimited)
	neighbour.send("auth", map[string]string{"token": ownerA.Token})
	neighbour.expect("authenticated")

	// Many addresses: the per-account cap (30 here) stops them, 10 each.
	failures := 10 // the first guesser's
	for a := 1; failures < 30; a++ {
		c := fromAddress(t, ts, fmt.Sprintf("203.0.113.%d", a))
		for i := 0; i < 10 && failures < 30; i++ {
			if code := guess(c, "admin", i); code != codeAuthFailed {
				t.Fatalf("guess from address %d: %s", a, code)
			}
			failures++
		}
	}
	if code := guess(fromAddress(t, ts, "203.0.113.200"), "admin", 0); code != codeRateLimited {
		t.Fatalf("past the per-account cap from a fresh address: %s, want rate_limited", code)
	}
}
