package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/internal/store"
)

// Tests of the one write path: commands in, events out. They attack the
// races that a handler writing the store and then telling the hub used
// to leave open, and check that the state is a function of the commands.

// TestWritePath_PasswordChangeRacesLogout: two connections of one user,
// signed in separately; one changes its password while the other logs
// out, over and over. Each connection's token is its own, read and
// changed only on its own side, so this is clean under -race; the one
// that changed its password stays signed in with its new token, the
// other is signed out.
func TestWritePath_PasswordChangeRacesLogout(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.SignInsPerMinute = 0 // 46 sign-ins of one account in a few seconds
	ts := startServer(t, &cfg)
	password := "pw-0-password"
	dial(t, ts.WSURL()).auth("racer", password)
	for i := range 15 {
		changer, leaver := dial(t, ts.WSURL()), dial(t, ts.WSURL())
		changer.auth("racer", password)
		leaver.auth("racer", password)
		next := fmt.Sprintf("pw-%d-password", i+1)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_ = changer.trySend("changePassword", map[string]string{"currentPassword": password, "newPassword": next})
		}()
		go func() { defer wg.Done(); _ = leaver.trySend("logout", nil) }()
		wg.Wait()
		var pc passwordChangedData
		decodeInto(t, changer.await("passwordChanged"), &pc)
		leaver.await("loggedOut")
		leaver.waitClosed(frameWait)
		password = next
		// The new token works, and so does the connection that got it.
		changer.send("rooms", nil)
		changer.await("rooms")
		resumed := dial(t, ts.WSURL())
		resumed.send("auth", map[string]string{"token": pc.Token})
		resumed.await("authenticated")
	}
}

// TestWritePath_KickRacesSignIn: a member of a private room signs in
// (resuming with a token) while the owner kicks them, many times. Whatever
// the order, the kicked connection never receives a message of the room
// posted after the kick.
func TestWritePath_KickRacesSignIn(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond, cfg.Limits.FramesPerSecond = 0, 0 // the owner is busy
	cfg.Limits.SignInsPerMinute = 0                                 // the victim signs in 150 times
	ts := startServer(t, &cfg)
	owner, _ := signedIn(t, ts, "owner")
	owner.send("join", map[string]any{"roomId": "vault", "private": true})
	owner.await("joined")
	probe, victimA := signedIn(t, ts, "victim")
	probe.conn.Close()
	for i := range 150 {
		owner.send("invite", map[string]string{"roomId": "vault", "userId": victimA.UserID})
		owner.await("userJoined")
		victim := dial(t, ts.WSURL())
		// Sign-in and kick race.
		victim.send("auth", map[string]string{"token": victimA.Token})
		owner.send("kick", map[string]string{"roomId": "vault", "userId": victimA.UserID})
		owner.await("kicked")
		victim.await("authenticated")
		secret := fmt.Sprintf("secret %d", i)
		owner.send("chat", map[string]string{"roomId": "vault", "content": secret})
		owner.awaitMessage(secret)
		for _, f := range victim.sync() {
			if f.Type == "message" && strings.Contains(string(f.Data), secret) {
				t.Fatalf("round %d: the kicked connection received %s", i, f.Data)
			}
		}
		victim.conn.Close()
	}
}

// TestWritePath_OutcomeOnceAndMetricsFirst: a message's acknowledgement
// (its sender's copy) and a refusal each reach the sender exactly once,
// and /metrics has counted the message by the time the sender sees it.
func TestWritePath_OutcomeOnceAndMetricsFirst(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, _ := signedIn(t, ts, "owner")
	owner.join("hall")
	member, memberA := signedIn(t, ts, "member")
	member.join("hall")
	owner.await("userJoined")
	base := scrape(t, ts.URL()+"/metrics")[`parley_messages_total{kind="room"}`]
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("ok-%d", i)
		member.send("chat", map[string]string{"roomId": "hall", "content": id, "clientMsgId": id})
		member.awaitMessage(id)
		if got := scrape(t, ts.URL()+"/metrics")[`parley_messages_total{kind="room"}`]; got < base+float64(i) {
			t.Fatalf("message %d acknowledged while parley_messages_total counts %v of them", i, got-base)
		}
		for _, f := range member.sync() {
			if strings.Contains(string(f.Data), `"clientMsgId":"`+id+`"`) {
				t.Fatalf("a second outcome for %s: %s %s", id, f.Type, f.Data)
			}
		}
	}
	// A refusal only the commit can find: muted while the message is
	// on its way is the same as muted before, for the commit.
	owner.send("mute", map[string]any{"roomId": "hall", "userId": memberA.UserID})
	member.await("muted")
	member.send("chat", map[string]string{"roomId": "hall", "content": "let me speak", "clientMsgId": "refused-1"})
	if e := member.awaitError(codeMuted); e.ClientMsgID != "refused-1" {
		t.Fatalf("refusal names %q, want refused-1", e.ClientMsgID)
	}
	for _, f := range member.sync() {
		if strings.Contains(string(f.Data), "refused-1") {
			t.Fatalf("a second outcome for refused-1: %s %s", f.Type, f.Data)
		}
	}
}

