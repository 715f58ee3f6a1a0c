package main

import (
	"strings"
	"testing"
)

// inviteToken is the secret of an invite link's URL.
func inviteToken(t *testing.T, url string) string {
	t.Helper()
	i := strings.Index(url, "#invite=")
	if i < 0 {
		t.Fatalf("invite URL %q has no #invite=", url)
	}
	return url[i+len("#invite="):]
}

// TestInvites: on a new database registration is by invite link unless
// configured: the first account signs up freely and is the admin; then an
// admin or a room's owner makes links that sign people up and land them
// in the room, within their uses and expiry.
func TestInvites(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Auth.Registration = "" // the database's default: invite, for a new one
	ts := startServer(t, &cfg)

	admin := dial(t, ts.WSURL())
	admin.send("auth", map[string]any{"username": "root", "password": "root-password", "create": true})
	var a authenticatedData
	decodeInto(t, admin.expect("authenticated"), &a)
	if !a.IsAdmin {
		t.Fatal("the first account is not the admin")
	}
	admin.join("welcome")

	stranger := dial(t, ts.WSURL())
	stranger.send("auth", map[string]any{"username": "stranger", "password": "stranger-password", "create": true})
	if e := stranger.expectError(codeRegistrationClosed); !strings.Contains(e.Message, "invite link") {
		t.Fatalf("registration_closed says %q", e.Message)
	}
	stranger.send("auth", map[string]any{"username": "stranger", "password": "stranger-password"})
	stranger.expectError(codeAuthFailed)

	admin.send("createInvite", map[string]any{"roomId": "welcome", "maxUses": 2, "expiresInHours": 24})
	var inv inviteInfo
	decodeInto(t, admin.expect("inviteCreated"), &inv)
	if inv.RoomID != "welcome" || inv.MaxUses != 2 || !strings.HasPrefix(inv.URL, "http://") {
		t.Fatalf("inviteCreated: %+v", inv)
	}
	token := inviteToken(t, inv.URL)

	newcomer := dial(t, ts.WSURL())
	newcomer.send("auth", map[string]any{"username": "newcomer", "password": "newcomer-password", "create": true, "invite": token})
	var n authenticatedData
	decodeInto(t, newcomer.expect("authenticated"), &n)
	if n.IsAdmin || n.InvitedTo != "welcome" || len(n.Rooms) != 1 || n.Rooms[0].RoomID != "welcome" {
		t.Fatalf("the invited account: %+v", n)
	}
	var joined roomUserData
	decodeInto(t, admin.await("userJoined"), &joined)
	if joined.Username != "newcomer" || joined.InvitedBy == nil || joined.InvitedBy.Username != "root" {
		t.Fatalf("userJoined: %+v", joined)
	}

	t.Run("a room's owner makes links for their room only", func(t *testing.T) {
		newcomer.join("newcomers-room")
		newcomer.send("createInvite", map[string]any{"roomId": "newcomers-room"})
		newcomer.expect("inviteCreated", "joined")
		newcomer.send("createInvite", map[string]any{"roomId": "welcome"})
		newcomer.expectError(codeForbidden)
		newcomer.send("createInvite", map[string]any{})
		newcomer.expectError(codeForbidden)
		newcomer.send("createInvite", map[string]any{"roomId": "welcome", "expiresInHours": 24 * 365})
		newcomer.expectError(codeBadRequest)
	})

	t.Run("uses run out", func(t *testing.T) {
		second := dial(t, ts.WSURL())
		second.send("auth", map[string]any{"username": "second", "password": "second-password", "invite": token})
		second.expect("authenticated")
		third := dial(t, ts.WSURL())
		third.send("auth", map[string]any{"username": "third", "password": "third-password", "create": true, "invite": token})
		third.expectError(codeInviteInvalid)
		third.send("auth", map[string]any{"username": "third", "password": "third-password", "create": true, "invite": "made-up"})
		third.expectError(codeInviteInvalid)
	})

	t.Run("list and revoke", func(t *testing.T) {
		admin.send("createInvite", map[string]any{})
		var open inviteInfo
		decodeInto(t, admin.await("inviteCreated"), &open)
		admin.send("invites", nil)
		var list struct{ Invites []inviteInfo }
		decodeInto(t, admin.await("invites"), &list)
		found := false
		for _, l := range list.Invites {
			if l.URL != "" {
				t.Fatalf("a listed link shows its secret: %+v", l)
			}
			found = found || l.ID == open.ID
		}
		if !found {
			t.Fatalf("invites lists %+v, not %s", list.Invites, open.ID)
		}
		newcomer.send("revokeInvite", map[string]string{"id": open.ID})
		newcomer.awaitError(codeForbidden)
		admin.send("revokeInvite", map[string]string{"id": open.ID})
		admin.await("inviteRevoked")
		late := dial(t, ts.WSURL())
		late.send("auth", map[string]any{"username": "late", "password": "late-password", "invite": inviteToken(t, open.URL)})
		late.expectError(codeInviteInvalid)
	})

	t.Run("closed means closed", func(t *testing.T) {
		ts.Stop()
		ts.cfg.Auth.Registration = "closed"
		ts.start()
		admin := dial(t, ts.WSURL())
		admin.auth("root", "root-password")
		admin.send("createInvite", map[string]any{})
		var inv inviteInfo
		decodeInto(t, admin.expect("inviteCreated"), &inv)
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]any{"username": "shut-out", "password": "shut-out-password", "create": true, "invite": inviteToken(t, inv.URL)})
		c.expectError(codeRegistrationClosed)
	})
}
