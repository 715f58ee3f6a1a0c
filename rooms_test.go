package main

import (
	"context"
	"fmt"
	"testing"
)

// TestRooms_CreationLimitHoldsUnderConcurrency: one user asking for 48
// new rooms at once on 8 connections gets at most the hourly allowance;
// joining rooms that exist is not creating.
func TestRooms_CreationLimitHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.RoomsCreatedPerHour = 20
	cfg.Limits.FramesPerSecond = 0
	ts := startServer(t, &cfg)
	other, _ := signedIn(t, ts, "other")
	other.join("existing")
	conns := make([]*wsClient, 8)
	for i := range conns {
		conns[i], _ = signedIn(t, ts, "hoarder")
	}
	done := make(chan map[string]int, len(conns))
	for i, c := range conns {
		go func() {
			for j := range 6 {
				_ = c.trySend("join", map[string]string{"roomId": fmt.Sprintf("mine-%d-%d", i, j)})
			}
			got := map[string]int{}
			for range 6 {
				f := c.next()
				for f.Type != "joined" && f.Type != "error" {
					f = c.next() // presence and userJoined of the other tabs
				}
				if f.Type == "error" {
					var e errorData
					decodeInto(t, f, &e)
					got[e.Code]++
				} else {
					got["joined"]++
				}
			}
			done <- got
		}()
	}
	total := map[string]int{}
	for range conns {
		for k, v := range <-done {
			total[k] += v
		}
	}
	t.Logf("48 simultaneous new rooms: %v", total)
	if total["joined"] != 20 || total[codeRateLimited] != 28 {
		t.Fatalf("48 simultaneous new rooms: %v, want 20 created and 28 rate_limited", total)
	}
	conns[0].join("existing") // joining is not creating
}

// TestRooms_OwnerRejoinsPrivateRoom: the owner of a private room who left
// it can come back; nobody else can without an invitation.
func TestRooms_OwnerRejoinsPrivateRoom(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, _ := signedIn(t, ts, "owner")
	owner.send("join", map[string]any{"roomId": "den", "private": true})
	owner.await("joined")
	owner.send("leave", map[string]string{"roomId": "den"})
	owner.await("left")
	if j := owner.join("den"); !j.Private || j.Role != "owner" {
		t.Fatalf("owner back in den: %+v", j)
	}
	stranger, _ := signedIn(t, ts, "stranger")
	stranger.send("join", map[string]string{"roomId": "den"})
	stranger.expectError(codeForbidden)
}

// TestRooms_TrimmedHistorySaysSo: when the server no longer keeps a
// room's first messages, joined and history say the start was trimmed,
// not reached.
func TestRooms_TrimmedHistorySaysSo(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.History.PerRoom = 10
	cfg.History.OnJoin = 5
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	c, _ := signedIn(t, ts, "writer")
	if j := c.join("short"); j.Trimmed || j.HasMore {
		t.Fatalf("an empty room: %+v", j)
	}
	for i := 1; i <= 8; i++ {
		c.send("chat", map[string]string{"roomId": "short", "content": fmt.Sprint("m", i)})
		c.awaitMessage(fmt.Sprint("m", i))
	}
	reader, _ := signedIn(t, ts, "reader")
	j := reader.join("short")
	if j.Trimmed || !j.HasMore {
		t.Fatalf("8 of 8 kept, 5 shown: trimmed=%v hasMore=%v", j.Trimmed, j.HasMore)
	}
	page := func(before string) historyOutData {
		reader.send("history", map[string]any{"roomId": "short", "before": before})
		var h historyOutData
		decodeInto(t, reader.await("history"), &h)
		return h
	}
	if h := page(j.History[0].ID); h.Trimmed || h.HasMore || len(h.Messages) != 3 {
		t.Fatalf("the beginning, all kept: %d messages, trimmed=%v hasMore=%v", len(h.Messages), h.Trimmed, h.HasMore)
	}
	for i := 9; i <= 30; i++ {
		c.send("chat", map[string]string{"roomId": "short", "content": fmt.Sprint("m", i)})
		c.awaitMessage(fmt.Sprint("m", i))
	}
	late, _ := signedIn(t, ts, "late")
	j = late.join("short")
	if j.Trimmed || !j.HasMore {
		t.Fatalf("10 kept, 5 shown: trimmed=%v hasMore=%v", j.Trimmed, j.HasMore)
	}
	reader = late
	if h := page(j.History[0].ID); !h.Trimmed || h.HasMore || len(h.Messages) != 5 || h.Messages[0].Content != "m21" {
		t.Fatalf("the oldest kept page: %d messages from %v, trimmed=%v hasMore=%v", len(h.Messages), h.Messages, h.Trimmed, h.HasMore)
	}
}

