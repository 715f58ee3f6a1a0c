package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Tests for what parley adds beyond the tutorial: moderation, edits and
// deletes, reactions, replies and threads, mentions, read state, search
// and files. Each covers the permission failures too.

// trio signs up an owner (the server's first account, so also its admin)
// and two members of one room.
func trio(t *testing.T, ts *testServer, room string) (owner, mod, member *wsClient, ownerA, modA, memberA authenticatedData) {
	t.Helper()
	owner, ownerA = signedIn(t, ts, "owner")
	owner.join(room)
	mod, modA = signedIn(t, ts, "moddy")
	mod.join(room)
	member, memberA = signedIn(t, ts, "member")
	member.join(room)
	return
}

func TestModeration(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	// The owner here is a plain user: make a throwaway admin first.
	signedIn(t, ts, "serveradmin")
	owner, mod, member, _, modA, memberA := trio(t, ts, "club")

	// Members cannot moderate.
	for _, typ := range []string{"kick", "ban", "mute"} {
		member.send(typ, map[string]string{"roomId": "club", "userId": modA.UserID})
		member.awaitError(codeForbidden)
	}
	member.send("setRole", map[string]string{"roomId": "club", "userId": memberA.UserID, "role": "moderator"})
	member.expectError(codeForbidden)
	member.send("setTopic", map[string]string{"roomId": "club", "topic": "mine now"})
	member.expectError(codeForbidden)

	// The owner appoints a moderator; everyone hears it.
	owner.send("setRole", map[string]string{"roomId": "club", "userId": modA.UserID, "role": "moderator"})
	var rc moderationEvent
	decodeInto(t, member.await("roleChanged"), &rc)
	if rc.Username != "moddy" || rc.Role != "moderator" || rc.By.Username != "owner" {
		t.Fatalf("roleChanged = %+v", rc)
	}
	// A moderator cannot act on the owner, or appoint moderators.
	mod.send("kick", map[string]string{"roomId": "club", "username": "owner"})
	mod.awaitError(codeForbidden)
	mod.send("setRole", map[string]string{"roomId": "club", "userId": memberA.UserID, "role": "moderator"})
	mod.expectError(codeForbidden)

	// Topic.
	mod.send("setTopic", map[string]string{"roomId": "club", "topic": "Weekly meetup notes"})
	var ru roomUpdatedData
	decodeInto(t, member.await("roomUpdated"), &ru)
	if ru.Topic != "Weekly meetup notes" || ru.By.Username != "moddy" {
		t.Fatalf("roomUpdated = %+v", ru)
	}

	// Mute: the member cannot chat until unmuted.
	mod.send("mute", map[string]any{"roomId": "club", "userId": memberA.UserID, "minutes": 10})
	var mu moderationEvent
	decodeInto(t, member.await("muted"), &mu)
	if mu.Until == "" {
		t.Fatalf("muted = %+v", mu)
	}
	member.send("chat", map[string]string{"roomId": "club", "content": "can you hear me"})
	member.expectError(codeMuted)
	mod.send("unmute", map[string]string{"roomId": "club", "userId": memberA.UserID})
	member.await("unmuted")
	member.send("chat", map[string]string{"roomId": "club", "content": "back"})
	member.await("message")

	// Kick: out, but may come back to a public room.
	mod.send("kick", map[string]string{"roomId": "club", "userId": memberA.UserID, "reason": "cool off"})
	var k moderationEvent
	decodeInto(t, member.await("kicked"), &k)
	if k.Reason != "cool off" || k.By.Username != "moddy" {
		t.Fatalf("kicked = %+v", k)
	}
	member.await("left")
	member.send("chat", map[string]string{"roomId": "club", "content": "still here?"})
	member.expectError(codeNotMember)
	member.join("club")

	// Ban: out and cannot rejoin until unbanned.
	mod.send("ban", map[string]string{"roomId": "club", "userId": memberA.UserID})
	member.await("banned")
	member.await("left")
	member.send("join", map[string]string{"roomId": "club"})
	member.expectError(codeBanned)
	owner.send("unban", map[string]string{"roomId": "club", "userId": memberA.UserID})
	member.await("unbanned")
	member.join("club")
}

