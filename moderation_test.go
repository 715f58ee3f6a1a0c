package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// Tests that moderation events reach everyone concerned exactly once and
// say everything a client needs, and that a server-wide ban can be lifted
// from the command line.

// once waits for a frame of type typ and fails if a second one follows.
func (c *wsClient) once(typ string) Frame {
	c.t.Helper()
	f := c.await(typ)
	c.none(typ)
	return f
}

func TestModeration_JoinedUsersShowMuteAndAdmin(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, _, member, _, modA, memberA := trio(t, ts, "club") // owner is the first account: an admin
	owner.send("mute", map[string]any{"roomId": "club", "userId": modA.UserID, "minutes": 10})
	member.await("muted")
	owner.send("mute", map[string]any{"roomId": "club", "userId": memberA.UserID})
	member.await("muted")

	late, _ := signedIn(t, ts, "late")
	late.send("join", map[string]string{"roomId": "club"})
	f := late.expect("joined", "userOnline")
	var j joinedData
	decodeInto(t, f, &j)
	users := map[string]memberInfo{}
	for _, u := range j.Users {
		users[u.Username] = u
	}
	if u := users["owner"]; !u.Admin || u.Muted || u.MutedUntil != "" {
		t.Errorf("owner = %+v, want an admin, not muted", u)
	}
	u := users["moddy"]
	until, err := time.Parse(time.RFC3339, u.MutedUntil)
	if !u.Muted || u.Admin || err != nil || until.Before(time.Now().Add(9*time.Minute)) || until.After(time.Now().Add(11*time.Minute)) {
		t.Errorf("moddy = %+v (%v), want muted for about 10 minutes", u, err)
	}
	if u := users["member"]; !u.Muted || u.MutedUntil != "" {
		t.Errorf("member = %+v, want muted until unmuted, without mutedUntil", u)
	}
	// Both fields are left out when they say nothing.
	var raw struct {
		Users []map[string]json.RawMessage `json:"users"`
	}
	decodeInto(t, f, &raw)
	for _, u := range raw.Users {
		name := string(u["username"])
		if _, ok := u["admin"]; ok != (name == `"owner"`) {
			t.Errorf("admin present = %v for %s: %v", ok, name, u)
		}
		if _, ok := u["mutedUntil"]; ok != (name == `"moddy"`) {
			t.Errorf("mutedUntil present = %v for %s", ok, name)
		}
	}
}

