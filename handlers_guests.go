package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"parley/internal/auth"
	"parley/internal/store"
)

// Guests (auth.guests): the tutorial's client signs in with a name alone,
// auth {username}. A guest is an account of its own while connected, with
// the limits anyone has; a registered name is refused, and so is a name
// another guest holds. When the guest's last connection closes, EndGuest
// frees the name.

// signInGuest signs a connection in as a guest named name.
func (h *authHandlers) signInGuest(ctx context.Context, s *session, name string) error {
	if err := checkUsername(name); err != nil {
		return err
	}
	res, ok, wait := h.guestsByIP.Reserve(s.conn.ip)
	if !ok {
		h.metrics.rateLimited.WithLabelValues("guests").Inc()
		return rateLimited("Too many guests from your address; try again later", wait)
	}
	token, hash := auth.NewToken()
	out, err := h.bus.Do(ctx, s.origin(), store.CreateGuest{Name: name,
		Token: store.TokenGrant{Hash: hash, ExpiresAt: h.now().Add(h.cfg.SessionTTL)}})
	switch {
	case errors.Is(err, store.ErrUsernameTaken):
		res.Cancel()
		return errorf(codeAuthFailed, "%s is a registered account: sign in with its password, or choose another name", name)
	case errors.Is(err, store.ErrGuestNameInUse):
		res.Cancel()
		return errorf(codeUsernameTaken, "A guest is using the name %s now; choose another", name)
	case err != nil:
		res.Cancel()
		return err
	}
	if err := h.attach(s, hash, token, authResult{}); err != nil {
		// Nobody will close a connection for this guest: end it now (or,
		// if the log does not take it in time, the janitor's sweep will).
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		_ = h.bus.Send(ctx, "", store.EndGuest{UserID: out.User.ID}, func(store.Applied) {})
		cancel()
		return err
	}
	return nil
}

// guestReaper ends guests who are gone: at once when a guest's last
// connection closes, and, for guests whose connections a crash or
// another node took away, in the janitor's sweep.
type guestReaper struct {
	store *store.Store
	bus   *bus
	hub   *Hub
	now   func() time.Time
	log   *slog.Logger
}

// closed ends the guest of a connection that closed, if it was their last.
func (g *guestReaper) closed(s *session) {
	if !s.user.Guest || g.hub.Online(s.user.ID) {
		return
	}
	id, name := s.user.ID, s.user.Name
	// Bounded: this runs as the connection closes, and a shutdown waits
	// for that; a guest the log did not take in time is the sweep's.
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	err := g.bus.Send(ctx, "", store.EndGuest{UserID: id}, func(ap store.Applied) {
		if ap.Outcome.Err == nil {
			g.log.Info("guest left; the name is free", "user", name)
		}
	})
	if err != nil {
		g.log.Warn("end guest", "user", name, "err", err)
	}
}

// guestGrace is how long a guest with no connection is left alone by the
// sweep: its sign-in may be on its way to the hub.
const guestGrace = time.Minute

// sweep ends guests with no connection here or on another node.
func (g *guestReaper) sweep(ctx context.Context) {
	ids, err := g.store.Guests()
	if err != nil {
		g.log.Warn("list guests", "err", err)
		return
	}
	for _, id := range ids {
		if g.hub.Online(id) {
			continue
		}
		u, err := g.store.UserByID(id)
		if err != nil || g.now().Sub(u.CreatedAt) < guestGrace {
			continue
		}
		if _, err := g.bus.Do(ctx, "", store.EndGuest{UserID: id}); err == nil {
			g.log.Info("guest gone; the name is free", "user", u.Name)
		}
	}
}