func TestModeration_ServerWideBan(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	admin, _ := signedIn(t, ts, "admin") // the first account
	admin.join("lobby")
	troll, trollA := signedIn(t, ts, "troll")
	troll.join("lobby")
	bystander, _ := signedIn(t, ts, "bystander")
	bystander.join("lobby")

	bystander.send("ban", map[string]any{"userId": trollA.UserID, "global": true})
	bystander.expectError(codeForbidden)
	admin.send("ban", map[string]any{"userId": trollA.UserID, "global": true, "reason": "spam"})
	troll.await("loggedOut")
	troll.waitClosed(frameWait)
	var b moderationEvent
	decodeInto(t, bystander.await("banned"), &b)
	if !b.Global || b.Username != "troll" {
		t.Fatalf("banned = %+v", b)
	}
	c := dial(t, ts.WSURL())
	c.send("auth", map[string]string{"token": trollA.Token})
	c.expectError(codeAuthFailed)
	c.send("auth", map[string]string{"username": "troll", "password": "troll-password"})
	c.expectError(codeBanned)

	admin.send("unban", map[string]any{"userId": trollA.UserID, "global": true})
	admin.await("unbanned")
	dial(t, ts.WSURL()).auth("troll", "troll-password")
}

func TestPrivateRooms(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	signedIn(t, ts, "serveradmin")
	owner, _ := signedIn(t, ts, "host")
	owner.send("join", map[string]any{"roomId": "secret", "private": true, "topic": "shh"})
	var j joinedData
	decodeInto(t, owner.expect("joined"), &j)
	if !j.Private || j.Topic != "shh" || j.Role != "owner" {
		t.Fatalf("joined = %+v", j)
	}
	guest, guestA := signedIn(t, ts, "guest")
	outsider, _ := signedIn(t, ts, "outsider")

	// Not listed, not joinable.
	outsider.send("rooms", nil)
	var r roomsData
	decodeInto(t, outsider.await("rooms"), &r)
	for _, room := range r.Rooms {
		if room.RoomID == "secret" {
			t.Fatal("a private room is listed to a non-member")
		}
	}
	outsider.send("join", map[string]string{"roomId": "secret"})
	outsider.expectError(codeForbidden)

	// Invited, the guest is in, and everyone knows.
	owner.send("invite", map[string]string{"roomId": "secret", "userId": guestA.UserID})
	var inv invitedData
	decodeInto(t, guest.await("invited"), &inv)
	if inv.Room.RoomID != "secret" || inv.By.Username != "host" {
		t.Fatalf("invited = %+v", inv)
	}
	var uj roomUserData
	decodeInto(t, owner.await("userJoined"), &uj)
	if uj.Username != "guest" || uj.InvitedBy == nil {
		t.Fatalf("userJoined = %+v", uj)
	}
	guest.send("chat", map[string]string{"roomId": "secret", "content": "thanks"})
	guest.await("message")
	// A plain member cannot invite to a private room.
	guest.send("invite", map[string]string{"roomId": "secret", "username": "outsider"})
	guest.expectError(codeForbidden)
	guest.send("rooms", nil)
	decodeInto(t, guest.await("rooms"), &r)
	if len(r.Rooms) != 1 || !r.Rooms[0].Private {
		t.Fatalf("the member's rooms = %+v", r.Rooms)
	}
}

func TestEditAndDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	signedIn(t, ts, "serveradmin")
	owner, _, member, _, _, memberA := trio(t, ts, "room")
	member.send("chat", map[string]string{"roomId": "room", "content": "teh typo"})
	var m messageFrame
	decodeInto(t, member.await("message"), &m)
	owner.await("message")

	// Nobody edits another's message.
	owner.send("edit", map[string]string{"roomId": "room", "messageId": m.ID, "content": "hijacked"})
	owner.expectError(codeForbidden)
	member.send("edit", map[string]string{"roomId": "room", "messageId": m.ID, "content": "the typo"})
	var e messageEditedData
	decodeInto(t, owner.await("messageEdited"), &e)
	if e.Content != "the typo" || e.ID != m.ID || e.EditedAt == "" || e.RoomID != "room" {
		t.Fatalf("messageEdited = %+v", e)
	}
	member.send("history", map[string]string{"roomId": "room"})
	var h historyOutData
	decodeInto(t, member.await("history"), &h)
	if h.Messages[0].Content != "the typo" || h.Messages[0].EditedAt == "" {
		t.Fatalf("history after edit = %+v", h.Messages[0])
	}

	// A member cannot delete others' messages; the owner (a moderator) can.
	owner.send("chat", map[string]string{"roomId": "room", "content": "owner's words"})
	var om messageFrame
	decodeInto(t, owner.await("message"), &om)
	member.send("delete", map[string]string{"roomId": "room", "messageId": om.ID})
	member.expectError(codeForbidden, "message")
	owner.send("delete", map[string]string{"roomId": "room", "messageId": m.ID})
	var del messageDeletedData
	decodeInto(t, member.await("messageDeleted"), &del)
	if del.ID != m.ID || del.By.Username != "owner" {
		t.Fatalf("messageDeleted = %+v", del)
	}
	member.send("history", map[string]string{"roomId": "room"})
	decodeInto(t, member.await("history"), &h)
	if !h.Messages[0].Deleted || h.Messages[0].Content != "" {
		t.Fatalf("history after delete = %+v", h.Messages[0])
	}
	member.send("edit", map[string]string{"roomId": "room", "messageId": m.ID, "content": "undead"})
	member.expectError(codeNotFound)

	// Direct messages: own only, and only the two parties hear of it.
	member.send("private", map[string]string{"targetUsername": "moddy", "content": "secret plan"})
	var dm messageFrame
	decodeInto(t, member.await("privateMessageSent"), &dm)
	member.send("edit", map[string]string{"withUserId": dm.TargetUserID, "messageId": dm.ID, "content": "secret plan v2"})
	decodeInto(t, member.await("messageEdited"), &e)
	if e.SenderID != memberA.UserID || e.TargetUserID != dm.TargetUserID {
		t.Fatalf("DM messageEdited = %+v", e)
	}
	owner.none("messageEdited")
}

func TestReactions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, mod, member, ownerA, modA, _ := trio(t, ts, "room")
	owner.send("chat", map[string]string{"roomId": "room", "content": "ship it?"})
	m := owner.awaitMessage("ship it?")

	react := func(c *wsClient, emoji string) reactionData {
		t.Helper()
		c.send("react", map[string]string{"roomId": "room", "messageId": m.ID, "emoji": emoji})
		var r reactionData
		decodeInto(t, member.await("reaction"), &r)
		return r
	}
	if r := react(owner, "👍"); !r.Added || r.Count != 1 || r.UserIDs[0] != ownerA.UserID {
		t.Fatalf("first reaction = %+v", r)
	}
	if r := react(mod, "👍"); r.Count != 2 || r.Username != "moddy" {
		t.Fatalf("second reaction = %+v", r)
	}
	react(mod, "🎉")
	if r := react(owner, "👍"); r.Added || r.Count != 1 || r.UserIDs[0] != modA.UserID {
		t.Fatalf("toggled off = %+v", r)
	}
	member.send("history", map[string]string{"roomId": "room"})
	var h historyOutData
	decodeInto(t, member.await("history"), &h)
	got := h.Messages[0].Reactions
	if len(got) != 2 || got[0].Emoji != "👍" || got[0].Count != 1 || got[1].Emoji != "🎉" {
		t.Fatalf("stored reactions = %+v", got)
	}
	for _, bad := range []string{"", "hello", "👍 👍", strings.Repeat("👍", 20), "<b>"} {
		member.send("react", map[string]string{"roomId": "room", "messageId": m.ID, "emoji": bad})
		member.expectError(codeInvalidEmoji)
	}
	outsider, _ := signedIn(t, ts, "outsider")
	outsider.send("react", map[string]string{"roomId": "room", "messageId": m.ID, "emoji": "👎"})
	outsider.expectError(codeNotMember, "userOnline")
}

func TestRepliesAndThreads(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, mod, _, _, _, _ := trio(t, ts, "room")
	owner.send("chat", map[string]string{"roomId": "room", "content": "Which day works for the retro?"})
	var parent messageFrame
	decodeInto(t, owner.await("message"), &parent)
	for _, day := range []string{"Tuesday", "Thursday"} {
		mod.send("chat", map[string]string{"roomId": "room", "content": day, "replyTo": parent.ID})
		r := mod.awaitMessage(day)
		if r.ReplyTo == nil || r.ReplyTo.ID != parent.ID || r.ReplyTo.SenderName != "owner" || !strings.HasPrefix(r.ReplyTo.Content, "Which day") {
			t.Fatalf("reply = %+v", r)
		}
	}
	mod.send("chat", map[string]string{"roomId": "room", "content": "unrelated"})
	mod.await("message")
	mod.send("thread", map[string]string{"roomId": "room", "messageId": parent.ID})
	var th threadData
	decodeInto(t, mod.await("thread"), &th)
	if th.Parent.ReplyCount != 2 || len(th.Replies) != 2 || th.Replies[1].Content != "Thursday" {
		t.Fatalf("thread = %+v", th)
	}
	mod.send("chat", map[string]string{"roomId": "room", "content": "to nothing", "replyTo": "000000009999"})
	mod.awaitError(codeNotFound)
}

