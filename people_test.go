package main

import (
	"testing"
)

// TestPeopleAndGroups: the directory finds anyone by a part of their name
// (not removed or suspended accounts), a direct message needs no shared
// room, and a group conversation of up to limits.group_members people
// works like a private room without a name.
func TestPeopleAndGroups(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.GroupMembers = 3
	ts := startServer(t, &cfg)
	alice, _ := signedIn(t, ts, "alice") // the admin
	bob, bobA := signedIn(t, ts, "bob")
	_, carolA := signedIn(t, ts, "carol")
	_, bobbyA := signedIn(t, ts, "bobby")
	troll, trollA := signedIn(t, ts, "bobtroll")
	_, daveA := signedIn(t, ts, "dave")
	alice.send("ban", map[string]any{"userId": trollA.UserID, "global": true})
	troll.await("loggedOut")

	type peopleData struct {
		Users   []personInfo
		HasMore bool
	}
	bob.send("people", map[string]string{"query": "BOB"})
	var found peopleData
	decodeInto(t, bob.await("people"), &found)
	if len(found.Users) != 1 || found.Users[0].Username != "bobby" || found.Users[0].UserID != bobbyA.UserID {
		t.Fatalf("people matching bob, seen by bob: %+v (not bob himself, not the suspended bobtroll)", found.Users)
	}
	alice.send("people", map[string]any{"limit": 2})
	decodeInto(t, alice.await("people"), &found)
	if len(found.Users) != 2 || !found.HasMore || found.Users[0].Username != "bob" {
		t.Fatalf("the first page of everyone: %+v", found)
	}
	alice.send("people", map[string]any{"query": "<script>"})
	alice.awaitError(codeBadRequest)

	// A direct message to someone found there, with no room in common.
	bob.send("private", map[string]string{"targetUserId": daveA.UserID, "content": "found you in the directory"})
	bob.awaitMessage("found you in the directory")

	// A group of three.
	bob.send("createGroup", map[string]any{"userIds": []string{carolA.UserID, daveA.UserID, bobbyA.UserID}})
	bob.awaitError(codeBadRequest) // four people, of at most three
	bob.send("createGroup", map[string]any{"userIds": []string{carolA.UserID, trollA.UserID}})
	bob.awaitError(codeBanned)
	bob.send("createGroup", map[string]any{"userIds": []string{carolA.UserID, daveA.UserID}})
	var g joinedData
	decodeInto(t, bob.await("joined"), &g)
	if !g.Group || !g.Private || g.Topic != "bob, carol, dave" || len(g.Users) != 3 || g.Role != "owner" {
		t.Fatalf("the group: %+v", g)
	}
	carol := dial(t, ts.WSURL())
	c := carol.auth("carol", "carol-password")
	var in *roomInfo
	for i := range c.Rooms {
		if c.Rooms[i].RoomID == g.RoomID {
			in = &c.Rooms[i]
		}
	}
	if in == nil || !in.Group || in.Topic != "bob, carol, dave" {
		t.Fatalf("carol's rooms: %+v", c.Rooms)
	}
	carol.send("chat", map[string]string{"roomId": g.RoomID, "content": "hello group"})
	bob.awaitMessage("hello group")
	// Full: nobody else comes in, even invited.
	bob.send("invite", map[string]string{"roomId": g.RoomID, "userId": bobbyA.UserID})
	bob.awaitError(codeLimitReached)
	// Private: nobody joins uninvited.
	alice.send("join", map[string]string{"roomId": g.RoomID})
	alice.awaitError(codeForbidden)
	_ = bobA
}
