package main

import (
	"parley/internal/store"

	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestTutorialClient walks the tutorial's client flow unchanged (only a
// password added to auth), connecting to the bare host as the tutorial's
// page does: connect, auth, presence, join, chat, typing, private
// messages, errors, leave and disconnect.
func TestTutorialClient(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	bare := "ws://" + ts.addr // the tutorial's client connects to ws://localhost:8080

	john := dial(t, bare)
	john.send("auth", map[string]string{"username": "john_doe", "password": "secret-password"})
	var ja authenticatedData
	decodeInto(t, john.expect("authenticated"), &ja)
	if ja.Username != "john_doe" || ja.ClientID == "" || len(ja.OnlineUsers) != 1 {
		t.Fatalf("authenticated = %+v", ja)
	}

	jane := dial(t, bare)
	jane.send("auth", map[string]string{"username": "jane", "password": "another-password"})
	var jna authenticatedData
	decodeInto(t, jane.expect("authenticated"), &jna)
	if len(jna.OnlineUsers) != 2 {
		t.Fatalf("jane sees online users %+v, want john_doe and jane", jna.OnlineUsers)
	}
	var online userRef
	decodeInto(t, john.expect("userOnline"), &online)
	if online.Username != "jane" || online.UserID != jna.UserID {
		t.Fatalf("userOnline = %+v", online)
	}

	// The tutorial's join carries username too; it is ignored.
	john.send("join", map[string]string{"roomId": "my-custom-room", "username": "john_doe"})
	var jj joinedData
	decodeInto(t, john.expect("joined"), &jj)
	if jj.RoomID != "my-custom-room" || jj.History == nil || len(jj.Users) != 1 {
		t.Fatalf("joined = %+v", jj)
	}
	jane.send("join", map[string]string{"roomId": "my-custom-room", "username": "jane"})
	jane.expect("joined")
	var uj roomUserData
	decodeInto(t, john.expect("userJoined"), &uj)
	if uj.Username != "jane" || uj.UserID != jna.UserID || uj.RoomID != "my-custom-room" {
		t.Fatalf("userJoined = %+v", uj)
	}

	john.send("chat", map[string]string{"roomId": "my-custom-room", "content": "Hello!"})
	for _, c := range []*wsClient{john, jane} {
		var m messageFrame
		decodeInto(t, c.expect("message"), &m)
		if m.Content != "Hello!" || m.SenderName != "john_doe" || m.SenderID != ja.UserID || m.RoomID != "my-custom-room" || m.ID == "" {
			t.Fatalf("message = %+v", m)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil {
			t.Fatalf("timestamp %q: %v", m.Timestamp, err)
		}
	}

	jane.send("typing", map[string]any{"roomId": "my-custom-room", "isTyping": true})
	var ty typingOutData
	decodeInto(t, john.expect("typing"), &ty)
	if ty.Username != "jane" || !ty.IsTyping {
		t.Fatalf("typing = %+v", ty)
	}
	jane.quiet() // typing is not echoed to its sender

	// Private messages address the userId from onlineUsers.
	var target string
	for _, u := range jna.OnlineUsers {
		if u.Username == "john_doe" {
			target = u.UserID
		}
	}
	jane.send("private", map[string]string{"targetUserId": target, "content": "psst"})
	var pm, ps messageFrame
	decodeInto(t, john.expect("privateMessage"), &pm)
	decodeInto(t, jane.expect("privateMessageSent"), &ps)
	if pm.Content != "psst" || pm.SenderName != "jane" || ps.ID != pm.ID {
		t.Fatalf("privateMessage = %+v, privateMessageSent = %+v", pm, ps)
	}

	// The tutorial's error messages are kept.
	jane.sendRaw([]byte("not json"))
	if e := jane.expectError(codeBadRequest); e.Message != "Invalid message format" {
		t.Fatalf("message %q", e.Message)
	}
	jane.send("dance", map[string]string{})
	if e := jane.expectError(codeUnknownType); e.Message != "Unknown message type: dance" {
		t.Fatalf("message %q", e.Message)
	}
	jane.send("chat", map[string]string{"roomId": "my-custom-room"})
	if e := jane.expectError(codeBadRequest); e.Message != "Missing roomId or content" {
		t.Fatalf("message %q", e.Message)
	}
	jane.send("chat", map[string]string{"roomId": "elsewhere", "content": "hi"})
	if e := jane.expectError(codeNotMember); e.Message != "Not in room" {
		t.Fatalf("message %q", e.Message)
	}
	jane.send("private", map[string]string{"targetUserId": "9999", "content": "hi"})
	if e := jane.expectError(codeUserNotFound); e.Message != "User not found" {
		t.Fatalf("message %q", e.Message)
	}

	jane.send("leave", map[string]string{"roomId": "my-custom-room"})
	jane.expect("left")
	var ul roomUserData
	decodeInto(t, john.expect("userLeft"), &ul)
	if ul.Username != "jane" {
		t.Fatalf("userLeft = %+v", ul)
	}

	jane.conn.Close()
	var off userRef
	decodeInto(t, john.expect("userOffline"), &off)
	if off.Username != "jane" || off.UserID != jna.UserID {
		t.Fatalf("userOffline = %+v", off)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)

	t.Run("register then sign in", func(t *testing.T) {
		c := dial(t, ts.WSURL())
		first := c.auth("Carol", "carols-password")
		if !first.Created || first.UserID == "" || len(first.Token) < 22 {
			t.Fatalf("first auth = %+v", first)
		}
		if first.MaxUploadBytes != 10<<20 {
			t.Errorf("authenticated says maxUploadBytes %d, want uploads.max_bytes (10 MiB)", first.MaxUploadBytes)
		}
		expires, err := time.Parse(time.RFC3339, first.ExpiresAt)
		if err != nil || time.Until(expires) < 29*24*time.Hour {
			t.Fatalf("expiresAt %q: want about 30 days ahead (%v)", first.ExpiresAt, err)
		}
		// Names are unique ignoring case and keep their registered case.
		again := dial(t, ts.WSURL()).auth("carol", "carols-password")
		if again.Created || again.UserID != first.UserID || again.Username != "Carol" || again.Token == first.Token {
			t.Fatalf("second auth = %+v, first = %+v", again, first)
		}
	})

	t.Run("wrong password and unknown user look alike", func(t *testing.T) {
		dial(t, ts.WSURL()).auth("dave", "daves-password")
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": "dave", "password": "not-daves-password"})
		wrong := c.expectError(codeAuthFailed)
		c.send("chat", map[string]string{"roomId": "x", "content": "y"})
		c.expectError(codeUnauthenticated) // still not signed in

		closed := testConfig(t.TempDir())
		closed.Auth.Registration = "closed"
		cts := startServer(t, &closed)
		cc := dial(t, cts.WSURL())
		cc.send("auth", map[string]string{"username": "nobody", "password": "whatever-password"})
		unknown := cc.expectError(codeAuthFailed)
		if !strings.HasPrefix(unknown.Message, wrong.Message) {
			t.Fatalf("unknown user says %q, wrong password says %q", unknown.Message, wrong.Message)
		}
	})

	t.Run("create false never registers, create true only registers", func(t *testing.T) {
		dial(t, ts.WSURL()).auth("alice", "alices-password")
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]any{"username": "alice", "password": "not-alices-password", "create": false})
		wrong := c.expectError(codeAuthFailed)
		// A typo of a name is not a new account: the same answer as a
		// wrong password, and no user "alcie" exists afterwards.
		c.send("auth", map[string]any{"username": "alcie", "password": "alices-password", "create": false})
		if typo := c.expectError(codeAuthFailed); typo.Message != wrong.Message {
			t.Errorf("an unknown name says %q, a wrong password %q", typo.Message, wrong.Message)
		}
		if _, err := ts.srv.store.UserByName("alcie"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("signing in as an unknown name created it (err %v)", err)
		}
		c.send("auth", map[string]any{"username": "alice", "password": "alices-password", "create": false})
		var a authenticatedData
		decodeInto(t, c.expect("authenticated"), &a)
		if a.Created || a.Username != "alice" {
			t.Errorf("sign-in with create false = %+v", a)
		}

		n := dial(t, ts.WSURL())
		n.send("auth", map[string]any{"username": "ALICE", "password": "whatever-password", "create": true})
		if e := n.expectError(codeUsernameTaken); !strings.Contains(e.Message, "alice") {
			t.Errorf("username_taken says %q", e.Message)
		}
		n.send("auth", map[string]any{"username": "alicia", "password": "alicias-password", "create": true})
		var created authenticatedData
		decodeInto(t, n.expect("authenticated"), &created)
		if !created.Created || created.Username != "alicia" {
			t.Errorf("create true = %+v", created)
		}

		closed := testConfig(t.TempDir())
		closed.Auth.Registration = "closed"
		cc := dial(t, startServer(t, &closed).WSURL())
		cc.send("auth", map[string]any{"username": "nobody", "password": "whatever-password", "create": true})
		cc.expectError(codeRegistrationClosed)
	})

	t.Run("invalid input", func(t *testing.T) {
		c := dial(t, ts.WSURL())
		for _, tc := range []struct {
			data map[string]any
			code string
		}{
			{map[string]any{"password": "password1"}, codeBadRequest},
			{map[string]any{"username": "bad name", "password": "password1"}, codeInvalidUsername},
			{map[string]any{"username": "<script>", "password": "password1"}, codeInvalidUsername},
			{map[string]any{"username": strings.Repeat("a", 33), "password": "password1"}, codeInvalidUsername},
			{map[string]any{"username": "erin"}, codeInvalidPassword},
			{map[string]any{"username": "erin", "password": "short"}, codeInvalidPassword},
			{map[string]any{"username": "erin", "password": strings.Repeat("p", 1025)}, codeInvalidPassword},
			{map[string]any{"username": 7, "password": "password1"}, codeBadRequest},
			{map[string]any{"token": "no-such-token"}, codeAuthFailed},
		} {
			c.send("auth", tc.data)
			c.expectError(tc.code)
		}
	})

	t.Run("long passwords are not truncated", func(t *testing.T) {
		long := strings.Repeat("x", 100)
		dial(t, ts.WSURL()).auth("frank", long+"a")
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": "frank", "password": long + "b"})
		c.expectError(codeAuthFailed)
	})

	t.Run("token resumes and logout revokes it", func(t *testing.T) {
		tab1 := dial(t, ts.WSURL())
		a := tab1.auth("grace", "graces-password")
		tab2 := dial(t, ts.WSURL())
		tab2.send("auth", map[string]string{"token": a.Token})
		var resumed authenticatedData
		decodeInto(t, tab2.expect("authenticated"), &resumed)
		if resumed.UserID != a.UserID || resumed.Token != a.Token || resumed.Created {
			t.Fatalf("resumed = %+v", resumed)
		}
		other := dial(t, ts.WSURL()) // another device, another token
		other.auth("grace", "graces-password")

		tab1.send("auth", map[string]string{"token": a.Token})
		tab1.expectError(codeAlreadyAuthenticated)
		tab1.send("logout", map[string]any{})
		for _, c := range []*wsClient{tab1, tab2} {
			c.await("loggedOut")
			var ce *websocket.CloseError
			if err := c.waitClosed(frameWait); !asCloseError(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				t.Fatalf("after logout: %v, want close 1000", err)
			}
		}
		other.send("rooms", map[string]any{})
		other.expect("rooms") // the other device is still signed in

		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"token": a.Token})
		c.expectError(codeAuthFailed)
	})

	t.Run("everything but auth needs auth", func(t *testing.T) {
		c := dial(t, ts.WSURL())
		for _, typ := range []string{"join", "leave", "chat", "private", "typing", "history", "rooms", "read", "logout"} {
			c.send(typ, map[string]string{"roomId": "general", "content": "hi"})
			if e := c.expectError(codeUnauthenticated); e.Type != typ {
				t.Fatalf("error for %s names type %q", typ, e.Type)
			}
		}
	})
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

