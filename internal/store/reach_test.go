package store

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMigrate_V4ToV5: a database written at schema v4 (made here by
// taking v5's additions away) gains the new buckets, keeps open
// registration as its default, and remembers its first account.
func TestMigrate_V4ToV5(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		withUsers bool
	}{{"with accounts", true}, {"empty", false}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".db")
			h := newHarness(t, path)
			if tc.withUsers {
				h.user("old-admin")
			}
			h.close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				for _, b := range [][]byte{bucketGuests, bucketInvites, bucketHooks, bucketBotTokens, bucketPushSubs, bucketNotify} {
					if err := tx.DeleteBucket(b); err != nil {
						return err
					}
				}
				meta := tx.Bucket(bucketMeta)
				for _, k := range [][]byte{keyRegistration, keyFirstAccount} {
					if err := meta.Delete(k); err != nil {
						return err
					}
				}
				return meta.Put(keySchema, []byte("4"))
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()

			h = newHarness(t, path)
			if got := h.st.RegistrationDefault(); got != "open" {
				t.Errorf("registration default of a v4 database: %q, want open", got)
			}
			if err := h.st.db.View(func(tx *bolt.Tx) error {
				if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != strconv.Itoa(SchemaVersion) {
					t.Errorf("schema %s after migrating", v)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// The next account is the admin only if there was none.
			if u := h.must(time.Now(), CreateUser{Name: "newcomer", PasswordHash: "h"}).User; u.Admin == tc.withUsers {
				t.Errorf("newcomer admin = %v", u.Admin)
			}
		})
	}
	if got := mustOpen(t, filepath.Join(dir, "fresh.db")).RegistrationDefault(); got != "invite" {
		t.Errorf("registration default of a new database: %q, want invite", got)
	}
}

func TestStore_GuestsAndInvites(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "parley.db"))
	now := time.Now()
	// A guest first: the first real account is still the admin.
	g := h.must(now, CreateGuest{Name: "Visitor", Token: TokenGrant{Hash: []byte("g"), ExpiresAt: now.Add(time.Hour)}}).User
	if g.Admin || !g.Guest {
		t.Fatalf("guest %+v", g)
	}
	owner := h.must(now, CreateUser{Name: "owner", PasswordHash: "h", RequireInvite: true}).User
	if !owner.Admin {
		t.Fatal("the first account after a guest is not the admin")
	}
	if err := h.do(now, CreateGuest{Name: "OWNER", Token: TokenGrant{Hash: []byte("x"), ExpiresAt: now.Add(time.Hour)}}).Err; !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("guest with an account's name: %v", err)
	}
	if err := h.do(now, CreateGuest{Name: "visitor", Token: TokenGrant{Hash: []byte("y"), ExpiresAt: now.Add(time.Hour)}}).Err; !errors.Is(err, ErrGuestNameInUse) {
		t.Fatalf("guest with a guest's name: %v", err)
	}
	if err := h.do(now, CreateUser{Name: "visitor", PasswordHash: "h"}).Err; !errors.Is(err, ErrUsernameTaken) {
		t.Fatalf("account with a guest's name: %v", err)
	}
	h.must(now, JoinRoom{RoomID: "lobby", UserID: owner.ID, AllowCreate: true})
	h.must(now, JoinRoom{RoomID: "lobby", UserID: g.ID})
	h.must(now, EndGuest{UserID: g.ID})
	if m, _ := h.st.IsMember("lobby", g.ID); m {
		t.Fatal("an ended guest is still a member")
	}
	if _, _, err := h.st.TokenUser([]byte("g"), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an ended guest's token: %v", err)
	}
	h.must(now, CreateGuest{Name: "visitor", Token: TokenGrant{Hash: []byte("z"), ExpiresAt: now.Add(time.Hour)}})

	// Invite links.
	if err := h.do(now, CreateUser{Name: "nobody", PasswordHash: "h", RequireInvite: true}).Err; !errors.Is(err, ErrInviteRequired) {
		t.Fatalf("sign-up without an invite: %v", err)
	}
	member := h.must(now, CreateUser{Name: "member", PasswordHash: "h"}).User
	h.must(now, JoinRoom{RoomID: "lobby", UserID: member.ID})
	var forbidden *ForbiddenError
	if err := h.do(now, CreateInviteLink{Hash: []byte("i1"), ActorID: member.ID, RoomID: "lobby", ExpiresAt: now.Add(time.Hour)}).Err; !errors.As(err, &forbidden) {
		t.Fatalf("a member's invite link: %v", err)
	}
	link := h.must(now, CreateInviteLink{Hash: []byte("i1"), ActorID: owner.ID, RoomID: "lobby", ExpiresAt: now.Add(time.Hour), MaxUses: 2}).Invite
	out := h.must(now, CreateUser{Name: "new1", PasswordHash: "h", RequireInvite: true, Invite: []byte("i1")})
	if out.Room.ID != "lobby" || out.User.Admin {
		t.Fatalf("invited account: %+v in %+v", out.User, out.Room)
	}
	if links, _ := h.st.InviteLinks(owner.ID); len(links) != 1 || links[0].Uses != 1 || links[0].ID != link.ID {
		t.Fatalf("links after one use: %+v", links)
	}
	h.must(now, CreateUser{Name: "new2", PasswordHash: "h", RequireInvite: true, Invite: []byte("i1")})
	if err := h.do(now, CreateUser{Name: "new3", PasswordHash: "h", RequireInvite: true, Invite: []byte("i1")}).Err; !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("a used-up link: %v", err)
	}
	h.must(now, CreateInviteLink{Hash: []byte("i2"), ActorID: owner.ID, ExpiresAt: now.Add(time.Minute)})
	if err := h.do(now.Add(2*time.Minute), CreateUser{Name: "late", PasswordHash: "h", Invite: []byte("i2")}).Err; !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("an expired link: %v", err)
	}
	if n := h.must(now.Add(2*time.Minute), Expire{}).Count; n != 1 { // the expired link
		t.Fatalf("expire deleted %d", n)
	}
}