func TestMentionsAndReadState(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, mod, member, _, _, memberA := trio(t, ts, "room")
	member.conn.Close()
	owner.await("userOffline")
	owner.send("chat", map[string]string{"roomId": "room", "content": "@member can you look at this?"})
	var m1 messageFrame
	decodeInto(t, owner.await("message"), &m1)
	if len(m1.Mentions) != 1 || m1.Mentions[0] != memberA.UserID {
		t.Fatalf("mentions = %v", m1.Mentions)
	}
	mod.send("chat", map[string]string{"roomId": "room", "content": "and @nobody, @MODDY. and plain text"})
	m2 := mod.awaitMessage("and @nobody, @MODDY. and plain text")
	if len(m2.Mentions) != 1 {
		t.Fatalf("mentions of a non-member or unknown name: %v", m2.Mentions)
	}
	owner.send("chat", map[string]string{"roomId": "room", "content": "third"})
	owner.await("message")

	// Unread and mention counts survive a new device.
	phone := dial(t, ts.WSURL())
	a := phone.auth("member", "member-password")
	if len(a.Rooms) != 1 || *a.Rooms[0].Unread != 3 || *a.Rooms[0].Mentions != 1 {
		t.Fatalf("room state at sign-in = %+v", a.Rooms[0])
	}
	laptop := dial(t, ts.WSURL())
	laptop.auth("member", "member-password")
	phone.send("read", map[string]string{"roomId": "room", "messageId": m2.ID})
	var ru readUpdatedData
	decodeInto(t, laptop.await("readUpdated"), &ru)
	if ru.RoomID != "room" || ru.MessageID != m2.ID {
		t.Fatalf("readUpdated = %+v", ru)
	}
	b := dial(t, ts.WSURL()).auth("member", "member-password")
	if *b.Rooms[0].Unread != 1 || *b.Rooms[0].Mentions != 0 || b.Rooms[0].LastRead != m2.ID {
		t.Fatalf("after reading = %+v", b.Rooms[0])
	}
	// Sending reads a room up to one's own message.
	phone.send("chat", map[string]string{"roomId": "room", "content": "caught up"})
	phone.await("message")
	if c := dial(t, ts.WSURL()).auth("member", "member-password"); *c.Rooms[0].Unread != 0 {
		t.Fatalf("unread after sending = %d", *c.Rooms[0].Unread)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, mod, member, _, _, _ := trio(t, ts, "team")
	owner.join("owners-only")
	owner.send("chat", map[string]string{"roomId": "owners-only", "content": "the deploy key is hunter2"})
	owner.await("message")
	mod.send("chat", map[string]string{"roomId": "team", "content": "Deploy went fine"})
	mod.await("message")
	owner.send("private", map[string]string{"targetUsername": "member", "content": "private deploy notes"})
	owner.await("privateMessageSent")
	member.await("privateMessage")

	member.send("search", map[string]string{"query": "DEPLOY"})
	var res searchResultsData
	decodeInto(t, member.await("searchResults"), &res)
	if len(res.Results) != 2 {
		t.Fatalf("member's search found %d: %+v", len(res.Results), res.Results)
	}
	for _, m := range res.Results {
		if m.RoomID == "owners-only" || strings.Contains(m.Content, "hunter2") {
			t.Fatalf("search returned a message from a room the member is not in: %+v", m)
		}
	}
	if res.Results[0].Content != "private deploy notes" || res.Results[1].RoomID != "team" {
		t.Fatalf("results, newest first: %+v", res.Results)
	}
	// Open a result in context.
	member.send("history", map[string]any{"roomId": "team", "around": res.Results[1].ID, "limit": 10})
	var h historyOutData
	decodeInto(t, member.await("history"), &h)
	if len(h.Messages) != 1 || h.Messages[0].ID != res.Results[1].ID {
		t.Fatalf("around = %+v", h)
	}
	member.send("search", map[string]string{"query": "hunter2", "roomId": "owners-only"})
	member.expectError(codeNotMember)
	member.send("search", map[string]string{"query": "x"})
	member.expectError(codeBadRequest)
}

// upload posts a file over HTTP as the holder of token.
func upload(t *testing.T, ts *testServer, token, name string, data []byte) (int, fileInfo) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL()+"/upload?name="+url.QueryEscape(name), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f fileInfo
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &f)
	return resp.StatusCode, f
}

