package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxTopicChars bounds a room's topic.
const maxTopicChars = 250

func (s *server) handleJoin(ctx context.Context, c *client, f Frame) error {
	var d joinData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	if err := checkTopic(d.Topic); err != nil {
		return err
	}
	a := c.user.Load()
	uid := a.idString()
	createBlocked, wait := s.roomsCreated.Blocked(uid)
	res, err := s.store.JoinRoom(d.RoomID, Member{UserID: a.ID, Name: a.Name}, s.now(),
		JoinLimits{MaxRooms: s.cfg.Limits.RoomsPerUser, NoCreate: createBlocked, Private: d.Private, Topic: d.Topic})
	switch {
	case errors.Is(err, ErrTooManyRooms):
		return errorf(codeLimitReached, "You are a member of %d rooms, the most this server allows; leave one first", s.cfg.Limits.RoomsPerUser)
	case errors.Is(err, ErrCreateNotAllowed):
		s.metrics.rateLimited.WithLabelValues("rooms").Inc()
		return rateLimited(fmt.Sprintf("You have created %d rooms in the last hour; join an existing room or try again later",
			s.cfg.Limits.RoomsCreatedPerHour), wait)
	case errors.Is(err, ErrBanned):
		return errorf(codeBanned, "You are banned from %s", d.RoomID)
	case errors.Is(err, ErrPrivateRoom):
		return errorf(codeForbidden, "%s is private; a moderator has to invite you", d.RoomID)
	case err != nil:
		return err
	}
	if res.Created {
		s.roomsCreated.Spend(uid)
	}
	// Subscribe before reading history: a message committed in between
	// then arrives twice (clients dedupe by id) rather than never.
	s.hub.Join(a.ID, d.RoomID)
	if err := s.sendJoined(c, res.Room, res.Created); err != nil {
		return err
	}
	if res.NewMember {
		s.hub.Broadcast(d.RoomID, marshalFrame("userJoined", roomUserData{RoomID: d.RoomID, UserID: uid, Username: a.Name}), a.ID)
		s.log.Info("joined room", "user", a.Name, "room", d.RoomID, "created", res.Created, "private", res.Room.Private)
	}
	return nil
}

// sendJoined answers a join with the room, its recent history, its
// members, and the user's place in it.
func (s *server) sendJoined(c *client, room Room, created bool) error {
	a := c.user.Load()
	msgs, more, err := s.store.RoomHistory(room.ID, 0, s.cfg.History.OnJoin)
	if err != nil {
		return err
	}
	members, err := s.store.RoomMembers(room.ID)
	if err != nil {
		return err
	}
	reads, err := s.store.RoomReadStates(a.ID, []string{room.ID})
	if err != nil {
		return err
	}
	users, err := s.memberInfos(room, members)
	if err != nil {
		return err
	}
	j := joinedData{RoomID: room.ID, Created: created, Topic: room.Topic, Private: room.Private,
		Role: roomRole(room, a.ID), History: toMessageFrames(msgs), HasMore: more, Users: users}
	if !more {
		if j.Trimmed, err = s.store.HistoryTrimmed(RoomConv(room.ID)); err != nil {
			return err
		}
	}
	if lr := reads[room.ID].LastRead; lr > 0 {
		j.LastRead = formatMessageID(lr)
	}
	c.send(marshalFrame("joined", j))
	return nil
}

// memberInfos describes a room's members for joined: presence, role,
// mute, and whether they are server admins.
func (s *server) memberInfos(room Room, members []Member) ([]memberInfo, error) {
	ids := make([]uint64, len(members))
	for i, m := range members {
		ids[i] = m.UserID
	}
	admins, err := s.store.AdminsAmong(ids)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]memberInfo, len(members))
	for i, m := range members {
		until, muted := room.MuteAt(m.UserID, now)
		out[i] = memberInfo{UserID: strconv.FormatUint(m.UserID, 10), Username: m.Name, Online: s.hub.Online(m.UserID),
			Role: roomRole(room, m.UserID), Muted: muted, Admin: admins[m.UserID]}
		if muted && !until.IsZero() {
			out[i].MutedUntil = formatTime(until)
		}
	}
	slices.SortFunc(out, func(x, y memberInfo) int { return strings.Compare(x.Username, y.Username) })
	return out, nil
}