func TestStore_BotsHooksGroupsPush(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "parley.db"))
	now := time.Now()
	admin, owner, other := h.user("admin"), h.user("owner"), h.user("other")
	h.must(now, JoinRoom{RoomID: "ops", UserID: owner, AllowCreate: true})
	h.must(now, JoinRoom{RoomID: "ops", UserID: other})

	var forbidden *ForbiddenError
	if err := h.do(now, CreateBot{Name: "robot", TokenHash: []byte("b"), ActorID: owner}).Err; !errors.As(err, &forbidden) {
		t.Fatalf("a bot made by a non-admin: %v", err)
	}
	bot := h.must(now, CreateBot{Name: "robot", TokenHash: []byte("b"), ActorID: admin}).User
	if u, exp, err := h.st.TokenUser([]byte("b"), now); err != nil || u.ID != bot.ID || !u.Bot || exp.Year() != 9999 {
		t.Fatalf("bot token: %+v %v %v", u, exp, err)
	}

	if err := h.do(now, CreateHook{Hash: []byte("h"), RoomID: "ops", ActorID: other, BotName: "alerts"}).Err; !errors.As(err, &forbidden) {
		t.Fatalf("a hook made by a member: %v", err)
	}
	hook := h.must(now, CreateHook{Hash: []byte("h"), RoomID: "ops", ActorID: owner, BotName: "alerts"}).Hook
	found, err := h.st.HookByHash([]byte("h"))
	if err != nil || found.ID != hook.ID || found.RoomID != "ops" {
		t.Fatalf("hook by hash: %+v %v", found, err)
	}
	msg := h.must(now, PostMessage{RoomID: "ops", SenderID: hook.BotID, Content: "disk full", Label: "Grafana"}).Message
	if !msg.Bot || msg.Label != "Grafana" {
		t.Fatalf("a hook's message: %+v", msg)
	}
	if err := h.do(now, PostMessage{RoomID: "ops", SenderID: other, Content: "x", Label: "Fake"}).Message; err.Label != "" {
		t.Fatal("a person's message took a bot label")
	}
	h.must(now, DeleteHook{ID: hook.ID, ActorID: admin})
	if m, _ := h.st.IsMember("ops", hook.BotID); m {
		t.Fatal("a deleted hook's bot is still a member")
	}

	// Groups: at most MaxMembers, counted with the creator.
	if err := h.do(now, CreateGroup{RoomID: "g-1", CreatorID: owner, MemberIDs: []uint64{other, admin}, MaxMembers: 2}).Err; !errors.Is(err, ErrRoomFull) {
		t.Fatalf("an oversized group: %v", err)
	}
	g := h.must(now, CreateGroup{RoomID: "g-1", CreatorID: owner, MemberIDs: []uint64{other}, MaxMembers: 3}).Room
	if !g.Group || !g.Private || g.MemberCount != 2 {
		t.Fatalf("group %+v", g)
	}
	h.must(now, Invite{RoomID: "g-1", ActorID: owner, TargetID: admin})
	if err := h.do(now, Invite{RoomID: "g-1", ActorID: owner, TargetID: bot.ID}).Err; !errors.Is(err, ErrRoomFull) {
		t.Fatalf("a fourth member of a group of 3: %v", err)
	}

	// Push subscriptions go with their device's token.
	tok := []byte("device")
	h.must(now, IssueToken{UserID: other, Token: TokenGrant{Hash: tok, ExpiresAt: now.Add(time.Hour)}})
	for i := range 3 {
		h.must(now.Add(time.Duration(i)*time.Second), AddPushSubscription{UserID: other, TokenHash: tok,
			Endpoint: "https://push.example/" + strconv.Itoa(i), P256dh: "k", Auth: "a", Max: 2})
	}
	h.must(now, SetNotifyLevel{UserID: other, RoomID: "ops", Level: NotifyAll})
	targets, err := h.st.PushTargets("ops", []uint64{other}, now)
	if err != nil || len(targets) != 1 || len(targets[0].Subs) != 2 || targets[0].Subs[0].Endpoint == "https://push.example/0" || targets[0].Level != NotifyAll {
		t.Fatalf("push targets: %+v %v", targets, err)
	}
	h.must(now, RevokeToken{Hash: tok})
	if targets, _ := h.st.PushTargets("ops", []uint64{other}, now); len(targets[0].Subs)+len(targets[0].Stale) != 0 {
		t.Fatalf("subscriptions outlived the device's sign-out: %+v", targets)
	}
	h.must(now, SetVAPIDKeys{Public: "pub", Private: "priv"})
	h.must(now, SetVAPIDKeys{Public: "other", Private: "other"})
	if pub, _, err := h.st.VAPIDKeys(); err != nil || pub != "pub" {
		t.Fatalf("VAPID keys: %q %v", pub, err)
	}
}
