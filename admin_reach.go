package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"parley/internal/auth"
	"parley/internal/store"
)

// The admin operations behind parley invite, parley hook and parley bot,
// on an open store and across the admin socket.

// madeSecret is a link or token made by an admin operation: shown once.
type madeSecret struct {
	ID        string    `json:"id,omitempty"`
	Name      string    `json:"name,omitempty"`
	RoomID    string    `json:"roomId,omitempty"`
	URL       string    `json:"url,omitempty"`
	Token     string    `json:"token,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

func (a *admin) CreateInvite(ctx context.Context, roomID string, uses int, ttl time.Duration) (madeSecret, error) {
	cmd, token, perr := newInvite(a.bus.now(), 0, roomID, uses, ttl)
	if perr != nil {
		return madeSecret{}, &adminError{http.StatusBadRequest, perr.Message}
	}
	out, err := a.bus.Do(ctx, "", cmd)
	if errors.Is(err, store.ErrRoomNotFound) {
		return madeSecret{}, &adminError{http.StatusNotFound, fmt.Sprintf("no room %q", roomID)}
	} else if err != nil {
		return madeSecret{}, err
	}
	return madeSecret{ID: out.Invite.ID, RoomID: roomID, URL: inviteURL(a.publicURL, token), ExpiresAt: out.Invite.ExpiresAt}, nil
}

func (a *admin) CreateHook(ctx context.Context, roomID, name string) (madeSecret, error) {
	if perr := checkRoomID(roomID); perr != nil {
		return madeSecret{}, &adminError{http.StatusBadRequest, perr.Message}
	}
	if name == "" {
		name = newHookName()
	}
	if perr := checkUsername(name); perr != nil {
		return madeSecret{}, &adminError{http.StatusBadRequest, perr.Message}
	}
	token, hash := auth.NewToken()
	out, err := a.bus.Do(ctx, "", store.CreateHook{Hash: hash, RoomID: roomID, BotName: name})
	switch {
	case errors.Is(err, store.ErrRoomNotFound):
		return madeSecret{}, &adminError{http.StatusNotFound, fmt.Sprintf("no room %q", roomID)}
	case errors.Is(err, store.ErrUsernameTaken):
		return madeSecret{}, &adminError{http.StatusConflict, fmt.Sprintf("the name %q is taken; give the hook another with -name", name)}
	case err != nil:
		return madeSecret{}, err
	}
	return madeSecret{ID: out.Hook.ID, Name: name, RoomID: roomID, URL: hookURL(a.publicURL, token)}, nil
}

func (a *admin) DeleteHook(ctx context.Context, id string) error {
	_, err := a.bus.Do(ctx, "", store.DeleteHook{ID: id})
	if errors.Is(err, store.ErrNotFound) {
		return &adminError{http.StatusNotFound, fmt.Sprintf("no hook %q", id)}
	}
	return err
}

func (a *admin) Hooks(context.Context) ([]store.Hook, error) { return a.store.Hooks("") }

func (a *admin) CreateBot(ctx context.Context, name string) (madeSecret, error) {
	if perr := checkUsername(name); perr != nil {
		return madeSecret{}, &adminError{http.StatusBadRequest, perr.Message}
	}
	token, hash := auth.NewToken()
	_, err := a.bus.Do(ctx, "", store.CreateBot{Name: name, TokenHash: hash})
	if errors.Is(err, store.ErrUsernameTaken) {
		return madeSecret{}, &adminError{http.StatusConflict, fmt.Sprintf("the name %q is taken", name)}
	}
	return madeSecret{Name: name, Token: token}, err
}

// adminReachRoutes adds the routes of these operations to the admin socket.
func adminReachRoutes(mux *http.ServeMux, a adminAPI, log *slog.Logger) {
	mux.HandleFunc("POST /invites", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			RoomID string
			Uses   int
			TTL    time.Duration
		}
		if readAdmin(w, r, &req) {
			out, err := a.CreateInvite(r.Context(), req.RoomID, req.Uses, req.TTL)
			writeAdmin(w, log, out, err)
		}
	})
	mux.HandleFunc("POST /hooks", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ RoomID, Name string }
		if readAdmin(w, r, &req) {
			out, err := a.CreateHook(r.Context(), req.RoomID, req.Name)
			writeAdmin(w, log, out, err)
		}
	})
	mux.HandleFunc("POST /hook/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ ID string }
		if readAdmin(w, r, &req) {
			writeAdmin(w, log, nil, a.DeleteHook(r.Context(), req.ID))
		}
	})
	mux.HandleFunc("GET /hooks", func(w http.ResponseWriter, r *http.Request) {
		hooks, err := a.Hooks(r.Context())
		writeAdmin(w, log, hooks, err)
	})
	mux.HandleFunc("POST /bots", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name string }
		if readAdmin(w, r, &req) {
			out, err := a.CreateBot(r.Context(), req.Name)
			writeAdmin(w, log, out, err)
		}
	})
}

func (c *socketAdmin) CreateInvite(ctx context.Context, roomID string, uses int, ttl time.Duration) (madeSecret, error) {
	var out madeSecret
	err := c.do(ctx, http.MethodPost, "/invites", map[string]any{"roomId": roomID, "uses": uses, "ttl": ttl}, &out)
	return out, err
}

func (c *socketAdmin) CreateHook(ctx context.Context, roomID, name string) (madeSecret, error) {
	var out madeSecret
	err := c.do(ctx, http.MethodPost, "/hooks", map[string]string{"roomId": roomID, "name": name}, &out)
	return out, err
}

func (c *socketAdmin) DeleteHook(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/hook/remove", map[string]string{"id": id}, nil)
}

func (c *socketAdmin) Hooks(ctx context.Context) ([]store.Hook, error) {
	var out []store.Hook
	err := c.do(ctx, http.MethodGet, "/hooks", nil, &out)
	return out, err
}

func (c *socketAdmin) CreateBot(ctx context.Context, name string) (madeSecret, error) {
	var out madeSecret
	err := c.do(ctx, http.MethodPost, "/bots", map[string]string{"name": name}, &out)
	return out, err
}
