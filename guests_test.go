package main

import (
	"strings"
	"testing"
	"time"
)

// TestGuests: with auth.guests, auth {username} alone signs in a guest,
// who is refused a registered name or another guest's, is shown as a
// guest, has the limits anyone has, and is gone, the name free again,
// when its last connection closes.
func TestGuests(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		ts := startServer(t, nil)
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": "visitor"})
		c.expectError(codeInvalidPassword)
	})

	cfg := testConfig(t.TempDir())
	cfg.Auth.Guests = true
	ts := startServer(t, &cfg)
	alice, _ := signedIn(t, ts, "alice")
	alice.join("lobby")

	guest := dial(t, ts.WSURL())
	guest.send("auth", map[string]string{"username": "Visitor"})
	var a authenticatedData
	decodeInto(t, guest.expect("authenticated"), &a)
	if !a.Guest || a.IsAdmin || a.Username != "Visitor" || a.VAPIDPublicKey != "" {
		t.Fatalf("guest's authenticated: %+v", a)
	}
	j := guest.join("lobby")
	var joined roomUserData
	decodeInto(t, alice.await("userJoined"), &joined)
	if !joined.Guest || joined.Username != "Visitor" {
		t.Fatalf("userJoined of a guest: %+v", joined)
	}
	for _, u := range j.Users {
		if u.Username == "Visitor" && !u.Guest {
			t.Fatalf("joined lists the guest without guest: %+v", u)
		}
	}
	guest.send("chat", map[string]string{"roomId": "lobby", "content": "hi from a guest"})
	if m := alice.awaitMessage("hi from a guest"); m.SenderName != "Visitor" {
		t.Fatalf("the guest's message: %+v", m)
	}

	t.Run("a registered name is refused", func(t *testing.T) {
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": "ALICE"})
		c.expectError(codeAuthFailed)
	})
	t.Run("a name a guest holds is refused", func(t *testing.T) {
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": "visitor"})
		c.expectError(codeUsernameTaken)
		c.send("auth", map[string]any{"username": "visitor", "password": "a password!", "create": true})
		c.expectError(codeUsernameTaken)
	})
	t.Run("guests have anyone's limits", func(t *testing.T) {
		guest.send("changePassword", map[string]string{"currentPassword": "", "newPassword": "new password"})
		guest.expectError(codeAuthFailed, "message", "userJoined")
		guest.send("createInvite", map[string]any{"roomId": "lobby"})
		guest.expectError(codeForbidden, "message")
		guest.send("createHook", map[string]any{"roomId": "lobby"})
		guest.expectError(codeForbidden, "message")
		for i := range 25 {
			guest.send("chat", map[string]string{"roomId": "lobby", "content": strings.Repeat("x", i+1)})
		}
		guest.awaitError(codeRateLimited)
	})

	// The last connection closes: the guest leaves its rooms, and the
	// name may be taken again.
	guest.conn.Close()
	var left roomUserData
	decodeInto(t, alice.await("userLeft"), &left)
	if left.Username != "Visitor" {
		t.Fatalf("userLeft: %+v", left)
	}
	deadline := time.Now().Add(frameWait)
	for {
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": "visitor"})
		f := c.next()
		if f.Type == "authenticated" {
			var again authenticatedData
			decodeInto(t, f, &again)
			if again.UserID == a.UserID || len(again.Rooms) != 0 {
				t.Fatalf("the name came back with the old guest's identity: %+v", again)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest's name is not free after its connection closed: %s", f.Data)
		}
		c.conn.Close()
		time.Sleep(50 * time.Millisecond)
	}
}