// TestRooms_RemovedAccountLeavesItsRooms: removing an account takes it
// out of its rooms, and their members hear it leave.
func TestRooms_RemovedAccountLeavesItsRooms(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	stay, _ := signedIn(t, ts, "stay")
	stay.join("club")
	gone, _ := signedIn(t, ts, "gone")
	gone.join("club")
	stay.await("userJoined")
	if err := ts.srv.admin.RemoveUser(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	var left roomUserData
	decodeInto(t, stay.await("userLeft"), &left)
	if left.Username != "gone" || left.RoomID != "club" {
		t.Fatalf("userLeft = %+v", left)
	}
	gone.await("loggedOut")
}

// TestRooms_DirectHistoryReadsOnEveryDevice: fetching the newest page of
// a direct conversation marks it read, and the reader's other devices
// are told.
func TestRooms_DirectHistoryReadsOnEveryDevice(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	_, alice := signedIn(t, ts, "alice")
	bob, _ := signedIn(t, ts, "bob")
	bob.send("private", map[string]string{"targetUserId": alice.UserID, "content": "ping"})
	dm := bob.awaitMessage("ping")
	phone, _ := signedIn(t, ts, "alice")
	laptop, _ := signedIn(t, ts, "alice")
	laptop.send("history", map[string]string{"withUserId": dm.SenderID})
	laptop.await("history")
	var r readUpdatedData
	decodeInto(t, phone.await("readUpdated"), &r)
	if r.WithUserID != dm.SenderID || r.MessageID != dm.ID {
		t.Fatalf("readUpdated = %+v, want %s up to %s", r, dm.SenderID, dm.ID)
	}
}

// TestConsent_OthersCannotFillYourRooms: members of many public rooms add
// a victim to all of them. One inviter adds them to at most
// limits.invites_from_one_user rooms; what others added never counts
// against the victim's own limits.rooms_per_user, so the victim can
// still join rooms; leaving an added room frees the inviter's place.
func TestConsent_OthersCannotFillYourRooms(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.RoomsPerUser = 4
	cfg.Limits.InvitesFromOneUser = 2
	ts := startServer(t, &cfg)
	victim, va := signedIn(t, ts, "victim")
	invite := func(c *wsClient, room string) string {
		t.Helper()
		c.send("invite", map[string]string{"roomId": room, "userId": va.UserID})
		for {
			f := c.next()
			switch f.Type {
			case "userJoined":
				return "ok"
			case "error":
				var e errorData
				decodeInto(t, f, &e)
				return e.Code
			}
		}
	}
	trolls := make([]*wsClient, 3)
	for i := range trolls {
		trolls[i], _ = signedIn(t, ts, fmt.Sprint("troll", i))
		for r := range 4 {
			trolls[i].join(fmt.Sprintf("t%d-room%d", i, r))
		}
	}
	for r := range 4 {
		want := "ok"
		if r >= 2 {
			want = codeLimitReached // two from one inviter
		}
		if got := invite(trolls[0], fmt.Sprintf("t0-room%d", r)); got != want {
			t.Fatalf("troll0's invitation %d: %s, want %s", r, got, want)
		}
	}
	for r := range 2 {
		if got := invite(trolls[1], fmt.Sprintf("t1-room%d", r)); got != "ok" {
			t.Fatalf("troll1's invitation %d: %s", r, got)
		}
	}
	// Four rooms from others: the cap on those, not on the victim's own.
	if got := invite(trolls[2], "t2-room0"); got != codeLimitReached {
		t.Fatalf("a fifth room from others: %s, want limit_reached", got)
	}
	for r := range 4 {
		victim.send("join", map[string]string{"roomId": fmt.Sprint("mine-", r)})
		victim.await("joined")
	}
	victim.send("join", map[string]string{"roomId": "mine-4"})
	victim.awaitError(codeLimitReached)

	victim.send("leave", map[string]string{"roomId": "t0-room0"})
	victim.await("left")
	if got := invite(trolls[0], "t0-room2"); got != "ok" {
		t.Fatalf("troll0 after the victim left one of its rooms: %s", got)
	}
}

// TestRooms_EventsInHistory: joins, topics and moderation are kept with
// the room's messages and come back in joined and history, each after the
// message it followed; they age out with the messages around them.
func TestRooms_EventsInHistory(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.History.PerRoom = 6
	cfg.History.OnJoin = 2
	cfg.Limits.MessagesPerSecond = 0
	ts := startServer(t, &cfg)
	owner, _ := signedIn(t, ts, "owner")
	owner.join("hall")
	post := func(text string) messageFrame {
		owner.send("chat", map[string]string{"roomId": "hall", "content": text})
		return owner.awaitMessage(text)
	}
	m1 := post("m1")
	bob, bobA := signedIn(t, ts, "bob")
	bob.join("hall")
	owner.send("setTopic", map[string]string{"roomId": "hall", "topic": "plans"})
	owner.await("roomUpdated")
	m2 := post("m2")
	owner.send("kick", map[string]string{"roomId": "hall", "userId": bobA.UserID, "reason": "enough"})
	owner.await("kicked")
	m3 := post("m3")

	carol, _ := signedIn(t, ts, "carol")
	j := carol.join("hall")
	got := func(events []roomEventInfo) []string {
		var out []string
		for _, e := range events {
			out = append(out, e.Type+" "+e.Username+" after "+e.After)
		}
		return out
	}
	// joined holds m2 and m3. An event belongs to the page of the message
	// below it: bob's join and the topic (between m1 and m2) come before
	// the page's first message (after ""); the kick follows m2; carol's
	// own join, m3.
	want := []string{"joined bob after ", "topic owner after ", "kicked bob after " + m2.ID, "joined carol after " + m3.ID}
	if g := got(j.Events); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("joined.events = %q, want %q", g, want)
	}
	if k := j.Events[2]; k.By == nil || k.By.Username != "owner" || k.Reason != "enough" || j.Events[1].Topic != "plans" {
		t.Fatalf("the topic %+v and the kick %+v", j.Events[1], k)
	}
	// The page before holds m1 alone, the first message: nothing happened
	// above it (making the room is not an event).
	carol.send("history", map[string]string{"roomId": "hall", "before": m2.ID})
	var h historyOutData
	decodeInto(t, carol.await("history"), &h)
	if len(h.Messages) != 1 || h.Messages[0].ID != m1.ID || len(h.Events) != 0 {
		t.Fatalf("history before m2: %d messages, events %q", len(h.Messages), got(h.Events))
	}
	// Six more messages push m1..m3 out, and the events among them go too.
	for i := range 6 {
		post(fmt.Sprint("later ", i))
	}
	carol.send("history", map[string]any{"roomId": "hall", "limit": 100})
	decodeInto(t, carol.await("history"), &h)
	for _, e := range h.Events {
		if e.Type != "joined" || e.Username != "carol" {
			t.Fatalf("an event among trimmed messages is still kept: %+v", e)
		}
	}
}
