package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"parley/internal/auth"
	"parley/internal/store"
)

// roomHandlers join, leave, list and invite to rooms.
type roomHandlers struct {
	deps
	limits       LimitsConfig
	onJoin       int           // history.on_join
	roomsCreated *auth.Limiter // new rooms per user id
}

func (h *roomHandlers) handleJoin(ctx context.Context, s *session, f Frame) error {
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
	// Creating a room takes one of the user's hourly allowance before the
	// join; a join that created nothing gives it back.
	res, mayCreate, wait := h.roomsCreated.Reserve(formatID(s.user.ID))
	out, err := h.bus.Do(ctx, s.origin(), store.JoinRoom{RoomID: d.RoomID, UserID: s.user.ID, MaxRooms: h.limits.RoomsPerUser,
		AllowCreate: mayCreate, Private: d.Private, Topic: d.Topic})
	if !out.Created {
		res.Cancel()
	}
	switch {
	case errors.Is(err, store.ErrTooManyRooms):
		return errorf(codeLimitReached, "You are a member of %d rooms, the most this server allows; leave one first", h.limits.RoomsPerUser)
	case errors.Is(err, store.ErrCreateNotAllowed):
		h.metrics.rateLimited.WithLabelValues("rooms").Inc()
		return rateLimited(fmt.Sprintf("You have created %d rooms in the last hour; join an existing room or try again later",
			h.limits.RoomsCreatedPerHour), wait)
	case errors.Is(err, store.ErrBanned):
		return errorf(codeBanned, "You are banned from %s", d.RoomID)
	case errors.Is(err, store.ErrPrivateRoom):
		return errorf(codeForbidden, "%s is private; a moderator has to invite you", d.RoomID)
	case errors.Is(err, store.ErrRoomFull):
		return errorf(codeLimitReached, "%s has as many members as it may", d.RoomID)
	case err != nil:
		return err
	}
	if out.NewMember {
		h.log.Info("joined room", "user", s.user.Name, "room", d.RoomID, "created", out.Created, "private", out.Room.Private)
	}
	return h.sendJoined(s, d.RoomID, out.Created)
}

// sendJoined answers a join with the room, its recent history, its
// members and the user's place in it, and subscribes the connection to
// the room right after that answer, in step with the events (see
// Hub.Subscribe).
func (h *roomHandlers) sendJoined(s *session, roomID string, created bool) error {
	for range signInRetries {
		v, err := h.store.JoinView(roomID, s.user.ID, h.onJoin)
		if err != nil {
			return err
		}
		if !v.Member {
			return errorf(codeNotMember, "You are no longer in %s", roomID)
		}
		j := joinedData{RoomID: roomID, Created: created, Topic: v.Room.Topic, Private: v.Room.Private,
			Role: v.Room.Role(s.user.ID), History: toMessageFrames(v.History.Messages), HasMore: v.History.HasMore,
			Events:  toRoomEvents(v.History.Events, v.History.Messages),
			Trimmed: v.History.Trimmed, Users: h.memberInfos(v), Group: v.Room.Group, Notify: v.Notify}
		if v.Read.LastRead > 0 {
			j.LastRead = formatMessageID(v.Read.LastRead)
		}
		if h.hub.Subscribe(s.conn, roomID, marshalFrame("joined", j), v.Seq) {
			return nil
		}
	}
	return &protoError{Code: codeRateLimited, Message: "The server is busy; try again shortly", RetryAfter: 1}
}

// memberInfos describes a room's members for joined: presence, role,
// mute, and whether they are server admins.
func (h *roomHandlers) memberInfos(v store.JoinView) []memberInfo {
	now := h.now()
	out := make([]memberInfo, len(v.Members))
	for i, m := range v.Members {
		until, muted := v.Room.MuteAt(m.UserID, now)
		out[i] = memberInfo{UserID: formatID(m.UserID), Username: m.Name, Online: h.hub.Online(m.UserID),
			Role: v.Room.Role(m.UserID), Muted: muted, Admin: v.Admins[m.UserID], Guest: v.Kinds.Guests[m.UserID], Bot: v.Kinds.Bots[m.UserID]}
		if muted && !until.IsZero() {
			out[i].MutedUntil = formatTime(until)
		}
	}
	slices.SortFunc(out, func(x, y memberInfo) int { return strings.Compare(x.Username, y.Username) })
	return out
}

