package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"parley/internal/store"
)

// The people directory and group conversations: anyone can find anyone
// with an account by name and write to them, without sharing a room
// first; several people make a group, a private room without a name.

// People pages: how many people one answer lists, unless asked for fewer.
const (
	defaultPeoplePage = 20
	maxPeoplePage     = 50
)

type personInfo struct {
	UserID   string `json:"userId"`
	Username string `json:"username"`
	Online   bool   `json:"online"`
	Guest    bool   `json:"guest,omitempty"`
	Bot      bool   `json:"bot,omitempty"`
}

// handlePeople finds people by a part of their name. Removed and
// suspended accounts are not listed.
func (h *roomHandlers) handlePeople(ctx context.Context, s *session, f Frame) error {
	var d struct {
		Query string `json:"query"`
		After string `json:"after"`
		Limit int    `json:"limit"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if d.Query != "" && !validName(d.Query, maxUsernameLen) {
		return errorf(codeBadRequest, "query is a part of a name: up to %d letters, digits, '_', '-' or '.'", maxUsernameLen)
	}
	if d.After != "" && !validName(d.After, maxUsernameLen) {
		return errorf(codeBadRequest, "after must be a username")
	}
	limit := d.Limit
	switch {
	case limit == 0:
		limit = defaultPeoplePage
	case limit < 0 || limit > maxPeoplePage:
		return errorf(codeBadRequest, "limit must be between 1 and %d", maxPeoplePage)
	}
	people, more, err := h.store.People(d.Query, d.After, limit+1)
	if err != nil {
		return err
	}
	out := make([]personInfo, 0, len(people))
	for _, u := range people {
		if u.ID != s.user.ID {
			out = append(out, personInfo{UserID: formatID(u.ID), Username: u.Name, Online: h.hub.Online(u.ID), Guest: u.Guest, Bot: u.Bot})
		}
	}
	if len(out) > limit {
		out, more = out[:limit], true
	}
	s.send(marshalFrame("people", struct {
		Query   string       `json:"query"`
		Users   []personInfo `json:"users"`
		HasMore bool         `json:"hasMore,omitempty"`
	}{d.Query, out, more}))
	return nil
}

// newGroupID names a group conversation: random, so nobody can guess it,
// in the room id alphabet.
func newGroupID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "g-" + hex.EncodeToString(b)
}

// handleCreateGroup makes a group conversation of the user and the people
// named, and answers joined, as join does.
func (h *roomHandlers) handleCreateGroup(ctx context.Context, s *session, f Frame) error {
	var d struct {
		UserIDs []string `json:"userIds"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if len(d.UserIDs) == 0 || len(d.UserIDs)+1 > h.limits.GroupMembers {
		return errorf(codeBadRequest, "A group has 2 to %d people, you included: name 1 to %d others", h.limits.GroupMembers, h.limits.GroupMembers-1)
	}
	ids := make([]uint64, 0, len(d.UserIDs))
	names := []string{s.user.Name}
	for _, raw := range d.UserIDs {
		u, err := findUser(h.store, raw, "")
		if err != nil {
			return err
		}
		if u.Deleted {
			return errorf(codeUserNotFound, "User not found")
		}
		if u.ID == s.user.ID || slices.Contains(ids, u.ID) {
			return errorf(codeBadRequest, "Name each other person once, and not yourself")
		}
		ids = append(ids, u.ID)
		names = append(names, u.Name)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	topic := strings.Join(names, ", ")
	if utf8.RuneCountInString(topic) > maxTopicChars {
		topic = string([]rune(topic)[:maxTopicChars-1]) + "…"
	}
	res, ok, wait := h.roomsCreated.Reserve(formatID(s.user.ID))
	if !ok {
		h.metrics.rateLimited.WithLabelValues("rooms").Inc()
		return rateLimited(fmt.Sprintf("You have created %d rooms in the last hour; try again later", h.limits.RoomsCreatedPerHour), wait)
	}
	roomID := newGroupID()
	_, err := h.bus.Do(ctx, s.origin(), store.CreateGroup{RoomID: roomID, Topic: topic, CreatorID: s.user.ID, MemberIDs: ids,
		MaxMembers: h.limits.GroupMembers, MaxRooms: h.limits.RoomsPerUser, MaxFromInviter: h.limits.InvitesFromOneUser})
	if err != nil {
		res.Cancel()
	}
	switch {
	case errors.Is(err, store.ErrRoomFull):
		return errorf(codeLimitReached, "A group has at most %d people", h.limits.GroupMembers)
	case errors.Is(err, store.ErrTooManyRooms):
		return errorf(codeLimitReached, "You, or one of them, are in as many rooms as this server allows")
	case errors.Is(err, store.ErrTooManyInvites):
		return errorf(codeLimitReached, "You have added one of them to %d rooms already; they can join others themselves", h.limits.InvitesFromOneUser)
	case errors.Is(err, store.ErrBanned):
		return errorf(codeBanned, "One of them is suspended")
	case errors.Is(err, store.ErrNotFound):
		return errorf(codeUserNotFound, "User not found")
	case err != nil:
		return err
	}
	h.log.Info("group created", "user", s.user.Name, "room", roomID, "members", len(ids)+1)
	return h.sendJoined(s, roomID, true)
}