// pngBytes is a valid 1x1 PNG.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func TestFiles(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Uploads.MaxBytes = 64 << 10
	cfg.Uploads.UserQuotaBytes = 100 << 10
	ts := startServer(t, &cfg)
	owner, _, member, ownerA, _, memberA := trio(t, ts, "room")

	if status, _ := upload(t, ts, "", "a.txt", []byte("hi")); status != http.StatusUnauthorized {
		t.Fatalf("upload without a token: %d", status)
	}
	status, img := upload(t, ts, ownerA.Token, "../../cat.png", pngBytes)
	if status != http.StatusCreated || !img.Image || img.ContentType != "image/png" || img.Name != "cat.png" {
		t.Fatalf("image upload: %d %+v", status, img)
	}
	owner.send("chat", map[string]any{"roomId": "room", "content": "", "files": []string{img.ID}})
	var m messageFrame
	decodeInto(t, member.await("message"), &m)
	if len(m.Files) != 1 || m.Files[0].URL != img.URL {
		t.Fatalf("message files = %+v", m.Files)
	}
	// Someone else cannot send my upload, and I cannot send it twice.
	member.send("chat", map[string]any{"roomId": "room", "content": "mine", "files": []string{img.ID}})
	member.expectError(codeForbidden, "message")

	resp, err := http.Get(ts.URL() + img.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, pngBytes) || resp.Header.Get("Content-Type") != "image/png" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("image served as %s, %q", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}

	// Active content is never served as such.
	for name, data := range map[string]string{
		"evil.html": "<html><script>alert(1)</script></html>",
		"evil.svg":  `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>`,
		"evil.js":   "alert(1)",
	} {
		status, f := upload(t, ts, memberA.Token, name, []byte(data))
		if status != http.StatusCreated {
			t.Fatalf("upload %s: %d", name, status)
		}
		resp, err := http.Get(ts.URL() + f.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		if strings.Contains(ct, "html") || strings.Contains(ct, "svg") || strings.Contains(ct, "javascript") || strings.Contains(ct, "xml") {
			t.Fatalf("%s served as %s", name, ct)
		}
		if ct != "text/plain; charset=utf-8" && !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%s served inline as %s", name, ct)
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s headers: %v", name, resp.Header)
		}
	}

	// Size and quota.
	if status, _ := upload(t, ts, memberA.Token, "big.bin", make([]byte, 65<<10)); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize upload: %d", status)
	}
	for i := 0; ; i++ {
		status, _ := upload(t, ts, ownerA.Token, fmt.Sprintf("chunk%d.bin", i), make([]byte, 40<<10))
		if status == http.StatusRequestEntityTooLarge {
			break
		}
		if status != http.StatusCreated || i > 5 {
			t.Fatalf("quota never reached: %d after %d uploads", status, i)
		}
	}

	// Deleting the message deletes its file.
	owner.send("delete", map[string]string{"roomId": "room", "messageId": m.ID})
	owner.await("messageDeleted")
	if status, _, _ := httpGet(t, ts.URL()+img.URL); status != http.StatusNotFound {
		t.Fatalf("file of a deleted message: %d", status)
	}
}