func (s *server) handleLeave(ctx context.Context, c *client, f Frame) error {
	var d roomData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	a := c.user.Load()
	was, err := s.store.LeaveRoom(d.RoomID, a.ID)
	if err != nil {
		return err
	}
	if !was {
		return errorf(codeNotMember, "Not in room")
	}
	s.hub.Leave(a.ID, d.RoomID)
	s.hub.SendUser(a.ID, marshalFrame("left", roomData{RoomID: d.RoomID}))
	s.hub.Broadcast(d.RoomID, marshalFrame("userLeft", roomUserData{RoomID: d.RoomID, UserID: a.idString(), Username: a.Name}), 0)
	s.log.Info("left room", "user", a.Name, "room", d.RoomID)
	return nil
}

// handleRooms lists the public rooms and the private ones the user
// belongs to.
func (s *server) handleRooms(ctx context.Context, c *client, f Frame) error {
	var d struct{}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	rooms, err := s.store.Rooms()
	if err != nil {
		return err
	}
	a := c.user.Load()
	visible := make([]Room, 0, len(rooms))
	ids := make([]string, 0, len(rooms))
	for _, r := range rooms {
		if !r.Private || s.hub.IsMember(a.ID, r.ID) {
			visible = append(visible, r)
			ids = append(ids, r.ID)
		}
	}
	counts := s.hub.OnlineCounts(ids)
	out := make([]roomInfo, len(visible))
	for i, r := range visible {
		out[i] = toRoomInfo(r, counts[r.ID])
	}
	c.send(marshalFrame("rooms", roomsData{Rooms: out}))
	return nil
}

func toRoomInfo(r Room, online int) roomInfo {
	info := roomInfo{RoomID: r.ID, MemberCount: r.MemberCount, OnlineCount: online, CreatedAt: formatTime(r.CreatedAt),
		Topic: r.Topic, Private: r.Private}
	if !r.LastMessageAt.IsZero() {
		info.LastMessageAt = formatTime(r.LastMessageAt)
	}
	return info
}

func checkTopic(topic string) *protoError {
	if n := utf8.RuneCountInString(topic); n > maxTopicChars {
		return errorf(codeBadRequest, "A topic is at most %d characters; this one is %d", maxTopicChars, n)
	}
	for _, r := range topic {
		if unicode.IsControl(r) {
			return errorf(codeBadRequest, "A topic is one line without control characters")
		}
	}
	return nil
}

// --- roles ---

// Ranks order who may act on whom: an action needs a higher rank than
// its target's.
const (
	rankMember = iota
	rankModerator
	rankOwner
	rankAdmin
)

// roomRole names a user's role in a room.
func roomRole(r Room, userID uint64) string {
	switch {
	case r.CreatedBy == userID:
		return "owner"
	case r.IsModerator(userID):
		return "moderator"
	}
	return "member"
}

func rank(r Room, u User) int {
	switch {
	case u.Admin:
		return rankAdmin
	case r.CreatedBy == u.ID:
		return rankOwner
	case r.IsModerator(u.ID):
		return rankModerator
	}
	return rankMember
}

// --- moderation ---

// modTarget is a moderation frame resolved: the room, the acting user,
// the target user, and their ranks there.
type modTarget struct {
	d      moderationData
	room   Room
	actor  User
	target User
}

// resolveModeration reads a moderation frame and checks the actor may act
// on the target in the room: at least needRank, and above the target.
func (s *server) resolveModeration(c *client, f Frame, needRank int) (modTarget, error) {
	var t modTarget
	if err := decodeData(f, &t.d); err != nil {
		return t, err
	}
	if t.d.UserID == "" && t.d.Username == "" {
		return t, errorf(codeBadRequest, "Missing userId")
	}
	if t.d.Global && f.Type != "ban" && f.Type != "unban" {
		if f.Type == "kick" {
			return t, errorf(codeBadRequest, "kick works per room; use ban with global for the server")
		}
		return t, errorf(codeBadRequest, "%s works per room", f.Type)
	}
	var err error
	if t.target, err = s.findUser(t.d.UserID, t.d.Username); err != nil {
		return t, err
	}
	if t.d.Global {
		if t.actor, err = s.store.UserByID(c.user.Load().ID); err != nil {
			return t, err
		}
		if !t.actor.Admin {
			return t, errorf(codeForbidden, "Only a server admin can do that server-wide")
		}
		if t.target.Admin || t.target.ID == t.actor.ID {
			return t, errorf(codeForbidden, "Admins cannot be banned server-wide")
		}
		return t, nil
	}
	if t.actor, t.room, err = s.actorAndRoom(c, t.d.RoomID); err != nil {
		return t, err
	}
	actorRank := rank(t.room, t.actor)
	if actorRank < needRank || (actorRank < rankAdmin && !s.hub.IsMember(t.actor.ID, t.room.ID)) {
		return t, errorf(codeForbidden, "Only the room's %s can do that", map[int]string{
			rankModerator: "owner and moderators", rankOwner: "owner"}[needRank])
	}
	if t.target.ID == t.actor.ID {
		// Or a muted moderator could unmute themselves.
		return t, errorf(codeForbidden, "You cannot %s yourself", f.Type)
	}
	if rank(t.room, t.target) >= actorRank {
		return t, errorf(codeForbidden, "%s has the same role as you or a higher one", t.target.Name)
	}
	if t.target.ID == t.room.CreatedBy && f.Type == "setRole" {
		return t, errorf(codeForbidden, "The owner's role cannot change")
	}
	return t, nil
}