// TestPresence checks presence is per user, not per connection.
func TestPresence(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	watcher, _ := signedIn(t, ts, "watcher")

	tab1, _ := signedIn(t, ts, "henry")
	decodeUserRef(t, watcher.expect("userOnline"), "henry")
	tab2 := dial(t, ts.WSURL())
	tab2.auth("henry", "henry-password")
	watcher.quiet() // a second tab is not a new arrival

	tab1.conn.Close()
	waitFor(t, "the server to see tab1 close", func() bool { return ts.srv.hub.Count() == 2 })
	watcher.quiet() // henry is still online in tab2
	tab2.conn.Close()
	decodeUserRef(t, watcher.expect("userOffline"), "henry")
}

// TestPresenceAboveBroadcastLimit checks that once more users are online
// than presence.broadcast_limit, someone who signs in hears of, and is
// listed, only the people they share a room or a conversation with, while
// those who signed in below the limit, and were listed everyone, keep
// hearing everyone come and go.
func TestPresenceAboveBroadcastLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Presence.BroadcastLimit = 1
	ts := startServer(t, &cfg)

	names := func(a authenticatedData) string {
		var out []string
		for _, u := range a.OnlineUsers {
			out = append(out, u.Username)
		}
		return strings.Join(out, ",")
	}
	// hears waits for typ about name, skipping presence of others.
	hears := func(c *wsClient, typ, name string) {
		t.Helper()
		for {
			var u userRef
			decodeInto(t, c.await(typ), &u)
			if u.Username == name {
				return
			}
		}
	}
	alice, _ := signedIn(t, ts, "alice") // alone: listed everyone
	alice.join("garden")
	bob, ba := signedIn(t, ts, "bob") // one other online: listed everyone
	if names(ba) != "alice,bob" {
		t.Fatalf("bob's onlineUsers = %s, want alice,bob", names(ba))
	}
	hears(alice, "userOnline", "bob")

	// Above the limit now: carol, who shares nothing, is listed alone, but
	// alice and bob, who were listed everyone, hear of her.
	carol, ca := signedIn(t, ts, "carol")
	if names(ca) != "carol" {
		t.Fatalf("carol's onlineUsers = %s, want only carol", names(ca))
	}
	hears(alice, "userOnline", "carol")
	hears(bob, "userOnline", "carol")

	// dave shares garden with alice: he lists her, not bob or carol.
	dave := dial(t, ts.WSURL())
	dave.auth("dave", "dave-password")
	dave.join("garden")
	dave.conn.Close()
	hears(alice, "userOffline", "dave")
	dave = dial(t, ts.WSURL())
	da := dave.auth("dave", "dave-password")
	if names(da) != "alice,dave" {
		t.Fatalf("dave's onlineUsers = %s, want alice,dave", names(da))
	}
	hears(alice, "userOnline", "dave")
	carol.none("userOnline", "userOffline")

	// carol leaves: alice and bob, who listed her, hear it; dave, who did
	// not, does not.
	carol.conn.Close()
	hears(alice, "userOffline", "carol")
	hears(bob, "userOffline", "carol")
	dave.none("userOffline")

	// A direct conversation also makes two people each other's audience.
	dave.send("private", map[string]string{"targetUsername": "bob", "content": "hi bob"})
	bob.await("privateMessage")
	bob.conn.Close()
	hears(dave, "userOffline", "bob")
}