// TestModeration_EventsOnce counts the kicked, banned and unbanned frames
// each connection receives: the room, the actor, every connection of the
// target, and an admin acting from outside the room each get one.
func TestModeration_EventsOnce(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	outsider, _ := signedIn(t, ts, "serveradmin") // the first account: an admin, never in the room
	owner, mod, member, _, modA, memberA := trio(t, ts, "club")
	phone := dial(t, ts.WSURL())
	phone.auth("member", "member-password")
	owner.send("setRole", map[string]string{"roomId": "club", "userId": modA.UserID, "role": "moderator"})
	member.await("roleChanged")

	rejoin := func() {
		t.Helper()
		member.join("club")
		owner.await("userJoined")
		mod.await("userJoined")
	}
	// removed checks what the room, the actor and the target hear of a kick
	// or ban: the event once, and the target's connections then left.
	removed := func(typ, event string) {
		t.Helper()
		mod.send(typ, map[string]string{"roomId": "club", "userId": memberA.UserID})
		for _, c := range []*wsClient{member, phone} {
			c.await(event)
			c.expect("left")
			c.none(event)
		}
		mod.once(event)   // the actor, in the room
		owner.once(event) // the rest of the room
		outsider.none(event)
	}

	removed("kick", "kicked")
	rejoin()
	removed("ban", "banned")

	// Unban: the room (the acting owner among it) and the target, who is
	// no longer in the room, each hear it once.
	owner.send("unban", map[string]string{"roomId": "club", "userId": memberA.UserID})
	for _, c := range []*wsClient{owner, mod, member, phone} {
		c.once("unbanned")
	}
	outsider.none("unbanned")

	// An admin acting from outside the room hears the event too, once.
	rejoin()
	outsider.send("kick", map[string]string{"roomId": "club", "userId": memberA.UserID})
	outsider.once("kicked")
	member.await("kicked")
	member.expect("left")
	member.none("kicked")
	rejoin()
	outsider.send("ban", map[string]string{"roomId": "club", "userId": memberA.UserID})
	outsider.once("banned")
	owner.once("banned")
	outsider.send("unban", map[string]string{"roomId": "club", "userId": memberA.UserID})
	outsider.once("unbanned")
	member.once("unbanned")
	phone.once("unbanned")
	owner.once("unbanned")

	// Mute, unmute and role changes by an admin outside the room reach the
	// admin as well as the room.
	for _, step := range []struct {
		typ, event string
		data       map[string]string
	}{
		{"mute", "muted", map[string]string{"roomId": "club", "userId": modA.UserID}},
		{"unmute", "unmuted", map[string]string{"roomId": "club", "userId": modA.UserID}},
		{"setRole", "roleChanged", map[string]string{"roomId": "club", "userId": modA.UserID, "role": "moderator"}},
	} {
		outsider.send(step.typ, step.data)
		outsider.once(step.event)
		owner.once(step.event)
		mod.once(step.event)
	}

	// A ban ahead of time, of someone who is not in the room: they hear
	// it once and have nothing to leave.
	mod.send("ban", map[string]string{"roomId": "club", "userId": memberA.UserID})
	for _, c := range []*wsClient{member, phone} {
		c.await("banned")
		c.none("banned", "left")
	}
	owner.once("banned")
}

// TestModeration_ServerWideBanNamesRooms checks that each room hears its
// own copy of a server-wide ban, naming the room, and nobody hears one
// twice.
func TestModeration_ServerWideBanNamesRooms(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	admin, _ := signedIn(t, ts, "admin")
	admin.join("lobby")
	admin.join("den")
	troll, trollA := signedIn(t, ts, "troll")
	troll.join("lobby")
	troll.join("den")
	bystander, _ := signedIn(t, ts, "bystander")
	bystander.join("lobby")

	admin.send("ban", map[string]any{"userId": trollA.UserID, "global": true, "reason": "spam"})
	var got moderationEvent
	decodeInto(t, bystander.once("banned"), &got)
	if got.RoomID != "lobby" || !got.Global || got.Username != "troll" || got.Reason != "spam" {
		t.Fatalf("bystander's banned = %+v", got)
	}
	// The target hears the server-wide copy, then is signed out.
	got = moderationEvent{}
	decodeInto(t, troll.await("banned"), &got)
	if got.RoomID != "" || !got.Global {
		t.Fatalf("troll's banned = %+v", got)
	}
	troll.expect("loggedOut")
	// The admin is in both rooms: one copy for each, and the server-wide
	// acknowledgement.
	var rooms []string
	for _, f := range admin.sync() {
		if f.Type == "banned" {
			got = moderationEvent{}
			decodeInto(t, f, &got)
			rooms = append(rooms, got.RoomID)
		}
	}
	slices.Sort(rooms)
	if !slices.Equal(rooms, []string{"", "den", "lobby"}) {
		t.Fatalf("the admin's banned frames name rooms %q, want each of den and lobby once, and one server-wide", rooms)
	}
}

// TestModeration_InvitedOnlineCount checks invited carries the room's
// online count.
func TestModeration_InvitedOnlineCount(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	host, _ := signedIn(t, ts, "host")
	host.send("join", map[string]any{"roomId": "secret", "private": true})
	host.expect("joined")
	guest, guestA := signedIn(t, ts, "guest")
	host.send("invite", map[string]string{"roomId": "secret", "userId": guestA.UserID})
	var inv invitedData
	decodeInto(t, guest.await("invited"), &inv)
	if inv.Room.RoomID != "secret" || inv.Room.MemberCount != 2 || inv.Room.OnlineCount != 2 {
		t.Fatalf("invited room = %+v, want 2 members, both online", inv.Room)
	}
}