// actorAndRoom loads the acting user and a room an action concerns.
func (s *server) actorAndRoom(c *client, roomID string) (User, Room, error) {
	if err := checkRoomID(roomID); err != nil {
		return User{}, Room{}, err
	}
	me, err := s.store.UserByID(c.user.Load().ID)
	if err != nil {
		return User{}, Room{}, err
	}
	room, err := s.store.Room(roomID)
	if errors.Is(err, ErrNotFound) {
		return User{}, Room{}, errorf(codeInvalidRoom, "No room %s", roomID)
	}
	return me, room, err
}

// isMemberOf asks the store whether a user, online or not, is a member.
func isMemberOf(s *server, roomID string, userID uint64) bool {
	is, err := s.store.IsMember(roomID, userID)
	return err == nil && is
}

func (t modTarget) event(reason string) moderationEvent {
	return moderationEvent{RoomID: t.room.ID, UserID: strconv.FormatUint(t.target.ID, 10), Username: t.target.Name,
		By: userRef{UserID: strconv.FormatUint(t.actor.ID, 10), Username: t.actor.Name}, Reason: reason, Global: t.d.Global}
}

// handleKick removes a member from a room; they may join again unless the
// room is private.
func (s *server) handleKick(ctx context.Context, c *client, f Frame) error {
	t, err := s.resolveModeration(c, f, rankModerator)
	if err != nil {
		return err
	}
	was, err := s.store.LeaveRoom(t.room.ID, t.target.ID)
	if err != nil {
		return err
	}
	if !was {
		return errorf(codeNotMember, "%s is not in %s", t.target.Name, t.room.ID)
	}
	s.removeFromRoom(c, t, "kicked")
	return nil
}

// announce sends a moderation event about a room once to each connection
// concerned: the room's, the target's (who may be subscribed to the room
// or not), and the acting connection when the actor is not in the room
// (an admin acting from outside).
func (s *server) announce(c *client, t modTarget, frame []byte) {
	s.hub.Broadcast(t.room.ID, frame, t.target.ID)
	s.hub.SendUser(t.target.ID, frame)
	if t.actor.ID != t.target.ID && !s.hub.IsMember(t.actor.ID, t.room.ID) {
		c.send(frame)
	}
}

// tellRoom sends a moderation event to the room, and to the acting
// connection when an admin acted from outside it, so the actor always
// sees the outcome.
func (s *server) tellRoom(c *client, t modTarget, frame []byte) {
	s.hub.Broadcast(t.room.ID, frame, 0)
	if !s.hub.IsMember(t.actor.ID, t.room.ID) {
		c.send(frame)
	}
}

// removeFromRoom announces a kick or ban (see announce), then
// unsubscribes the target and tells their connections.
func (s *server) removeFromRoom(c *client, t modTarget, kind string) {
	s.announce(c, t, marshalFrame(kind, t.event(truncate(t.d.Reason, maxTopicChars))))
	s.hub.Leave(t.target.ID, t.room.ID)
	s.hub.SendUser(t.target.ID, marshalFrame("left", roomData{RoomID: t.room.ID}))
	s.log.Info("moderation", "action", kind, "room", t.room.ID, "user", t.target.Name, "by", t.actor.Name)
}