// TestWritePath_Deterministic records every command of a busy run (every
// command type, several users and rooms, refusals included), applies the
// recorded commands, encoded and decoded, to an empty database in other
// batches, and gets the same database: same users, tokens, rooms,
// memberships, messages, reactions, read markers and files, byte for byte.
func TestWritePath_Deterministic(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		recorded []store.Applied
	)
	cfg := testConfig(t.TempDir())
	cfg.History.PerRoom = 8 // some trimming happens
	cfg.Auth.Guests = true
	ts := startServerWith(t, &cfg, func(s *server) {
		s.bus.tap = func(ap store.Applied) {
			mu.Lock()
			defer mu.Unlock()
			recorded = append(recorded, ap)
		}
	})
	busyRun(t, ts)
	ts.Stop()

	mu.Lock()
	defer mu.Unlock()
	kinds := map[string]int{}
	refused := 0
	for _, ap := range recorded {
		kinds[store.Name(ap.Env.Cmd)]++
		if ap.Outcome.Err != nil {
			refused++
		}
	}
	for _, k := range []string{"createUser", "issueToken", "revokeToken", "setPassword", "createResetLink", "redeemResetLink",
		"setAdmin", "deleteUser", "suspendUser", "joinRoom", "leaveRoom", "invite", "kick", "ban", "unban", "mute", "unmute",
		"setRole", "setTopic", "postMessage", "editMessage", "deleteMessage", "react", "markRead", "putFile", "expire", "trimOlderThan",
		"createGuest", "endGuest", "createInviteLink", "revokeInviteLink", "createBot", "createHook", "deleteHook", "createGroup",
		"setVAPIDKeys", "addPushSubscription", "removePushSubscription", "setNotifyLevel"} {
		if kinds[k] == 0 {
			t.Errorf("the run never applied %s", k)
		}
	}
	if refused == 0 {
		t.Error("the run had no refused command")
	}
	t.Logf("%d commands, %d refused: %v", len(recorded), refused, kinds)

	var live bytes.Buffer
	exportDB(t, ts.cfg.DB.Path, &live)

	// Replay: every command through JSON, all proposed at once, so the
	// batches fall differently from the live run's.
	replay := openOffline(t, filepath.Join(t.TempDir(), "replay.db"))
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(recorded))
	for i, ap := range recorded {
		raw, err := json.Marshal(ap.Env)
		if err != nil {
			t.Fatalf("encode %s: %v", store.Name(ap.Env.Cmd), err)
		}
		var env store.Envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		replay.bus.mu.Lock()
		replay.bus.waiting[env.ID] = func(ap store.Applied) { results <- result{i, ap.Outcome.Err} }
		replay.bus.mu.Unlock()
		if err := replay.bus.log.Propose(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
	for range recorded {
		r := <-results
		if fmt.Sprint(r.err) != fmt.Sprint(recorded[r.i].Outcome.Err) {
			t.Errorf("command %d (%s): replay says %v, the live run said %v", r.i, store.Name(recorded[r.i].Env.Cmd), r.err, recorded[r.i].Outcome.Err)
		}
	}
	var again bytes.Buffer
	if err := replay.st.Export(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(live.Bytes(), again.Bytes()) {
		a, b := strings.Split(live.String(), "\n"), strings.Split(again.String(), "\n")
		for i := 0; i < min(len(a), len(b)); i++ {
			if a[i] != b[i] {
				t.Fatalf("the replayed database differs at line %d:\nlive:   %.300s\nreplay: %.300s", i+1, a[i], b[i])
			}
		}
		t.Fatalf("the replayed database differs in length: %d lines live, %d replayed", len(a), len(b))
	}
	t.Logf("both databases export to %d lines", strings.Count(live.String(), "\n"))
}

func exportDB(t *testing.T, path string, w *bytes.Buffer) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Export(w); err != nil {
		t.Fatal(err)
	}
}

// busyRun does everything a community does in a day, through the
// protocol, the upload endpoint and the admin operations.
func busyRun(t *testing.T, ts *testServer) {
	ctx := context.Background()
	alice, aliceA := signedIn(t, ts, "alice") // the first account: an admin
	bob, bobA := signedIn(t, ts, "bob")
	carol, carolA := signedIn(t, ts, "carol")
	dave, daveA := signedIn(t, ts, "dave")
	alice.join("general")
	bob.join("general")
	carol.join("general")
	alice.send("join", map[string]any{"roomId": "secret", "private": true, "topic": "shh"})
	alice.await("joined")
	alice.send("invite", map[string]string{"roomId": "secret", "userId": bobA.UserID})
	bob.await("invited")
	dave.send("join", map[string]string{"roomId": "secret"})
	dave.awaitError(codeForbidden)

	post := func(c *wsClient, room, content string, extra map[string]any) messageFrame {
		data := map[string]any{"roomId": room, "content": content, "clientMsgId": content}
		for k, v := range extra {
			data[k] = v
		}
		c.send("chat", data)
		return c.awaitMessage(content)
	}
	first := post(alice, "general", "hello @bob and @carol", nil)
	post(bob, "general", "hi alice", map[string]any{"replyTo": first.ID})
	alice.send("edit", map[string]string{"roomId": "general", "messageId": first.ID, "content": "hello @bob"})
	alice.await("messageEdited")
	for i := range 10 {
		post(carol, "general", fmt.Sprintf("chatter %d", i), nil)
	}
	post(alice, "secret", "the plan", nil)
	dave.send("private", map[string]string{"targetUserId": aliceA.UserID, "content": "psst", "clientMsgId": "dm-1"})
	dm := dave.awaitMessage("psst")
	alice.send("private", map[string]string{"targetUserId": daveA.UserID, "content": "yes?", "replyTo": dm.ID})
	alice.awaitMessage("yes?")

	last := post(carol, "general", "react to me", nil)
	for _, c := range []*wsClient{alice, bob, bob} {
		c.send("react", map[string]string{"roomId": "general", "messageId": last.ID, "emoji": "👍"})
		c.await("reaction")
	}
	carol.send("delete", map[string]string{"roomId": "general", "messageId": last.ID})
	carol.await("messageDeleted")
	bob.send("read", map[string]string{"roomId": "general", "messageId": last.ID})
	bob.sync()
	alice.send("history", map[string]string{"withUserId": daveA.UserID})
	alice.await("history")

	status, file := upload(t, ts, carolA.Token, "dot.png", pngBytes)
	if status != 201 {
		t.Fatalf("upload: %d", status)
	}
	post(carol, "general", "a picture", map[string]any{"files": []string{file.ID}})

	alice.send("setRole", map[string]string{"roomId": "general", "userId": bobA.UserID, "role": "moderator"})
	alice.await("roleChanged")
	bob.send("mute", map[string]any{"roomId": "general", "userId": carolA.UserID, "minutes": 10})
	carol.await("muted")
	carol.send("chat", map[string]string{"roomId": "general", "content": "muted words", "clientMsgId": "m-1"})
	carol.awaitError(codeMuted) // refused in the commit
	bob.send("unmute", map[string]string{"roomId": "general", "userId": carolA.UserID})
	carol.await("unmuted")
	bob.send("kick", map[string]string{"roomId": "general", "userId": aliceA.UserID})
	bob.awaitError(codeForbidden) // refused: alice outranks bob
	alice.send("kick", map[string]string{"roomId": "general", "userId": carolA.UserID, "reason": "cool off"})
	carol.await("kicked")
	carol.await("left")
	carol.join("general")
	alice.send("ban", map[string]string{"roomId": "general", "userId": daveA.UserID})
	alice.await("banned")
	alice.send("unban", map[string]string{"roomId": "general", "userId": daveA.UserID})
	alice.await("unbanned")
	alice.send("setTopic", map[string]string{"roomId": "general", "topic": "all things"})
	alice.await("roomUpdated")
	alice.send("ban", map[string]any{"userId": daveA.UserID, "global": true})
	dave.await("loggedOut")
	alice.send("unban", map[string]any{"userId": daveA.UserID, "global": true})
	alice.await("unbanned")
	bob.send("leave", map[string]string{"roomId": "secret"})
	bob.await("left")
	reachRun(t, ts, alice, bob, carolA)

	carol.send("changePassword", map[string]string{"currentPassword": "carol-password", "newPassword": "carol-password-2"})
	carol.await("passwordChanged")
	alice.send("resetLink", map[string]string{"username": "bob"})
	var link resetLinkData
	decodeInto(t, alice.await("resetLink"), &link)
	fresh := dial(t, ts.WSURL())
	fresh.send("resetPassword", map[string]string{"resetToken": link.URL[strings.Index(link.URL, "#reset=")+len("#reset="):], "newPassword": "bob-password-2"})
	fresh.await("authenticated")
	spare := dial(t, ts.WSURL())
	spare.auth("alice", "alice-password")
	spare.send("logout", nil)
	spare.await("loggedOut")

	if _, err := ts.srv.admin.AddUser(ctx, "erin", "erin-password"); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.admin.SetAdmin(ctx, "erin", true); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.admin.RemoveUser(ctx, "erin"); err != nil {
		t.Fatal(err)
	}
	ts.srv.expire(ctx)
	ts.srv.deleteOldMessages(ctx, time.Now().Add(-time.Hour))
}

// reachRun does what issue 15 added: invite links, a guest, a bot, a
// webhook, a group conversation, push subscriptions and levels.
func reachRun(t *testing.T, ts *testServer, alice, bob *wsClient, carolA authenticatedData) {
	alice.send("createInvite", map[string]any{"roomId": "general", "maxUses": 1})
	var inv inviteInfo
	decodeInto(t, alice.await("inviteCreated"), &inv)
	joiner := dial(t, ts.WSURL())
	joiner.send("auth", map[string]any{"username": "frank", "password": "frank-password", "create": true, "invite": inviteToken(t, inv.URL)})
	joiner.await("authenticated")
	alice.send("createInvite", map[string]any{})
	decodeInto(t, alice.await("inviteCreated"), &inv)
	alice.send("revokeInvite", map[string]string{"id": inv.ID})
	alice.await("inviteRevoked")

	guest := dial(t, ts.WSURL())
	guest.send("auth", map[string]string{"username": "passer-by"})
	var g authenticatedData
	decodeInto(t, guest.await("authenticated"), &g)
	guest.join("general")
	guest.send("chat", map[string]string{"roomId": "general", "content": "just passing"})
	guest.awaitMessage("just passing")
	guest.conn.Close()
	waitFor(t, "the guest is ended", func() bool {
		u, err := ts.srv.store.UserByName("passer-by")
		return err != nil || u.Deleted
	})

	alice.send("createBot", map[string]string{"username": "helper-bot"})
	alice.await("botCreated")
	alice.send("createHook", map[string]string{"roomId": "general", "name": "ci"})
	var hook hookInfo
	decodeInto(t, alice.await("hookCreated"), &hook)
	if status, _ := postHook(t, ts.URL()+hook.URL[strings.Index(hook.URL, "/hooks/"):], "application/json", `{"text":"built","username":"CI"}`); status != 200 {
		t.Fatalf("hook post: %d", status)
	}
	alice.awaitMessage("built")
	alice.send("deleteHook", map[string]string{"id": hook.ID})
	alice.await("hookDeleted")

	bob.send("createGroup", map[string]any{"userIds": []string{carolA.UserID}})
	bob.await("joined")
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	sub := map[string]any{"endpoint": "https://push.example/bob", "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(make([]byte, 16))}}
	bob.send("pushSubscribe", sub)
	bob.await("pushSubscribed")
	bob.send("setNotify", map[string]string{"roomId": "general", "level": "all"})
	bob.await("notifyUpdated")
	bob.send("pushUnsubscribe", map[string]string{"endpoint": "https://push.example/bob"})
	bob.await("pushUnsubscribed")
}