// TestCLI_UserUnban lifts a server-wide ban with parley user unban,
// through the running server's admin socket and directly.
func TestCLI_UserUnban(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	db := ts.cfg.DB.Path
	admin, _ := signedIn(t, ts, "admin")
	_, trollA := signedIn(t, ts, "troll")
	ban := func() {
		t.Helper()
		admin.send("ban", map[string]any{"userId": trollA.UserID, "global": true})
		admin.await("banned")
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"username": "troll", "password": "troll-password"})
		c.expectError(codeBanned)
	}
	ban()
	if list := mustCLI(t, "", "user", "list", "-db", db); !strings.Contains(list, "banned") {
		t.Fatalf("user list does not show the ban:\n%s", list)
	}
	if out := mustCLI(t, "", "user", "unban", "-db", db, "troll"); !strings.Contains(out, "no longer banned") {
		t.Fatalf("unban through the socket: %s", out)
	}
	dial(t, ts.WSURL()).auth("troll", "troll-password")
	if out := mustCLI(t, "", "user", "unban", "-db", db, "troll"); !strings.Contains(out, "was not banned") {
		t.Fatalf("unban of someone not banned: %s", out)
	}
	if _, err := cli(t, "", "user", "unban", "-db", db, "nobody"); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Fatalf("unban of an unknown user: %v", err)
	}

	ban()
	ts.Stop()
	if ts.cfg.Cluster.enabled() {
		// A node's database changes only through the cluster's log.
		if _, err := cli(t, "", "user", "unban", "-db", db, "troll"); err == nil || !strings.Contains(err.Error(), "cluster") {
			t.Fatalf("unban of a stopped node's database: %v", err)
		}
		return
	}
	if out := mustCLI(t, "", "user", "unban", "-db", db, "troll"); !strings.Contains(out, "no longer banned") {
		t.Fatalf("unban with no server running: %s", out)
	}
	ts.start()
	dial(t, ts.WSURL()).auth("troll", "troll-password")
}

// TestModeration_Guards checks the actions nobody may take: acting on
// yourself (a muted moderator unmuting themselves), changing the owner's
// role, muting someone who is not in the room, and per-room actions sent
// as server-wide ones.
func TestModeration_Guards(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	admin, _ := signedIn(t, ts, "admin") // the first account
	owner, mod, _, ownerA, modA, _ := trio(t, ts, "club")
	owner.send("setRole", map[string]string{"roomId": "club", "userId": modA.UserID, "role": "moderator"})
	mod.await("roleChanged")
	_, strangerA := signedIn(t, ts, "stranger")

	owner.send("mute", map[string]any{"roomId": "club", "userId": modA.UserID})
	mod.await("muted")
	for _, typ := range []string{"unmute", "kick", "ban", "mute"} {
		mod.send(typ, map[string]string{"roomId": "club", "userId": modA.UserID})
		if e := mod.awaitError(codeForbidden); !strings.Contains(e.Message, "yourself") {
			t.Fatalf("%s yourself: %q", typ, e.Message)
		}
	}
	mod.send("chat", map[string]string{"roomId": "club", "content": "still muted?", "clientMsgId": "m1"})
	mod.awaitError(codeMuted)

	// Nor can the owner change their own role.
	owner.send("setRole", map[string]string{"roomId": "club", "userId": ownerA.UserID, "role": "member"})
	owner.awaitError(codeForbidden)

	// Even an admin cannot make the owner a moderator.
	admin.send("setRole", map[string]string{"roomId": "club", "userId": ownerA.UserID, "role": "moderator"})
	admin.awaitError(codeForbidden)

	owner.send("mute", map[string]any{"roomId": "club", "userId": strangerA.UserID})
	owner.awaitError(codeNotMember)

	for _, typ := range []string{"unmute", "setRole", "mute", "kick"} {
		admin.send(typ, map[string]any{"roomId": "club", "userId": modA.UserID, "global": true, "role": "member"})
		admin.awaitError(codeBadRequest)
	}
}
