package main

import (
	"time"

	"parley/internal/store"

	"github.com/gorilla/websocket"
)

// Deliver turns the events of one applied batch into frames for the
// connections concerned. The command bus calls it for every batch, in log
// order, from one goroutine, so every connection sees a conversation's
// messages in id order; the sender's own copy of a message is its
// acknowledgement. It returns how many message frames it queued.
func (h *Hub) Deliver(b store.Batch) int {
	if b.Err != nil {
		return 0
	}
	h.mu.Lock()
	if last := b.LastSeq(); last > h.seen {
		h.seen = last
	}
	h.mu.Unlock()
	n := 0
	for i := range b.Applied {
		ap := &b.Applied[i]
		for _, ev := range ap.Events {
			n += h.deliver(ap.Env.Origin, ev, b.Committed)
		}
	}
	return n
}

// deliver sends one event. origin is the connection that asked for the
// change, when it is on this server.
func (h *Hub) deliver(origin string, ev store.Event, committed time.Time) int {
	switch e := ev.(type) {
	case store.MessagePosted:
		return h.messagePosted(e.Message, committed)
	case store.MessageEdited:
		out := messageEditedData{messageRef: messageRefOf(e.Message), Content: e.Message.Content, EditedAt: formatTime(e.Message.EditedAt)}
		if len(e.Message.Mentions) > 0 {
			out.Mentions = idStrings(e.Message.Mentions)
		}
		h.publish(e.Message.Conv(), marshalFrame("messageEdited", out))
	case store.MessageDeleted:
		h.publish(e.Message.Conv(), marshalFrame("messageDeleted", messageDeletedData{messageRef: messageRefOf(e.Message), By: toUserRef(e.By)}))
	case store.ReactionChanged:
		out := reactionData{messageRef: messageRefOf(e.Message), Emoji: e.Emoji, UserID: formatID(e.User.ID), Username: e.User.Name,
			Added: e.Added, UserIDs: []string{}}
		for _, r := range e.Message.Reactions {
			if r.Emoji == e.Emoji {
				out.Count, out.UserIDs = len(r.Users), idStrings(r.Users)
			}
		}
		h.publish(e.Message.Conv(), marshalFrame("reaction", out))
	case store.ReadMoved:
		out := readUpdatedData{MessageID: formatMessageID(e.Seq)}
		out.RoomID, out.WithUserID = replyAddress(e.Conv, e.UserID)
		h.sendUserExcept(e.UserID, origin, marshalFrame("readUpdated", out))
	case store.MemberJoined:
		h.memberJoined(origin, e)
	case store.MemberLeft:
		h.mu.Lock()
		h.leaveLocked(e.User.ID, e.RoomID)
		h.sendUserLocked(e.User.ID, marshalFrame("left", roomData{RoomID: e.RoomID}))
		h.broadcastLocked(e.RoomID, marshalFrame("userLeft", roomUserData{RoomID: e.RoomID, UserID: formatID(e.User.ID), Username: e.User.Name}), 0)
		h.mu.Unlock()
	case store.Moderated:
		h.moderated(origin, e)
	case store.TopicChanged:
		frame := marshalFrame("roomUpdated", roomUpdatedData{RoomID: e.Room.ID, Topic: e.Room.Topic, Private: e.Room.Private, By: toUserRef(e.By)})
		h.mu.RLock()
		h.broadcastLocked(e.Room.ID, frame, 0)
		h.toOriginOutsideLocked(origin, e.Room.ID, frame)
		h.mu.RUnlock()
	case store.UserSuspended:
		h.userSuspended(origin, e)
	case store.SignedOut:
		h.signOut(e.UserID, func(c *Conn, who *identity) bool {
			return e.TokenHash == nil || who.tokenHash == string(e.TokenHash)
		}, e.Reason)
	case store.PasswordChanged:
		// The requesting connection carries on with its new token; every
		// other connection of the user is signed out.
		h.mu.Lock()
		if c := h.conns[origin]; c != nil && e.NewTokenHash != nil {
			if who := c.who.Load(); who != nil && who.userID == e.UserID {
				next := *who
				next.tokenHash = string(e.NewTokenHash)
				c.who.Store(&next)
			}
		}
		h.mu.Unlock()
		h.signOut(e.UserID, func(c *Conn, _ *identity) bool { return c.id != origin }, e.Reason)
	}
	return 0
}

