package main

import (
	"context"
	"errors"
	"time"

	"parley/internal/store"
)

// moderationHandlers kick, ban, mute, appoint moderators and set topics.
// Who may do what is decided in the store, in log order, against the
// room as it is when the command applies.
type moderationHandlers struct {
	deps
}

// maxTopicChars bounds a room's topic, and a moderation reason.
const maxTopicChars = 250

// modRequest is a moderation frame read and its target found.
type modRequest struct {
	d      moderationData
	target store.User
}

// read decodes a moderation frame and finds its target.
func (h *moderationHandlers) read(f Frame) (modRequest, error) {
	var m modRequest
	if err := decodeData(f, &m.d); err != nil {
		return m, err
	}
	if m.d.UserID == "" && m.d.Username == "" {
		return m, errorf(codeBadRequest, "Missing userId")
	}
	if m.d.Global && f.Type != "ban" && f.Type != "unban" {
		if f.Type == "kick" {
			return m, errorf(codeBadRequest, "kick works per room; use ban with global for the server")
		}
		return m, errorf(codeBadRequest, "%s works per room", f.Type)
	}
	if !m.d.Global {
		if err := checkRoomID(m.d.RoomID); err != nil {
			return m, err
		}
	}
	if err := checkReason(m.d.Reason); err != nil {
		return m, err
	}
	var err error
	m.target, err = findUser(h.store, m.d.UserID, m.d.Username)
	return m, err
}

func (m modRequest) modTarget(s *session) store.ModTarget {
	return store.ModTarget{RoomID: m.d.RoomID, ActorID: s.user.ID, TargetID: m.target.ID}
}

// refusal turns the store's refusal of a moderation command into the
// client's error.
func (m modRequest) refusal(err error, action string) error {
	var forbidden *store.ForbiddenError
	switch {
	case errors.Is(err, store.ErrRoomNotFound):
		return errorf(codeInvalidRoom, "No room %s", m.d.RoomID)
	case errors.Is(err, store.ErrTargetNotMember):
		return errorf(codeNotMember, "%s is not in %s", m.target.Name, m.d.RoomID)
	case errors.Is(err, store.ErrNotBanned):
		return errorf(codeNotFound, "%s is not banned from %s", m.target.Name, m.d.RoomID)
	case errors.Is(err, store.ErrNotFound):
		return errorf(codeUserNotFound, "User not found")
	case errors.As(err, &forbidden):
		switch forbidden.Reason {
		case store.ActOnSelf:
			return errorf(codeForbidden, "You cannot %s yourself", action)
		case store.TargetOutranks:
			return errorf(codeForbidden, "%s has the same role as you or a higher one", m.target.Name)
		case store.OwnerRoleFixed:
			return errorf(codeForbidden, "The owner's role cannot change")
		}
		if forbidden.Need == store.RankOwner {
			return errorf(codeForbidden, "Only the room's owner can do that")
		}
		return errorf(codeForbidden, "Only the room's owner and moderators can do that")
	}
	return err
}

func (h *moderationHandlers) logAction(action string, s *session, m modRequest) {
	h.log.Info("moderation", "action", action, "room", m.d.RoomID, "user", m.target.Name, "by", s.user.Name)
}

// handleKick removes a member from a room; they may join again unless the
// room is private.
func (h *moderationHandlers) handleKick(ctx context.Context, s *session, f Frame) error {
	m, err := h.read(f)
	if err != nil {
		return err
	}
	if _, err := h.bus.Do(ctx, s.origin(), store.Kick{ModTarget: m.modTarget(s), Reason: m.d.Reason}); err != nil {
		return m.refusal(err, "kick")
	}
	h.logAction("kicked", s, m)
	return nil
}

// handleBan bans a user from a room, or from the server (global, admins
// only): a banned user cannot join again, or sign in again.
func (h *moderationHandlers) handleBan(ctx context.Context, s *session, f Frame) error {
	m, err := h.read(f)
	if err != nil {
		return err
	}
	if m.d.Global {
		return h.suspend(ctx, s, m, true)
	}
	if _, err := h.bus.Do(ctx, s.origin(), store.Ban{ModTarget: m.modTarget(s), Reason: m.d.Reason}); err != nil {
		return m.refusal(err, "ban")
	}
	h.logAction("banned", s, m)
	return nil
}