// handleBan bans a user from a room, or from the server (global, admins
// only): a banned user cannot join again, or sign in again.
func (s *server) handleBan(ctx context.Context, c *client, f Frame) error {
	t, err := s.resolveModeration(c, f, rankModerator)
	if err != nil {
		return err
	}
	reason := truncate(t.d.Reason, maxTopicChars)
	if t.d.Global {
		// The rooms first: once suspended, the user must also be signed
		// out, so nothing that can fail comes between the two.
		rooms, err := s.store.UserRooms(t.target.ID)
		if err != nil {
			return err
		}
		if err := s.store.SetSuspended(t.target.ID, true); err != nil {
			return err
		}
		// Each room hears its own copy, naming the room; the target and the
		// acting connection hear one server-wide copy, without a roomId.
		for _, r := range rooms {
			ev := t.event(reason)
			ev.RoomID = r.ID
			s.hub.Broadcast(r.ID, marshalFrame("banned", ev), t.target.ID)
		}
		ev := marshalFrame("banned", t.event(reason))
		s.hub.SendUser(t.target.ID, ev)
		s.signOutAll(t.target.ID, "account suspended")
		c.send(ev)
		s.log.Info("moderation", "action", "banned server-wide", "user", t.target.Name, "by", t.actor.Name)
		return nil
	}
	wasMember, err := s.store.BanFromRoom(t.room.ID, t.target.ID, RoomBan{By: t.actor.ID, At: s.now().UTC(), Reason: reason})
	if err != nil {
		return err
	}
	if !wasMember {
		// Banned ahead of time: the room hears of it, and the target, who
		// has nothing to leave, hears it once.
		s.announce(c, t, marshalFrame("banned", t.event(reason)))
		s.log.Info("moderation", "action", "banned", "room", t.room.ID, "user", t.target.Name, "by", t.actor.Name)
		return nil
	}
	s.removeFromRoom(c, t, "banned")
	return nil
}

func (s *server) handleUnban(ctx context.Context, c *client, f Frame) error {
	t, err := s.resolveModeration(c, f, rankModerator)
	if err != nil {
		return err
	}
	ev := marshalFrame("unbanned", t.event(""))
	if t.d.Global {
		if err := s.store.SetSuspended(t.target.ID, false); err != nil {
			return err
		}
		c.send(ev)
		s.log.Info("moderation", "action", "unbanned server-wide", "user", t.target.Name, "by", t.actor.Name)
		return nil
	}
	if _, err := s.store.UpdateRoom(t.room.ID, func(r Room) (Room, error) {
		if _, ok := r.Bans[t.target.ID]; !ok {
			return r, errorf(codeNotFound, "%s is not banned from %s", t.target.Name, r.ID)
		}
		delete(r.Bans, t.target.ID)
		return r, nil
	}); err != nil {
		return err
	}
	s.announce(c, t, ev)
	return nil
}

// handleMute keeps a member from sending messages (and typing notices) in
// a room, for minutes or until unmuted.
func (s *server) handleMute(ctx context.Context, c *client, f Frame) error {
	t, err := s.resolveModeration(c, f, rankModerator)
	if err != nil {
		return err
	}
	if t.d.Minutes < 0 || t.d.Minutes > 60*24*365 {
		return errorf(codeBadRequest, "minutes must be between 0 (until unmuted) and a year")
	}
	if !isMemberOf(s, t.room.ID, t.target.ID) {
		return errorf(codeNotMember, "%s is not in %s", t.target.Name, t.room.ID)
	}
	var until time.Time
	if t.d.Minutes > 0 {
		until = s.now().Add(time.Duration(t.d.Minutes) * time.Minute).UTC()
	}
	if _, err := s.store.UpdateRoom(t.room.ID, func(r Room) (Room, error) {
		if r.Mutes == nil {
			r.Mutes = map[uint64]time.Time{}
		}
		r.Mutes[t.target.ID] = until
		return r, nil
	}); err != nil {
		return err
	}
	ev := t.event(truncate(t.d.Reason, maxTopicChars))
	if !until.IsZero() {
		ev.Until = formatTime(until)
	}
	s.tellRoom(c, t, marshalFrame("muted", ev))
	return nil
}

func (s *server) handleUnmute(ctx context.Context, c *client, f Frame) error {
	t, err := s.resolveModeration(c, f, rankModerator)
	if err != nil {
		return err
	}
	if _, err := s.store.UpdateRoom(t.room.ID, func(r Room) (Room, error) {
		delete(r.Mutes, t.target.ID)
		return r, nil
	}); err != nil {
		return err
	}
	s.tellRoom(c, t, marshalFrame("unmuted", t.event("")))
	return nil
}