// messagePosted fans a new message out: to the room, or to both parties
// of a direct conversation, who then hear of each other's presence. The
// deliveries are counted before they are written, so a sender who sees
// its acknowledgement sees the counter moved.
func (h *Hub) messagePosted(m store.Message, committed time.Time) int {
	mf := toMessageFrame(m)
	if !m.IsDirect() {
		h.mu.RLock()
		defer h.mu.RUnlock()
		n := len(h.rooms[m.RoomID])
		h.metrics.deliveries.Add(float64(n))
		frame := marshalFrame("message", mf)
		h.clock.posted(frame, committed, n)
		h.broadcastLocked(m.RoomID, frame, 0)
		return n
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, pair := range [][2]uint64{{m.SenderID, m.TargetID}, {m.TargetID, m.SenderID}} {
		if p := h.users[pair[0]]; p != nil {
			p.peers[pair[1]] = struct{}{}
			n += len(p.conns)
		}
		if r := h.remote[pair[0]]; r != nil {
			r.peers[pair[1]] = struct{}{}
		}
	}
	h.metrics.deliveries.Add(float64(n))
	h.sendUserLocked(m.TargetID, marshalFrame("privateMessage", mf))
	h.sendUserLocked(m.SenderID, marshalFrame("privateMessageSent", mf))
	return n
}

// publish sends an event about a message to everyone who sees its
// conversation: the room's members, or the two parties.
func (h *Hub) publish(conv store.Conv, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if conv.IsDirect() {
		h.sendUserLocked(conv.A, frame)
		h.sendUserLocked(conv.B, frame)
		return
	}
	h.broadcastLocked(conv.RoomID, frame, 0)
}

// sendUserExcept writes a frame to a user's connections but one.
func (h *Hub) sendUserExcept(userID uint64, except string, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if p := h.users[userID]; p != nil {
		for c := range p.conns {
			if c.id != except {
				c.Send(frame)
			}
		}
	}
}

// memberJoined subscribes a new member's connections. One who joined
// hears of it from their own join's answer (joined); the connection that
// asked subscribes itself with that answer, so joined comes before the
// room's traffic. One who was invited hears invited first.
func (h *Hub) memberJoined(origin string, e store.MemberJoined) {
	room, uid := e.Room.ID, e.User.ID
	joined := roomUserData{RoomID: room, UserID: formatID(uid), Username: e.User.Name, Guest: e.User.Guest, Bot: e.User.Bot}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remoteJoinedLocked(uid, room)
	p := h.users[uid]
	if e.InvitedBy == nil {
		if p != nil {
			p.rooms[room] = struct{}{}
			for c := range p.conns {
				if c.id != origin {
					h.subscribeLocked(room, c)
				}
			}
		}
		h.broadcastLocked(room, marshalFrame("userJoined", joined), uid)
		return
	}
	by := toUserRef(*e.InvitedBy)
	if p != nil {
		// Under the lock nothing is written between these steps, so
		// invited still comes before the room's traffic.
		p.rooms[room] = struct{}{}
		for c := range p.conns {
			h.subscribeLocked(room, c)
		}
		invited := marshalFrame("invited", invitedData{Room: toRoomInfo(e.Room, h.onlineCountLocked(room)), By: by})
		for c := range p.conns {
			c.Send(invited)
		}
	}
	joined.InvitedBy = &by
	h.broadcastLocked(room, marshalFrame("userJoined", joined), uid)
}

// leaveLocked unsubscribes every connection of a user from a room.
func (h *Hub) leaveLocked(userID uint64, room string) {
	h.remoteLeftLocked(userID, room)
	p := h.users[userID]
	if p == nil {
		return
	}
	delete(p.rooms, room)
	for c := range p.conns {
		h.unsubscribeLocked(room, c)
	}
}

// toOriginOutsideLocked sends a frame to the connection that asked for a
// change in a room, when it would not get the room's copy: an admin
// acting from outside the room still sees the outcome.
func (h *Hub) toOriginOutsideLocked(origin, room string, frame []byte) {
	c := h.conns[origin]
	if c == nil {
		return
	}
	if _, in := h.rooms[room][c]; !in {
		c.Send(frame)
	}
}

// moderated sends a moderation event once to each connection concerned.
// Kick, ban and unban reach the room, the target (who may be subscribed
// or not) and the actor acting from outside; a kick or a ban of a member
// then takes the target out of the room. Mute, unmute and role changes
// reach the room and the actor acting from outside.
func (h *Hub) moderated(origin string, e store.Moderated) {
	out := moderationEvent{RoomID: e.Room.ID, UserID: formatID(e.Target.ID), Username: e.Target.Name, By: toUserRef(e.Actor),
		Reason: e.Reason, Role: e.Role}
	if e.Action == "muted" && !e.Until.IsZero() {
		out.Until = formatTime(e.Until)
	}
	frame := marshalFrame(e.Action, out)
	room := e.Room.ID
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Action {
	case "kicked", "banned", "unbanned":
		h.broadcastLocked(room, frame, e.Target.ID)
		h.sendUserLocked(e.Target.ID, frame)
		h.toOriginOutsideLocked(origin, room, frame)
		if e.WasMember {
			h.leaveLocked(e.Target.ID, room)
			h.sendUserLocked(e.Target.ID, marshalFrame("left", roomData{RoomID: room}))
		}
	default:
		h.broadcastLocked(room, frame, 0)
		h.toOriginOutsideLocked(origin, room, frame)
	}
}

// userSuspended announces a server-wide ban: each of the user's rooms
// hears its own copy, naming the room; the user and the acting
// connection hear one server-wide copy. Lifting it tells the actor.
func (h *Hub) userSuspended(origin string, e store.UserSuspended) {
	out := moderationEvent{UserID: formatID(e.Target.ID), Username: e.Target.Name, By: toUserRef(e.Actor), Reason: e.Reason, Global: true}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !e.Suspended {
		if c := h.conns[origin]; c != nil {
			c.Send(marshalFrame("unbanned", out))
		}
		return
	}
	for _, r := range e.Rooms {
		perRoom := out
		perRoom.RoomID = r
		h.broadcastLocked(r, marshalFrame("banned", perRoom), e.Target.ID)
	}
	frame := marshalFrame("banned", out)
	h.sendUserLocked(e.Target.ID, frame)
	if c := h.conns[origin]; c != nil {
		c.Send(frame)
	}
}

// signOut sends loggedOut to the user's connections that match and
// closes them with 1000.
func (h *Hub) signOut(userID uint64, match func(*Conn, *identity) bool, reason string) {
	bye := marshalFrame("loggedOut", loggedOutData{Reason: reason})
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.users[userID]
	if p == nil {
		return
	}
	for c := range p.conns {
		if match(c, c.who.Load()) {
			c.Send(bye)
			c.close(websocket.CloseNormalClosure, reason)
		}
	}
}