// TestMentions_Edit checks an edit carries the mentions of its new text,
// and that read state counts a message mentioning the user once, however
// often it was edited or names them.
func TestMentions_Edit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, mod, member, _, modA, memberA := trio(t, ts, "room")
	owner.send("chat", map[string]string{"roomId": "room", "content": "draft"})
	m := owner.awaitMessage("draft")
	mentionsAtSignIn := func() (unread, mentions int) {
		t.Helper()
		a := dial(t, ts.WSURL()).auth("member", "member-password")
		return *a.Rooms[0].Unread, *a.Rooms[0].Mentions
	}
	edit := func(content string) messageEditedData {
		t.Helper()
		owner.send("edit", map[string]string{"roomId": "room", "messageId": m.ID, "content": content})
		var e messageEditedData
		decodeInto(t, member.await("messageEdited"), &e)
		if e.Content != content {
			t.Fatalf("messageEdited = %+v, want content %q", e, content)
		}
		return e
	}

	e := edit("@member and @MODDY, look. @member!")
	slices.Sort(e.Mentions)
	want := []string{modA.UserID, memberA.UserID}
	slices.Sort(want)
	if !slices.Equal(e.Mentions, want) {
		t.Fatalf("messageEdited mentions = %q, want %q", e.Mentions, want)
	}
	mod.await("messageEdited")
	member.send("history", map[string]string{"roomId": "room"})
	var h historyOutData
	decodeInto(t, member.await("history"), &h)
	if got := h.Messages[len(h.Messages)-1].Mentions; len(got) != 2 {
		t.Fatalf("history mentions after the edit = %q", got)
	}
	if unread, mentions := mentionsAtSignIn(); unread != 1 || mentions != 1 {
		t.Fatalf("after an edit adding a mention: unread %d, mentions %d; want 1 and 1", unread, mentions)
	}
	// Edited again, still naming the member: still one mention.
	if e := edit("@member, really: @member"); len(e.Mentions) != 1 || e.Mentions[0] != memberA.UserID {
		t.Fatalf("mentions after the second edit = %q", e.Mentions)
	}
	if unread, mentions := mentionsAtSignIn(); unread != 1 || mentions != 1 {
		t.Fatalf("after a second edit: unread %d, mentions %d; want 1 and 1", unread, mentions)
	}
	// An edit that drops the mention drops it from the count.
	if e := edit("never mind"); e.Mentions != nil {
		t.Fatalf("mentions after dropping them = %q", e.Mentions)
	}
	if unread, mentions := mentionsAtSignIn(); unread != 1 || mentions != 0 {
		t.Fatalf("after the mention was edited away: unread %d, mentions %d; want 1 and 0", unread, mentions)
	}
}

// TestHistory_After pages forward from a message, oldest first.
func TestHistory_After(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	alice, _ := signedIn(t, ts, "alice")
	alice.join("room")
	_, bobA := signedIn(t, ts, "bob")
	var ids []string
	for i := range 7 {
		alice.send("chat", map[string]string{"roomId": "room", "content": fmt.Sprintf("m%d", i)})
		ids = append(ids, alice.awaitMessage(fmt.Sprintf("m%d", i)).ID)
	}
	page := func(data map[string]any) historyOutData {
		t.Helper()
		alice.send("history", data)
		var h historyOutData
		decodeInto(t, alice.await("history"), &h)
		return h
	}
	contents := func(h historyOutData) string {
		var out []string
		for _, m := range h.Messages {
			out = append(out, m.Content)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name              string
		after             string
		limit             int
		want              string
		hasMore, hasNewer bool
	}{
		{"a middle page", ids[1], 3, "m2,m3,m4", true, true},
		{"up to the newest", ids[4], 3, "m5,m6", true, false},
		{"after the newest", ids[6], 0, "", true, false},
		{"after the first", ids[0], 100, "m1,m2,m3,m4,m5,m6", true, false},
		{"past every id", "18446744073709551615", 0, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string]any{"roomId": "room", "after": tc.after}
			if tc.limit > 0 {
				data["limit"] = tc.limit
			}
			h := page(data)
			if contents(h) != tc.want || h.HasMore != tc.hasMore || h.HasNewer != tc.hasNewer || h.RoomID != "room" {
				t.Fatalf("after %s: %q hasMore %v hasNewer %v, want %q %v %v", tc.after, contents(h), h.HasMore, h.HasNewer,
					tc.want, tc.hasMore, tc.hasNewer)
			}
		})
	}
	for _, data := range []map[string]any{
		{"roomId": "room", "after": ids[1], "before": ids[5]},
		{"roomId": "room", "after": ids[1], "around": ids[3]},
		{"roomId": "room", "after": "not-an-id"},
		{"roomId": "room", "after": ids[1], "limit": 101},
	} {
		alice.send("history", data)
		alice.expectError(codeBadRequest)
	}

	// Direct conversations page forward the same way.
	var dms []string
	for i := range 3 {
		alice.send("private", map[string]string{"targetUserId": bobA.UserID, "content": fmt.Sprintf("dm%d", i)})
		dms = append(dms, alice.awaitMessage(fmt.Sprintf("dm%d", i)).ID)
	}
	if h := page(map[string]any{"withUserId": bobA.UserID, "after": dms[0], "limit": 1}); contents(h) != "dm1" || !h.HasMore || !h.HasNewer || h.WithUserID != bobA.UserID {
		t.Fatalf("direct after: %q %+v", contents(h), h)
	}
}
