package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"parley/internal/auth"
	"parley/internal/store"
)

// Invite links: an admin, or a room's owner for their room, makes a link
// that lets a new person register (auth.registration: invite) and lands
// them in the room. The link's secret is shown once, to its creator;
// the server keeps its hash.

// inviteHandlers make, list and revoke invite links.
type inviteHandlers struct {
	deps
	links linkBase
	ttl   time.Duration // auth.invite_ttl
}

// maxInviteTTL bounds how long a link may last: a link is a key to the
// server, and an old one lying in someone's chat history should not work.
const maxInviteTTL = 90 * 24 * time.Hour

// maxInviteUses bounds how many people one link may sign up.
const maxInviteUses = 1000

// maxInviteLinks bounds the links one person may have at once: each is a
// record kept until it expires.
const maxInviteLinks = 50

type createInviteData struct {
	RoomID       string  `json:"roomId"`
	MaxUses      int     `json:"maxUses"`
	ExpiresHours float64 `json:"expiresInHours"`
}

type inviteInfo struct {
	ID        string `json:"id"`
	RoomID    string `json:"roomId,omitempty"`
	MaxUses   int    `json:"maxUses,omitempty"`
	Uses      int    `json:"uses"`
	CreatedAt string `json:"createdAt"`
	ExpiresAt string `json:"expiresAt"`
	URL       string `json:"url,omitempty"` // only in inviteCreated: the secret is shown once
}

func toInviteInfo(l store.InviteLink) inviteInfo {
	return inviteInfo{ID: l.ID, RoomID: l.RoomID, MaxUses: l.MaxUses, Uses: l.Uses, CreatedAt: formatTime(l.CreatedAt), ExpiresAt: formatTime(l.ExpiresAt)}
}

// newInvite checks an invite's terms and returns its command and secret.
func newInvite(now time.Time, actor uint64, roomID string, uses int, ttl time.Duration) (store.CreateInviteLink, string, *protoError) {
	if roomID != "" {
		if err := checkRoomID(roomID); err != nil {
			return store.CreateInviteLink{}, "", err
		}
	}
	if uses < 0 || uses > maxInviteUses {
		return store.CreateInviteLink{}, "", errorf(codeBadRequest, "maxUses must be between 0 (no limit) and %d", maxInviteUses)
	}
	if ttl < time.Minute || ttl > maxInviteTTL {
		return store.CreateInviteLink{}, "", errorf(codeBadRequest, "An invite link lasts between a minute and %d days", int(maxInviteTTL.Hours()/24))
	}
	token, hash := auth.NewToken()
	return store.CreateInviteLink{Hash: hash, ActorID: actor, RoomID: roomID, ExpiresAt: now.Add(ttl), MaxUses: uses,
		MaxLinks: maxInviteLinks}, token, nil
}

// inviteURL is where an invite link points: the page, which shows
// sign-up with the secret in the fragment (never sent to a server, nor in
// a Referer).
func inviteURL(base, token string) string { return strings.TrimRight(base, "/") + "/#invite=" + token }

func (h *inviteHandlers) handleCreateInvite(ctx context.Context, s *session, f Frame) error {
	var d createInviteData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	ttl := h.ttl
	if d.ExpiresHours != 0 {
		ttl = time.Duration(d.ExpiresHours * float64(time.Hour))
	}
	cmd, token, perr := newInvite(h.now(), s.user.ID, d.RoomID, d.MaxUses, ttl)
	if perr != nil {
		return perr
	}
	out, err := h.bus.Do(ctx, s.origin(), cmd)
	if err := inviteError(err, d.RoomID); err != nil {
		return err
	}
	info := toInviteInfo(out.Invite)
	info.URL = inviteURL(h.links.forConn(s.conn), token)
	h.log.Info("invite link created", "user", s.user.Name, "room", d.RoomID, "id", info.ID, "uses", d.MaxUses, "expires", info.ExpiresAt)
	s.send(marshalFrame("inviteCreated", info))
	return nil
}

func inviteError(err error, roomID string) error {
	var forbidden *store.ForbiddenError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrRoomNotFound):
		return errorf(codeInvalidRoom, "No room %s", roomID)
	case errors.As(err, &forbidden) && roomID == "":
		return errorf(codeForbidden, "Only an admin can make an invite link without a room; a room's owner can make one for their room")
	case errors.As(err, &forbidden):
		return errorf(codeForbidden, "Only the room's owner and admins can make invite links")
	case errors.Is(err, store.ErrNotFound):
		return errorf(codeNotFound, "No such invite link")
	case errors.Is(err, store.ErrTooMany):
		return errorf(codeLimitReached, "You have %d invite links that still work; revoke some first", maxInviteLinks)
	}
	return err
}

// handleInvites lists the user's invite links still usable; an admin's
// lists everyone's.
func (h *inviteHandlers) handleInvites(ctx context.Context, s *session, f Frame) error {
	me, err := h.store.UserByID(s.user.ID)
	if err != nil {
		return err
	}
	by := me.ID
	if me.Admin {
		by = 0
	}
	links, err := h.store.InviteLinks(by)
	if err != nil {
		return err
	}
	out := make([]inviteInfo, 0, len(links))
	now := h.now()
	for _, l := range links {
		if now.Before(l.ExpiresAt) {
			out = append(out, toInviteInfo(l))
		}
	}
	s.send(marshalFrame("invites", struct {
		Invites []inviteInfo `json:"invites"`
	}{out}))
	return nil
}

func (h *inviteHandlers) handleRevokeInvite(ctx context.Context, s *session, f Frame) error {
	var d struct {
		ID string `json:"id"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if d.ID == "" || len(d.ID) > 64 {
		return errorf(codeBadRequest, "Missing id")
	}
	out, err := h.bus.Do(ctx, s.origin(), store.RevokeInviteLink{ID: d.ID, ActorID: s.user.ID})
	var forbidden *store.ForbiddenError
	if errors.As(err, &forbidden) {
		return errorf(codeForbidden, "Only the link's creator and admins can revoke it")
	}
	if err := inviteError(err, ""); err != nil {
		return err
	}
	s.send(marshalFrame("inviteRevoked", struct {
		ID string `json:"id"`
	}{out.Invite.ID}))
	return nil
}
