package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"

	"parley/internal/auth"
	"parley/internal/store"
)

// hookHandlers make, list and revoke a room's incoming webhooks, and
// let admins make bot accounts.
type hookHandlers struct {
	deps
	links   linkBase
	enabled bool // hooks.enabled
}

type hookInfo struct {
	ID        string   `json:"id"`
	RoomID    string   `json:"roomId"`
	Name      string   `json:"name"` // its bot's
	BotID     string   `json:"botId"`
	CreatedAt string   `json:"createdAt"`
	CreatedBy *userRef `json:"createdBy,omitempty"`
	URL       string   `json:"url,omitempty"` // only in hookCreated: the secret is shown once
}

func (h *hookHandlers) info(k store.Hook) hookInfo {
	out := hookInfo{ID: k.ID, RoomID: k.RoomID, Name: k.BotName, BotID: formatID(k.BotID), CreatedAt: formatTime(k.CreatedAt)}
	if k.CreatedBy != 0 {
		if u, err := h.store.UserByID(k.CreatedBy); err == nil {
			out.CreatedBy = &userRef{UserID: formatID(u.ID), Username: u.Name}
		}
	}
	return out
}

// maxHooksPerRoom bounds a room's webhooks: each is a bot account.
const maxHooksPerRoom = 10

// hookURL is a webhook's address.
func hookURL(base, token string) string { return strings.TrimRight(base, "/") + "/hooks/" + token }

// newHookName names a webhook's bot when its creator did not.
func newHookName() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "hook-" + hex.EncodeToString(b)
}

func hookError(err error, roomID, name string) error {
	var forbidden *store.ForbiddenError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrRoomNotFound):
		return errorf(codeInvalidRoom, "No room %s", roomID)
	case errors.As(err, &forbidden):
		return errorf(codeForbidden, "Only the room's owner and admins can manage its webhooks")
	case errors.Is(err, store.ErrUsernameTaken):
		return errorf(codeUsernameTaken, "The name %s is taken; a webhook's bot needs a name of its own", name)
	case errors.Is(err, store.ErrRoomFull):
		return errorf(codeLimitReached, "%s has as many members as it may", roomID)
	case errors.Is(err, store.ErrNotFound):
		return errorf(codeNotFound, "No such webhook")
	case errors.Is(err, store.ErrTooMany):
		return errorf(codeLimitReached, "%s has %d webhooks, the most a room may have; revoke one first", roomID, maxHooksPerRoom)
	}
	return err
}

func (h *hookHandlers) handleCreateHook(ctx context.Context, s *session, f Frame) error {
	if !h.enabled {
		return errorf(codeForbidden, "Incoming webhooks are off on this server")
	}
	var d struct {
		RoomID string `json:"roomId"`
		Name   string `json:"name"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	if d.Name == "" {
		d.Name = newHookName()
	}
	if err := checkUsername(d.Name); err != nil {
		return err
	}
	token, hash := auth.NewToken()
	out, err := h.bus.Do(ctx, s.origin(), store.CreateHook{Hash: hash, RoomID: d.RoomID, ActorID: s.user.ID, BotName: d.Name,
		MaxHooks: maxHooksPerRoom})
	if err := hookError(err, d.RoomID, d.Name); err != nil {
		return err
	}
	info := h.info(out.Hook)
	info.URL = hookURL(h.links.forConn(s.conn), token)
	h.log.Info("webhook created", "user", s.user.Name, "room", d.RoomID, "hook", info.ID, "bot", d.Name)
	s.send(marshalFrame("hookCreated", info))
	return nil
}

// mayManage reports whether the user may see and manage a room's hooks.
func (h *hookHandlers) mayManage(userID uint64, roomID string) error {
	me, err := h.store.UserByID(userID)
	if err != nil {
		return err
	}
	room, err := h.store.Room(roomID)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(codeInvalidRoom, "No room %s", roomID)
	} else if err != nil {
		return err
	}
	if me.Admin {
		return nil
	}
	if member, _ := h.store.IsMember(roomID, userID); !member || room.Rank(me) < store.RankOwner {
		return errorf(codeForbidden, "Only the room's owner and admins can manage its webhooks")
	}
	return nil
}

func (h *hookHandlers) handleHooks(ctx context.Context, s *session, f Frame) error {
	var d roomData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	if err := h.mayManage(s.user.ID, d.RoomID); err != nil {
		return err
	}
	list, err := h.store.Hooks(d.RoomID)
	if err != nil {
		return err
	}
	out := make([]hookInfo, len(list))
	for i, k := range list {
		out[i] = h.info(k)
	}
	s.send(marshalFrame("hooks", struct {
		RoomID string     `json:"roomId"`
		Hooks  []hookInfo `json:"hooks"`
	}{d.RoomID, out}))
	return nil
}

func (h *hookHandlers) handleDeleteHook(ctx context.Context, s *session, f Frame) error {
	var d struct {
		ID string `json:"id"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if d.ID == "" || len(d.ID) > 64 {
		return errorf(codeBadRequest, "Missing id")
	}
	out, err := h.bus.Do(ctx, s.origin(), store.DeleteHook{ID: d.ID, ActorID: s.user.ID})
	if err := hookError(err, out.Hook.RoomID, ""); err != nil {
		return err
	}
	h.log.Info("webhook revoked", "user", s.user.Name, "room", out.Hook.RoomID, "hook", d.ID)
	s.send(marshalFrame("hookDeleted", struct {
		ID     string `json:"id"`
		RoomID string `json:"roomId"`
	}{out.Hook.ID, out.Hook.RoomID}))
	return nil
}

// handleCreateBot makes a bot account (admins only) and shows its API
// token once: the bot signs in with auth {token}.
func (h *hookHandlers) handleCreateBot(ctx context.Context, s *session, f Frame) error {
	var d struct {
		Username string `json:"username"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkUsername(d.Username); err != nil {
		return err
	}
	token, hash := auth.NewToken()
	out, err := h.bus.Do(ctx, s.origin(), store.CreateBot{Name: d.Username, TokenHash: hash, ActorID: s.user.ID})
	var forbidden *store.ForbiddenError
	switch {
	case errors.As(err, &forbidden):
		return errorf(codeForbidden, "Only an admin can make bot accounts")
	case errors.Is(err, store.ErrUsernameTaken):
		return errorf(codeUsernameTaken, "The name %s is taken", d.Username)
	case err != nil:
		return err
	}
	h.log.Info("bot created", "admin", s.user.Name, "bot", out.User.Name)
	s.send(marshalFrame("botCreated", struct {
		UserID   string `json:"userId"`
		Username string `json:"username"`
		Token    string `json:"token"`
	}{formatID(out.User.ID), out.User.Name, token}))
	return nil
}