func (h *moderationHandlers) handleUnban(ctx context.Context, s *session, f Frame) error {
	m, err := h.read(f)
	if err != nil {
		return err
	}
	if m.d.Global {
		return h.suspend(ctx, s, m, false)
	}
	if _, err := h.bus.Do(ctx, s.origin(), store.Unban{ModTarget: m.modTarget(s)}); err != nil {
		return m.refusal(err, "unban")
	}
	h.logAction("unbanned", s, m)
	return nil
}

// suspend bans a user from the whole server, or lifts that ban.
func (h *moderationHandlers) suspend(ctx context.Context, s *session, m modRequest, suspend bool) error {
	_, err := h.bus.Do(ctx, s.origin(), store.SuspendUser{ActorID: s.user.ID, TargetID: m.target.ID, Suspend: suspend, Reason: m.d.Reason})
	var forbidden *store.ForbiddenError
	switch {
	case errors.As(err, &forbidden) && forbidden.Need == store.RankAdmin && forbidden.Reason == store.NeedRank:
		return errorf(codeForbidden, "Only a server admin can do that server-wide")
	case errors.As(err, &forbidden):
		return errorf(codeForbidden, "Admins cannot be banned server-wide")
	case err != nil:
		return m.refusal(err, "ban")
	}
	action := "banned server-wide"
	if !suspend {
		action = "unbanned server-wide"
	}
	h.log.Info("moderation", "action", action, "user", m.target.Name, "by", s.user.Name)
	return nil
}

// handleMute keeps a member from sending messages (and typing notices) in
// a room, for minutes or until unmuted.
func (h *moderationHandlers) handleMute(ctx context.Context, s *session, f Frame) error {
	m, err := h.read(f)
	if err != nil {
		return err
	}
	if m.d.Minutes < 0 || m.d.Minutes > 60*24*365 {
		return errorf(codeBadRequest, "minutes must be between 0 (until unmuted) and a year")
	}
	var until time.Time
	if m.d.Minutes > 0 {
		until = h.now().Add(time.Duration(m.d.Minutes) * time.Minute).UTC()
	}
	if _, err := h.bus.Do(ctx, s.origin(), store.Mute{ModTarget: m.modTarget(s), Until: until, Reason: m.d.Reason}); err != nil {
		return m.refusal(err, "mute")
	}
	h.logAction("muted", s, m)
	return nil
}

func (h *moderationHandlers) handleUnmute(ctx context.Context, s *session, f Frame) error {
	m, err := h.read(f)
	if err != nil {
		return err
	}
	if _, err := h.bus.Do(ctx, s.origin(), store.Unmute{ModTarget: m.modTarget(s)}); err != nil {
		return m.refusal(err, "unmute")
	}
	h.logAction("unmuted", s, m)
	return nil
}

// handleSetRole lets a room's owner (or an admin) appoint and dismiss
// moderators.
func (h *moderationHandlers) handleSetRole(ctx context.Context, s *session, f Frame) error {
	m, err := h.read(f)
	if err != nil {
		return err
	}
	if m.d.Role != "moderator" && m.d.Role != "member" {
		return errorf(codeBadRequest, "role must be moderator or member")
	}
	if _, err := h.bus.Do(ctx, s.origin(), store.SetRole{ModTarget: m.modTarget(s), Role: m.d.Role}); err != nil {
		return m.refusal(err, "setRole")
	}
	h.logAction("role set to "+m.d.Role, s, m)
	return nil
}

// handleSetTopic changes a room's topic (owner and moderators).
func (h *moderationHandlers) handleSetTopic(ctx context.Context, s *session, f Frame) error {
	var d topicData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkTopic(d.Topic); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	_, err := h.bus.Do(ctx, s.origin(), store.SetTopic{RoomID: d.RoomID, ActorID: s.user.ID, Topic: d.Topic})
	var forbidden *store.ForbiddenError
	switch {
	case errors.Is(err, store.ErrRoomNotFound):
		return errorf(codeInvalidRoom, "No room %s", d.RoomID)
	case errors.As(err, &forbidden):
		return errorf(codeForbidden, "Only the room's owner and moderators can set its topic")
	}
	return err
}
