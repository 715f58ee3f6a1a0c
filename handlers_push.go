package main

import (
	"context"
	"errors"

	"parley/internal/store"
)

// pushHandlers take devices' Web Push subscriptions and each member's
// notification level per room.
type pushHandlers struct {
	deps
	push *pusher // nil when push is off
}

type pushSubscribeData struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// handlePushSubscribe stores this device's subscription, tied to the
// connection's sign-in token: signing out on the device ends it.
func (h *pushHandlers) handlePushSubscribe(ctx context.Context, s *session, f Frame) error {
	if h.push == nil {
		return errorf(codeForbidden, "Push notifications are off on this server")
	}
	if s.user.Guest || s.user.Bot {
		return errorf(codeForbidden, "Guests and bots get no push notifications")
	}
	var d pushSubscribeData
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkSubscription(d.Endpoint, d.Keys.P256dh, d.Keys.Auth, h.push.local); err != nil {
		return err
	}
	_, err := h.bus.Do(ctx, s.origin(), store.AddPushSubscription{UserID: s.user.ID, TokenHash: s.token, Endpoint: d.Endpoint,
		P256dh: d.Keys.P256dh, Auth: d.Keys.Auth, Max: maxPushSubscriptions})
	if err != nil {
		return err
	}
	h.log.Info("push subscription added", "user", s.user.Name, "endpoint", endpointHost(d.Endpoint))
	s.send(marshalFrame("pushSubscribed", struct {
		Endpoint string `json:"endpoint"`
	}{d.Endpoint}))
	return nil
}

func (h *pushHandlers) handlePushUnsubscribe(ctx context.Context, s *session, f Frame) error {
	var d struct {
		Endpoint string `json:"endpoint"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if d.Endpoint == "" || len(d.Endpoint) > 2048 {
		return errorf(codeBadRequest, "Missing endpoint")
	}
	_, err := h.bus.Do(ctx, s.origin(), store.RemovePushSubscription{UserID: s.user.ID, Endpoint: d.Endpoint})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.send(marshalFrame("pushUnsubscribed", struct {
		Endpoint string `json:"endpoint"`
	}{d.Endpoint}))
	return nil
}

// handleSetNotify sets what of a room the user is notified of when away.
func (h *pushHandlers) handleSetNotify(ctx context.Context, s *session, f Frame) error {
	var d struct {
		RoomID string `json:"roomId"`
		Level  string `json:"level"`
	}
	if err := decodeData(f, &d); err != nil {
		return err
	}
	if err := checkRoomID(d.RoomID); err != nil {
		return err
	}
	switch d.Level {
	case store.NotifyAll, store.NotifyMentions, store.NotifyNothing:
	default:
		return errorf(codeBadRequest, "level is all, mentions or nothing")
	}
	_, err := h.bus.Do(ctx, s.origin(), store.SetNotifyLevel{UserID: s.user.ID, RoomID: d.RoomID, Level: d.Level})
	if errors.Is(err, store.ErrNotMember) {
		return errorf(codeNotMember, "Not in room")
	} else if err != nil {
		return err
	}
	s.send(marshalFrame("notifyUpdated", struct {
		RoomID string `json:"roomId"`
		Level  string `json:"level"`
	}{d.RoomID, d.Level}))
	return nil
}