func decodeUserRef(t *testing.T, f Frame, want string) {
	t.Helper()
	var u userRef
	decodeInto(t, f, &u)
	if u.Username != want {
		t.Fatalf("%s for %q, want %q", f.Type, u.Username, want)
	}
}

// TestMembership checks that membership belongs to the user, covers all
// of their connections, and outlives the connection.
func TestMembership(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ivy, _ := signedIn(t, ts, "ivy")
	joined := ivy.join("plants")
	if !joined.Created || len(joined.Users) != 1 || !joined.Users[0].Online {
		t.Fatalf("joined = %+v", joined)
	}

	jack, _ := signedIn(t, ts, "jack")
	jack.join("plants")
	ivy.await("userJoined")

	// Jack's second tab joins too: no second announcement.
	jack2 := dial(t, ts.WSURL())
	a2 := jack2.auth("jack", "jack-password")
	if len(a2.Rooms) != 1 || a2.Rooms[0].RoomID != "plants" || a2.Rooms[0].MemberCount != 2 {
		t.Fatalf("second tab's rooms = %+v", a2.Rooms)
	}
	jack2.join("plants")
	ivy.quiet()

	// Every connection of a member gets room traffic, without joining.
	ivy.send("chat", map[string]string{"roomId": "plants", "content": "water them"})
	ivy.await("message")
	jack.await("message")
	jack2.await("message")

	// Membership outlives connections.
	jack.conn.Close()
	jack2.conn.Close()
	ivy.await("userOffline")
	ivy.send("chat", map[string]string{"roomId": "plants", "content": "while you were away"})
	ivy.await("message")
	back, back2 := signedIn(t, ts, "jack")
	if len(back2.Rooms) != 1 || back2.Rooms[0].RoomID != "plants" {
		t.Fatalf("rooms after reconnect = %+v", back2.Rooms)
	}
	ivy.send("chat", map[string]string{"roomId": "plants", "content": "welcome back"})
	var m messageFrame
	decodeInto(t, back.await("message"), &m)
	if m.Content != "welcome back" {
		t.Fatalf("message %+v", m)
	}

	// The members list shows who is online.
	kate, _ := signedIn(t, ts, "kate")
	j := kate.join("plants")
	want := map[string]bool{"ivy": true, "jack": true, "kate": true}
	for _, u := range j.Users {
		if online, ok := want[u.Username]; !ok || online != u.Online {
			t.Fatalf("users = %+v", j.Users)
		}
	}
	if len(j.History) != 3 {
		t.Fatalf("history has %d messages, want 3", len(j.History))
	}

	// Leaving unsubscribes all of a user's connections.
	extra := dial(t, ts.WSURL())
	extra.auth("jack", "jack-password")
	back.send("leave", map[string]string{"roomId": "plants"})
	back.await("left")
	extra.await("left")
	ivy.await("userLeft")
	ivy.send("chat", map[string]string{"roomId": "plants", "content": "gone?"})
	ivy.await("message")
	back.quiet()
	extra.quiet()
	back.send("leave", map[string]string{"roomId": "plants"})
	back.expectError(codeNotMember)
	back.send("typing", map[string]any{"roomId": "plants", "isTyping": true})
	back.expectError(codeNotMember)
	back.send("history", map[string]any{"roomId": "plants"})
	back.expectError(codeNotMember)
}