func (h *roomHandlers) handleLeave(ctx context.Context, s *session, f Frame) error {
	var d roomData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	_, err := h.bus.Do(ctx, s.origin(), store.LeaveRoom{RoomID: d.RoomID, UserID: s.user.ID})
	if errors.Is(err, store.ErrNotMember) {
		return errorf(codeNotMember, "Not in room")
	} else if err != nil {
		return err
	}
	h.log.Info("left room", "user", s.user.Name, "room", d.RoomID)
	return nil
}

// Room list pages: how many rooms one rooms answer lists, unless the
// client asks for fewer. 200 rooms with topics of 250 characters stay
// under half a megabyte.
const (
	defaultRoomsPage = 100
	maxRoomsPage     = 200
)

// handleRooms lists, a page at a time in room id order, the public rooms
// and the private ones the user belongs to.
func (h *roomHandlers) handleRooms(ctx context.Context, s *session, f Frame) error {
	var d struct {
		After string `json:"after"`
		Limit int    `json:"limit"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	limit := d.Limit
	switch {
	case limit == 0:
		limit = defaultRoomsPage
	case limit < 0 || limit > maxRoomsPage:
		return errorf(codeBadRequest, "limit must be between 1 and %d", maxRoomsPage)
	}
	if d.After != "" {
		if err := checkRoomID(d.After); err != nil {
			return errorf(codeBadRequest, "after must be a room id")
		}
	}
	rooms, more, err := h.store.RoomsPage(d.After, limit, s.user.ID)
	if err != nil {
		return err
	}
	ids := make([]string, len(rooms))
	for i, r := range rooms {
		ids[i] = r.ID
	}
	counts := h.hub.OnlineCounts(ids)
	out := make([]roomInfo, len(rooms))
	for i, r := range rooms {
		out[i] = toRoomInfo(r, counts[r.ID])
	}
	s.send(marshalFrame("rooms", roomsData{Rooms: out, HasMore: more}))
	return nil
}

// handleInvite adds a user to a room: to a private room only its owner
// and moderators may; to a public one any member.
func (h *roomHandlers) handleInvite(ctx context.Context, s *session, f Frame) error {
	var d moderationData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	if d.UserID == "" && d.Username == "" {
		return errorf(codeBadRequest, "Missing userId")
	}
	target, err := findUser(h.store, d.UserID, d.Username)
	if err != nil {
		return err
	}
	_, err = h.bus.Do(ctx, s.origin(), store.Invite{RoomID: d.RoomID, ActorID: s.user.ID, TargetID: target.ID,
		MaxRooms: h.limits.RoomsPerUser, MaxFromInviter: h.limits.InvitesFromOneUser})
	var forbidden *store.ForbiddenError
	switch {
	case errors.Is(err, store.ErrRoomNotFound):
		return errorf(codeInvalidRoom, "No room %s", d.RoomID)
	case errors.Is(err, store.ErrNotMember):
		return errorf(codeNotMember, "Not in room")
	case errors.As(err, &forbidden):
		return errorf(codeForbidden, "Only the owner and moderators can invite people to a private room")
	case errors.Is(err, store.ErrBanned):
		return errorf(codeBanned, "%s is banned from %s; unban them first", target.Name, d.RoomID)
	case errors.Is(err, store.ErrTooManyRooms):
		return errorf(codeLimitReached, "%s has been added to as many rooms by others as this server allows; they can join it themselves", target.Name)
	case errors.Is(err, store.ErrTooManyInvites):
		return errorf(codeLimitReached, "You have added %s to %d rooms already; they can join others themselves", target.Name, h.limits.InvitesFromOneUser)
	case errors.Is(err, store.ErrAlreadyMember):
		return errorf(codeBadRequest, "%s is already in %s", target.Name, d.RoomID)
	case errors.Is(err, store.ErrRoomFull):
		return errorf(codeLimitReached, "%s has as many members as it may", d.RoomID)
	case errors.Is(err, store.ErrNotFound):
		return errorf(codeUserNotFound, "User not found")
	case err != nil:
		return err
	}
	h.log.Info("invited", "room", d.RoomID, "user", target.Name, "by", s.user.Name)
	return nil
}

// findUser resolves a user by id or, failing that, by name. Deleted
// accounts are found too: their messages remain.
func findUser(st *store.Store, id, name string) (store.User, error) {
	var (
		u   store.User
		err error
	)
	if id != "" {
		n, perr := parseUserID(id)
		if perr != nil {
			return store.User{}, errorf(codeUserNotFound, "User not found")
		}
		u, err = st.UserByID(n)
	} else {
		u, err = st.UserByName(name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errorf(codeUserNotFound, "User not found")
	}
	return u, err
}