// handleSetRole lets a room's owner (or an admin) appoint and dismiss
// moderators.
func (s *server) handleSetRole(ctx context.Context, c *client, f Frame) error {
	t, err := s.resolveModeration(c, f, rankOwner)
	if err != nil {
		return err
	}
	if t.d.Role != "moderator" && t.d.Role != "member" {
		return errorf(codeBadRequest, "role must be moderator or member")
	}
	if !isMemberOf(s, t.room.ID, t.target.ID) {
		return errorf(codeNotMember, "%s is not in %s", t.target.Name, t.room.ID)
	}
	if _, err := s.store.UpdateRoom(t.room.ID, func(r Room) (Room, error) {
		r.Moderators = slices.DeleteFunc(r.Moderators, func(id uint64) bool { return id == t.target.ID })
		if t.d.Role == "moderator" {
			r.Moderators = append(r.Moderators, t.target.ID)
		}
		return r, nil
	}); err != nil {
		return err
	}
	ev := t.event("")
	ev.Role = t.d.Role
	s.tellRoom(c, t, marshalFrame("roleChanged", ev))
	return nil
}

// handleSetTopic changes a room's topic (owner and moderators).
func (s *server) handleSetTopic(ctx context.Context, c *client, f Frame) error {
	var d topicData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkTopic(d.Topic); err != nil {
		return err
	}
	me, room, err := s.actorAndRoom(c, d.RoomID)
	if err != nil {
		return err
	}
	if rank(room, me) < rankModerator || (!me.Admin && !s.hub.IsMember(me.ID, room.ID)) {
		return errorf(codeForbidden, "Only the room's owner and moderators can set its topic")
	}
	room, err = s.store.UpdateRoom(d.RoomID, func(r Room) (Room, error) { r.Topic = d.Topic; return r, nil })
	if err != nil {
		return err
	}
	s.hub.Broadcast(room.ID, marshalFrame("roomUpdated", roomUpdatedData{RoomID: room.ID, Topic: room.Topic, Private: room.Private,
		By: userRef{UserID: strconv.FormatUint(me.ID, 10), Username: me.Name}}), 0)
	return nil
}

// handleInvite adds a user to a room: to a private room only its owner
// and moderators may; to a public one any member.
func (s *server) handleInvite(ctx context.Context, c *client, f Frame) error {
	var d moderationData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	me, room, err := s.actorAndRoom(c, d.RoomID)
	if err != nil {
		return err
	}
	if !s.hub.IsMember(me.ID, room.ID) && !me.Admin {
		return errorf(codeNotMember, "Not in room")
	}
	if room.Private && rank(room, me) < rankModerator {
		return errorf(codeForbidden, "Only the owner and moderators can invite people to a private room")
	}
	if d.UserID == "" && d.Username == "" {
		return errorf(codeBadRequest, "Missing userId")
	}
	target, err := s.findUser(d.UserID, d.Username)
	if err != nil {
		return err
	}
	res, err := s.store.JoinRoom(room.ID, Member{UserID: target.ID, Name: target.Name}, s.now(),
		JoinLimits{MaxRooms: s.cfg.Limits.RoomsPerUser, NoCreate: true, Invited: true})
	switch {
	case errors.Is(err, ErrBanned):
		return errorf(codeBanned, "%s is banned from %s; unban them first", target.Name, room.ID)
	case errors.Is(err, ErrTooManyRooms):
		return errorf(codeLimitReached, "%s is in as many rooms as this server allows", target.Name)
	case err != nil:
		return err
	}
	if !res.NewMember {
		return errorf(codeBadRequest, "%s is already in %s", target.Name, room.ID)
	}
	s.hub.Join(target.ID, room.ID)
	by := userRef{UserID: strconv.FormatUint(me.ID, 10), Username: me.Name}
	online := s.hub.OnlineCounts([]string{room.ID})[room.ID]
	s.hub.SendUser(target.ID, marshalFrame("invited", invitedData{Room: toRoomInfo(res.Room, online), By: by}))
	s.hub.Broadcast(room.ID, marshalFrame("userJoined", roomUserData{RoomID: room.ID, UserID: strconv.FormatUint(target.ID, 10),
		Username: target.Name, InvitedBy: &by}), target.ID)
	s.log.Info("invited", "room", room.ID, "user", target.Name, "by", me.Name)
	return nil
}