func TestChat(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	a, aa := signedIn(t, ts, "liam")
	b, _ := signedIn(t, ts, "mia")
	a.join("lobby")
	b.join("lobby")
	a.await("userJoined")

	t.Run("verbatim, acknowledged, in order", func(t *testing.T) {
		contents := []string{
			"<img src=x onerror=alert(1)>",
			"<script>alert(1)</script>",
			"emoji 🎉 and ümlauts",
			"multi\nline\n\ttext",
			`"quotes" & \backslashes\`,
		}
		for i, content := range contents {
			a.send("chat", map[string]any{"roomId": "lobby", "content": content, "clientMsgId": fmt.Sprintf("m%d", i),
				"senderName": "impostor", "senderId": "999"})
		}
		var lastID string
		for i, content := range contents {
			for _, c := range []*wsClient{a, b} {
				var m messageFrame
				decodeInto(t, c.await("message"), &m)
				if m.Content != content || m.SenderName != "liam" || m.SenderID != aa.UserID || m.ClientMsgID != fmt.Sprintf("m%d", i) {
					t.Fatalf("message %d = %+v", i, m)
				}
				if c == a {
					if m.ID <= lastID {
						t.Fatalf("id %s after %s: ids must sort in send order", m.ID, lastID)
					}
					lastID = m.ID
				}
			}
		}
	})

	t.Run("content rules", func(t *testing.T) {
		a.send("chat", map[string]any{"roomId": "lobby", "content": "   \n ", "clientMsgId": "blank"})
		if e := a.expectError(codeInvalidContent); e.ClientMsgID != "blank" {
			t.Fatalf("error does not echo clientMsgId: %+v", e)
		}
		a.send("chat", map[string]any{"roomId": "lobby", "content": strings.Repeat("é", 4001)})
		a.expectError(codeInvalidContent)
		a.send("chat", map[string]any{"roomId": "lobby", "content": strings.Repeat("é", 4000)})
		a.await("message")
		a.send("chat", map[string]any{"roomId": "lobby", "content": "x", "clientMsgId": strings.Repeat("c", 65)})
		a.expectError(codeBadRequest)
		a.send("chat", map[string]any{"roomId": "bad room!", "content": "x"})
		a.expectError(codeInvalidRoom)
		b.await("message") // only the valid one reached the room
		b.quiet()
	})
}

func TestHistory(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0 // fill the history quickly
	ts := startServer(t, &cfg)
	a, _ := signedIn(t, ts, "noah")
	a.join("archive")
	for i := 1; i <= 130; i++ {
		a.send("chat", map[string]string{"roomId": "archive", "content": fmt.Sprintf("msg %d", i)})
	}
	for i := 1; i <= 130; i++ {
		a.await("message")
	}

	b, _ := signedIn(t, ts, "olivia")
	j := b.join("archive")
	if len(j.History) != 50 || !j.HasMore || j.History[0].Content != "msg 81" || j.History[49].Content != "msg 130" {
		t.Fatalf("joined history: %d messages, hasMore %v, first %q", len(j.History), j.HasMore, j.History[0].Content)
	}

	// Page back to the start of the retained 100.
	var all []messageFrame
	var trimmed bool
	before := j.History[0].ID
	all = append(all, j.History...)
	for {
		b.send("history", map[string]any{"roomId": "archive", "before": before, "limit": 20})
		var h historyOutData
		decodeInto(t, b.expect("history"), &h)
		all = append(h.Messages, all...)
		if h.Trimmed && h.HasMore {
			t.Errorf("a page says trimmed with hasMore")
		}
		if !h.HasMore {
			trimmed = h.Trimmed
			break
		}
		before = h.Messages[0].ID
	}
	if len(all) != 100 || all[0].Content != "msg 31" || all[99].Content != "msg 130" {
		t.Fatalf("paged %d messages from %q to %q; want the last 100, msg 31..msg 130", len(all), all[0].Content, all[len(all)-1].Content)
	}
	if !trimmed {
		t.Error("the page that reached msg 31 did not say trimmed: the 30 before it are gone, not absent")
	}
	if j.Trimmed {
		t.Error("joined says trimmed although hasMore is true")
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("gap or duplicate between %s and %s", all[i-1].ID, all[i].ID)
		}
	}

	for _, bad := range []map[string]any{
		{"roomId": "archive", "limit": 101},
		{"roomId": "archive", "limit": -1},
		{"roomId": "archive", "before": "abc"},
		{},
		{"roomId": "archive", "withUserId": "1"},
	} {
		b.send("history", bad)
		b.expectError(codeBadRequest)
	}
}

// TestHistory_Trimmed: a page that reaches the first message ever sent
// does not say trimmed; one whose start was removed by history.per_room
// does, in joined, in history, and in direct conversations.
func TestHistory_Trimmed(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MessagesPerSecond = 0
	cfg.History.PerRoom = 5
	ts := startServer(t, &cfg)
	a, _ := signedIn(t, ts, "uma")
	if j := a.join("fresh"); j.HasMore || j.Trimmed {
		t.Fatalf("an empty new room: hasMore %v, trimmed %v", j.HasMore, j.Trimmed)
	}
	for i := 1; i <= 3; i++ {
		chatAck(t, a, "fresh", fmt.Sprintf("m%d", i), fmt.Sprintf("f%d", i))
	}
	b, _ := signedIn(t, ts, "vic")
	if j := b.join("fresh"); j.HasMore || j.Trimmed || len(j.History) != 3 {
		t.Fatalf("3 of 5 kept: %d messages, hasMore %v, trimmed %v", len(j.History), j.HasMore, j.Trimmed)
	}
	for i := 4; i <= 8; i++ {
		chatAck(t, a, "fresh", fmt.Sprintf("m%d", i), fmt.Sprintf("f%d", i))
	}
	if j := b.join("fresh"); j.HasMore || !j.Trimmed || len(j.History) != 5 || j.History[0].Content != "m4" {
		t.Fatalf("m4..m8 kept: %d messages, hasMore %v, trimmed %v", len(j.History), j.HasMore, j.Trimmed)
	}
	b.send("history", map[string]any{"roomId": "fresh", "before": formatMessageID(6)})
	var h historyOutData
	decodeInto(t, b.expect("history"), &h)
	if len(h.Messages) != 2 || h.HasMore || !h.Trimmed {
		t.Fatalf("before m6: %d messages, hasMore %v, trimmed %v", len(h.Messages), h.HasMore, h.Trimmed)
	}
	b.send("history", map[string]any{"roomId": "fresh", "before": formatMessageID(8), "limit": 1})
	h = historyOutData{}
	decodeInto(t, b.expect("history"), &h)
	if !h.HasMore || h.Trimmed {
		t.Fatalf("a page with older ones after it: hasMore %v, trimmed %v", h.HasMore, h.Trimmed)
	}

	// Direct conversations are trimmed the same way.
	for i := 1; i <= 6; i++ {
		a.send("private", map[string]string{"targetUsername": "vic", "content": fmt.Sprintf("d%d", i)})
		a.await("privateMessageSent")
	}
	a.send("history", map[string]any{"withUserId": "2", "before": "999999999999"})
	h = historyOutData{}
	decodeInto(t, a.await("history"), &h)
	if len(h.Messages) != 5 || h.HasMore || !h.Trimmed {
		t.Fatalf("direct: %d messages, hasMore %v, trimmed %v", len(h.Messages), h.HasMore, h.Trimmed)
	}
}

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	p, pa := signedIn(t, ts, "peter")
	q, qa := signedIn(t, ts, "quinn")
	p.await("userOnline")

	t.Run("online", func(t *testing.T) {
		p.send("private", map[string]string{"targetUsername": "quinn", "content": "hi quinn", "clientMsgId": "d1"})
		var got, sent messageFrame
		decodeInto(t, q.expect("privateMessage"), &got)
		decodeInto(t, p.expect("privateMessageSent"), &sent)
		if got.Content != "hi quinn" || got.SenderID != pa.UserID || got.TargetUserID != qa.UserID || got.TargetUsername != "quinn" ||
			sent.ClientMsgID != "d1" || sent.ID != got.ID {
			t.Fatalf("got %+v, sent %+v", got, sent)
		}
	})

	t.Run("offline target finds them at sign-in", func(t *testing.T) {
		q.conn.Close()
		p.await("userOffline")
		for i := 1; i <= 3; i++ {
			p.send("private", map[string]string{"targetUserId": qa.UserID, "content": fmt.Sprintf("missed %d", i)})
			p.expect("privateMessageSent")
		}
		q2 := dial(t, ts.WSURL())
		a := q2.auth("quinn", "quinn-password")
		if len(a.Unread) != 1 || a.Unread[0].UserID != pa.UserID || a.Unread[0].Count != 4 {
			t.Fatalf("unread = %+v, want 4 from peter", a.Unread)
		}
		q2.send("history", map[string]string{"withUserId": pa.UserID})
		var h historyOutData
		decodeInto(t, q2.expect("history"), &h)
		if len(h.Messages) != 4 || h.Messages[3].Content != "missed 3" || h.WithUserID != pa.UserID {
			t.Fatalf("history = %+v", h)
		}
		// Fetching the newest page read them.
		if a := dial(t, ts.WSURL()).auth("quinn", "quinn-password"); len(a.Unread) != 0 {
			t.Fatalf("unread after reading = %+v", a.Unread)
		}
	})

	t.Run("read marker", func(t *testing.T) {
		p.send("private", map[string]string{"targetUserId": qa.UserID, "content": "one more"})
		var sent messageFrame
		decodeInto(t, p.await("privateMessageSent"), &sent)
		q3 := dial(t, ts.WSURL())
		if a := q3.auth("quinn", "quinn-password"); len(a.Unread) != 1 || a.Unread[0].Count != 1 {
			t.Fatalf("unread = %+v", a.Unread)
		}
		q3.send("read", map[string]string{"withUserId": pa.UserID, "messageId": sent.ID})
		q3.quiet()
		a := dial(t, ts.WSURL()).auth("quinn", "quinn-password")
		if len(a.Unread) != 0 {
			t.Fatalf("unread after read = %+v", a.Unread)
		}
		// The conversation stays listed, read, with its peer's presence.
		if len(a.Directs) != 1 || a.Directs[0].Username != "peter" || a.Directs[0].Unread != 0 || !a.Directs[0].Online {
			t.Fatalf("directs = %+v", a.Directs)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			data map[string]string
			code string
		}{
			{map[string]string{"targetUserId": "424242", "content": "x"}, codeUserNotFound},
			{map[string]string{"targetUserId": "not-a-number", "content": "x"}, codeUserNotFound},
			{map[string]string{"targetUsername": "nobody", "content": "x"}, codeUserNotFound},
			{map[string]string{"targetUserId": pa.UserID, "content": "me"}, codeInvalidTarget},
			{map[string]string{"content": "x"}, codeBadRequest},
			{map[string]string{"targetUserId": qa.UserID, "content": " "}, codeInvalidContent},
		} {
			p.send("private", tc.data)
			var e errorData
			decodeInto(t, p.await("error"), &e)
			if e.Code != tc.code {
				t.Fatalf("private %v: error %s, want %s", tc.data, e.Code, tc.code)
			}
		}
	})

	t.Run("only the two parties see them", func(t *testing.T) {
		r, _ := signedIn(t, ts, "rosa")
		p.send("private", map[string]string{"targetUserId": qa.UserID, "content": "secret"})
		p.await("privateMessageSent")
		r.send("history", map[string]string{"withUserId": pa.UserID})
		var h historyOutData
		decodeInto(t, r.expect("history", "userOnline", "userOffline"), &h)
		if len(h.Messages) != 0 {
			t.Fatalf("rosa reads peter's conversation with quinn: %+v", h.Messages)
		}
		r.quiet()
	})
}

func TestRoomsFrame(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	a, _ := signedIn(t, ts, "sam")
	a.join("alpha")
	a.join("beta")
	a.send("chat", map[string]string{"roomId": "beta", "content": "x"})
	a.await("message")
	b, _ := signedIn(t, ts, "tess")
	b.join("beta")
	b.send("rooms", nil)
	var r roomsData
	decodeInto(t, b.expect("rooms"), &r)
	if len(r.Rooms) != 2 {
		t.Fatalf("rooms = %+v", r.Rooms)
	}
	alpha, beta := r.Rooms[0], r.Rooms[1]
	if alpha.RoomID != "alpha" || alpha.MemberCount != 1 || alpha.OnlineCount != 1 || alpha.LastMessageAt != "" || alpha.CreatedAt == "" {
		t.Fatalf("alpha = %+v", alpha)
	}
	if beta.RoomID != "beta" || beta.MemberCount != 2 || beta.OnlineCount != 2 || beta.LastMessageAt == "" {
		t.Fatalf("beta = %+v", beta)
	}
}

// TestBadInput sends malformed frames; each gets an error frame with a
// stable code and the connection keeps working.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c, _ := signedIn(t, ts, "uma")
	c.join("room")
	cases := []struct {
		name string
		raw  string
		code string
	}{
		{"not json", `{"type":`, codeBadRequest},
		{"json array", `[1,2]`, codeBadRequest},
		{"json string", `"chat"`, codeBadRequest},
		{"no type", `{"data":{}}`, codeBadRequest},
		{"type not a string", `{"type":5,"data":{}}`, codeBadRequest},
		{"unknown type", `{"type":"launch","data":{}}`, codeUnknownType},
		{"data not an object", `{"type":"chat","data":"hello"}`, codeBadRequest},
		{"data an array", `{"type":"join","data":["room"]}`, codeBadRequest},
		{"content a number", `{"type":"chat","data":{"roomId":"room","content":42}}`, codeBadRequest},
		{"roomId an object", `{"type":"join","data":{"roomId":{"a":1}}}`, codeBadRequest},
		{"isTyping a string", `{"type":"typing","data":{"roomId":"room","isTyping":"yes"}}`, codeBadRequest},
		{"missing roomId", `{"type":"join","data":{}}`, codeInvalidRoom},
		{"room id too long", `{"type":"join","data":{"roomId":"` + strings.Repeat("r", 65) + `"}}`, codeInvalidRoom},
		{"room id with space", `{"type":"join","data":{"roomId":"a b"}}`, codeInvalidRoom},
		{"room id with control", `{"type":"join","data":{"roomId":"a\u0007b"}}`, codeInvalidRoom},
		{"room id with slash", `{"type":"join","data":{"roomId":"../etc"}}`, codeInvalidRoom},
		{"invalid utf-8", "{\"type\":\"chat\",\"data\":{\"roomId\":\"room\",\"content\":\"\xff\xfe\"}}", codeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.sendRaw([]byte(tc.raw))
			c.expectError(tc.code)
			c.send("rooms", nil)
			c.expect("rooms") // still open and working
		})
	}
	// Nothing bad was stored or relayed.
	c.send("history", map[string]string{"roomId": "room"})
	var h historyOutData
	decodeInto(t, c.expect("history"), &h)
	if len(h.Messages) != 0 {
		t.Fatalf("bad frames stored messages: %+v", h.Messages)
	}
}

// TestPersistence restarts the server (a real close and reopen of the
// database) and finds users, passwords, rooms, memberships, history and
// direct messages where they were.
func TestPersistence(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	v, va := signedIn(t, ts, "victor")
	w, wa := signedIn(t, ts, "wendy")
	v.join("durable")
	w.join("durable")
	v.send("chat", map[string]string{"roomId": "durable", "content": "before the restart"})
	v.await("message")
	w.send("private", map[string]string{"targetUserId": va.UserID, "content": "dm before the restart"})
	w.await("privateMessageSent")
	v.await("privateMessage")

	ts.Restart()

	v2 := dial(t, ts.WSURL())
	v2.send("auth", map[string]string{"username": "victor", "password": "wrong-password"})
	v2.expectError(codeAuthFailed)
	va2 := v2.auth("victor", "victor-password")
	if va2.UserID != va.UserID || va2.Created {
		t.Fatalf("after restart: %+v", va2)
	}
	if len(va2.Rooms) != 1 || va2.Rooms[0].RoomID != "durable" || va2.Rooms[0].MemberCount != 2 {
		t.Fatalf("rooms after restart = %+v", va2.Rooms)
	}
	// A token issued before the restart still resumes.
	w2 := dial(t, ts.WSURL())
	w2.send("auth", map[string]string{"token": wa.Token})
	w2.expect("authenticated")
	v2.await("userOnline")

	j := v2.join("durable")
	if len(j.History) != 1 || j.History[0].Content != "before the restart" {
		t.Fatalf("history after restart = %+v", j.History)
	}
	v2.send("history", map[string]string{"withUserId": wa.UserID})
	var h historyOutData
	decodeInto(t, v2.expect("history"), &h)
	if len(h.Messages) != 1 || h.Messages[0].Content != "dm before the restart" {
		t.Fatalf("dm history after restart = %+v", h.Messages)
	}
	// Membership is live without joining again, and ids continue.
	w2.send("chat", map[string]string{"roomId": "durable", "content": "after"})
	var m messageFrame
	decodeInto(t, v2.await("message"), &m)
	if m.Seq != 2 {
		t.Fatalf("seq after restart = %d, want 2", m.Seq)
	}
}
