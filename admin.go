package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"parley/internal/auth"
	"parley/internal/store"
)

// The admin operations behind `parley backup` and `parley user`. They run
// against the store directly when no server holds the database, and
// through the running server's admin socket otherwise: a unix socket next
// to the database, mode 0600, so only the server's own user (and root)
// can reach it.

// adminAPI is what the command-line tools need, whichever way they reach
// the database.
type adminAPI interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
	AddUser(ctx context.Context, name, password string) (store.User, error)
	SetPassword(ctx context.Context, name, password string) error
	RemoveUser(ctx context.Context, name string) error
	Users(ctx context.Context) ([]store.User, error)
	SetAdmin(ctx context.Context, name string, admin bool) error
	ResetLink(ctx context.Context, name string) (string, time.Time, error)
	Unban(ctx context.Context, name string) (bool, error)
	Status(ctx context.Context) (statusReport, error)
	Check(ctx context.Context) ([]store.Problem, error)
	CreateInvite(ctx context.Context, roomID string, uses int, ttl time.Duration) (madeSecret, error)
	CreateHook(ctx context.Context, roomID, name string) (madeSecret, error)
	DeleteHook(ctx context.Context, id string) error
	Hooks(ctx context.Context) ([]store.Hook, error)
	CreateBot(ctx context.Context, name string) (madeSecret, error)
}

// adminError is a refusal worth showing as it is (no such user, a bad
// password); it crosses the socket with its HTTP status.
type adminError struct {
	Status  int
	Message string
}

func (e *adminError) Error() string { return e.Message }

// admin performs the operations on an open store, through its bus: the
// changes are commands like any other, and the running server's events
// sign out whoever they concern.
type admin struct {
	store     *store.Store
	bus       *bus
	hasher    *auth.Hasher
	publicURL string
	resetTTL  time.Duration
}

func (a *admin) Backup(_ context.Context, w io.Writer) (int64, error) { return a.store.Backup(w) }

func (a *admin) user(name string) (store.User, error) {
	u, err := a.store.UserByName(name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Deleted) {
		return store.User{}, &adminError{http.StatusNotFound, fmt.Sprintf("no user %q", name)}
	}
	return u, err
}

// notFound turns the store's "no such user" into the tools' answer.
func notFound(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &adminError{http.StatusNotFound, fmt.Sprintf("no user %q", name)}
	}
	return err
}

func (a *admin) AddUser(ctx context.Context, name, password string) (store.User, error) {
	if err := checkUsername(name); err != nil {
		return store.User{}, &adminError{http.StatusBadRequest, err.Message}
	}
	if err := adminPassword(password); err != nil {
		return store.User{}, err
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return store.User{}, err
	}
	out, err := a.bus.Do(ctx, "", store.CreateUser{Name: name, PasswordHash: hash})
	if errors.Is(err, store.ErrUsernameTaken) {
		return store.User{}, &adminError{http.StatusConflict, fmt.Sprintf("the name %q is taken", name)}
	}
	return out.User, err
}

func (a *admin) SetPassword(ctx context.Context, name, password string) error {
	u, err := a.user(name)
	if err != nil {
		return err
	}
	if err := adminPassword(password); err != nil {
		return err
	}
	hash, err := a.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	_, err = a.bus.Do(ctx, "", store.SetPassword{UserID: u.ID, PasswordHash: hash, Reason: "password changed"})
	return notFound(err, name)
}

func (a *admin) RemoveUser(ctx context.Context, name string) error {
	u, err := a.user(name)
	if err != nil {
		return err
	}
	_, err = a.bus.Do(ctx, "", store.DeleteUser{UserID: u.ID})
	return notFound(err, name)
}

func (a *admin) Users(context.Context) ([]store.User, error) { return a.store.Users() }

func (a *admin) Check(context.Context) ([]store.Problem, error) { return a.store.Check() }

func (a *admin) SetAdmin(ctx context.Context, name string, isAdmin bool) error {
	u, err := a.user(name)
	if err != nil {
		return err
	}
	_, err = a.bus.Do(ctx, "", store.SetAdmin{UserID: u.ID, Admin: isAdmin})
	return notFound(err, name)
}

// Unban lifts a server-wide ban (ban with global: true), so the user may
// sign in again, and reports whether there was one.
func (a *admin) Unban(ctx context.Context, name string) (bool, error) {
	u, err := a.user(name)
	if err != nil || !u.Suspended {
		return false, err
	}
	_, err = a.bus.Do(ctx, "", store.SuspendUser{TargetID: u.ID, Suspend: false})
	return true, notFound(err, name)
}

// ResetLink issues a one-time link that signs the user in and lets them
// set a new password (see issueResetLink).
func (a *admin) ResetLink(ctx context.Context, name string) (string, time.Time, error) {
	u, err := a.user(name)
	if err != nil {
		return "", time.Time{}, err
	}
	link, err := issueResetLink(ctx, a.bus, "", a.publicURL, u.ID, a.resetTTL)
	return link.URL, link.Expires, notFound(err, name)
}

// statusReport is what parley status shows of a database.
type statusReport struct {
	Version string      `json:"version"` // of the parley that answered
	Sizes   store.Sizes `json:"sizes"`
	Users   int         `json:"users"` // accounts not removed
	Rooms   int         `json:"rooms"`
}

func (a *admin) Status(context.Context) (statusReport, error) {
	sizes, err := a.store.Sizes()
	if err != nil {
		return statusReport{}, err
	}
	users, err := a.store.Users()
	if err != nil {
		return statusReport{}, err
	}
	r := statusReport{Version: versionString(), Sizes: sizes, Rooms: a.store.RoomCount()}
	for _, u := range users {
		if !u.Deleted {
			r.Users++
		}
	}
	return r, nil
}

func adminPassword(pw string) error {
	if n := len([]rune(pw)); n < minPasswordLen || len(pw) > maxPasswordBytes {
		return &adminError{http.StatusBadRequest, fmt.Sprintf("a password is %d characters to %d bytes", minPasswordLen, maxPasswordBytes)}
	}
	return nil
}

// adminSocketPath is where a server listens for the admin tools.
func adminSocketPath(dbPath string) string { return dbPath + ".sock" }

// --- the server side of the socket ---

// adminRoutes lists every route of the admin socket.
func adminRoutes(a adminAPI, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		n, err := a.Backup(r.Context(), w)
		if err != nil {
			// Headers are gone; the client sees a short body and its
			// check of the copy fails.
			log.Error("backup over the admin socket failed", "bytes", n, "err", err)
			return
		}
		log.Info("backup written over the admin socket", "bytes", n)
	})
	mux.HandleFunc("GET /check", func(w http.ResponseWriter, r *http.Request) {
		problems, err := a.Check(r.Context())
		writeAdmin(w, log, problems, err)
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		users, err := a.Users(r.Context())
		for i := range users {
			users[i].PasswordHash = "" // the tools never need it
		}
		writeAdmin(w, log, users, err)
	})
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name, Password string }
		if !readAdmin(w, r, &req) {
			return
		}
		u, err := a.AddUser(r.Context(), req.Name, req.Password)
		u.PasswordHash = ""
		writeAdmin(w, log, u, err)
	})
	// The user an operation acts on travels in the body, never in the
	// path: a name like ".." in a path is cleaned away by the router.
	mux.HandleFunc("POST /user/password", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name, Password string }
		if readAdmin(w, r, &req) {
			writeAdmin(w, log, nil, a.SetPassword(r.Context(), req.Name, req.Password))
		}
	})
	mux.HandleFunc("POST /user/admin", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name  string
			Admin bool
		}
		if readAdmin(w, r, &req) {
			writeAdmin(w, log, nil, a.SetAdmin(r.Context(), req.Name, req.Admin))
		}
	})
	mux.HandleFunc("POST /user/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name string }
		if readAdmin(w, r, &req) {
			writeAdmin(w, log, nil, a.RemoveUser(r.Context(), req.Name))
		}
	})
	mux.HandleFunc("POST /user/unban", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name string }
		if readAdmin(w, r, &req) {
			was, err := a.Unban(r.Context(), req.Name)
			writeAdmin(w, log, unbanReply{WasBanned: was}, err)
		}
	})
	mux.HandleFunc("POST /user/reset", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name string }
		if readAdmin(w, r, &req) {
			url, expires, err := a.ResetLink(r.Context(), req.Name)
			writeAdmin(w, log, resetLinkReply{URL: url, ExpiresAt: expires}, err)
		}
	})
	// The routes of earlier versions, which named the user in the path,
	// for a parley user command older than the server it talks to.
	mux.HandleFunc("POST /users/{name}/password", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Password string }
		if readAdmin(w, r, &req) {
			writeAdmin(w, log, nil, a.SetPassword(r.Context(), r.PathValue("name"), req.Password))
		}
	})
	mux.HandleFunc("POST /users/{name}/admin", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Admin bool }
		if readAdmin(w, r, &req) {
			writeAdmin(w, log, nil, a.SetAdmin(r.Context(), r.PathValue("name"), req.Admin))
		}
	})
	mux.HandleFunc("DELETE /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, log, nil, a.RemoveUser(r.Context(), r.PathValue("name")))
	})
	mux.HandleFunc("POST /users/{name}/unban", func(w http.ResponseWriter, r *http.Request) {
		was, err := a.Unban(r.Context(), r.PathValue("name"))
		writeAdmin(w, log, unbanReply{WasBanned: was}, err)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Status(r.Context())
		writeAdmin(w, log, st, err)
	})
	mux.HandleFunc("POST /users/{name}/reset", func(w http.ResponseWriter, r *http.Request) {
		url, expires, err := a.ResetLink(r.Context(), r.PathValue("name"))
		writeAdmin(w, log, resetLinkReply{URL: url, ExpiresAt: expires}, err)
	})
	adminReachRoutes(mux, a, log)
	return mux
}

type unbanReply struct {
	WasBanned bool `json:"wasBanned"`
}

type resetLinkReply struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func readAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(v); err != nil {
		http.Error(w, `{"error":"bad request body"}`, http.StatusBadRequest)
		return false
	}
	return true
}

func writeAdmin(w http.ResponseWriter, log *slog.Logger, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status, msg := http.StatusInternalServerError, "internal error; see the server's log"
		var ae *adminError
		if errors.As(err, &ae) {
			status, msg = ae.Status, ae.Message
		} else {
			log.Error("admin request failed", "err", err)
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// listenAdmin opens the admin socket. The server holds the database lock,
// so a socket file left by a crashed server is stale and is replaced.
func listenAdmin(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict admin socket %s: %w", path, err)
	}
	return ln, nil
}

// --- the client side of the socket ---

// socketAdmin reaches a running server's admin socket.
type socketAdmin struct {
	client *http.Client
}

// dialAdmin returns a client for the server's admin socket, or nil when
// no server answers there.
func dialAdmin(ctx context.Context, path string) *socketAdmin {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	conn, err := dial(ctx, "", "")
	if err != nil {
		return nil
	}
	conn.Close()
	return &socketAdmin{client: &http.Client{Transport: &http.Transport{DialContext: dial}}}
}

func (c *socketAdmin) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://parley"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return &adminError{resp.StatusCode, e.Error}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *socketAdmin) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://parley/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("admin socket: backup answered %s", resp.Status)
	}
	return io.Copy(w, resp.Body)
}

func (c *socketAdmin) AddUser(ctx context.Context, name, password string) (store.User, error) {
	var u store.User
	err := c.do(ctx, http.MethodPost, "/users", map[string]string{"name": name, "password": password}, &u)
	return u, err
}

func (c *socketAdmin) SetPassword(ctx context.Context, name, password string) error {
	return c.do(ctx, http.MethodPost, "/user/password", map[string]string{"name": name, "password": password}, nil)
}

func (c *socketAdmin) RemoveUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/user/remove", map[string]string{"name": name}, nil)
}

func (c *socketAdmin) Check(ctx context.Context) ([]store.Problem, error) {
	var problems []store.Problem
	err := c.do(ctx, http.MethodGet, "/check", nil, &problems)
	return problems, err
}

func (c *socketAdmin) Users(ctx context.Context) ([]store.User, error) {
	var users []store.User
	err := c.do(ctx, http.MethodGet, "/users", nil, &users)
	return users, err
}

func (c *socketAdmin) SetAdmin(ctx context.Context, name string, isAdmin bool) error {
	return c.do(ctx, http.MethodPost, "/user/admin", map[string]any{"name": name, "admin": isAdmin}, nil)
}

func (c *socketAdmin) ResetLink(ctx context.Context, name string) (string, time.Time, error) {
	var r resetLinkReply
	err := c.do(ctx, http.MethodPost, "/user/reset", map[string]string{"name": name}, &r)
	return r.URL, r.ExpiresAt, err
}

func (c *socketAdmin) Unban(ctx context.Context, name string) (bool, error) {
	var r unbanReply
	err := c.do(ctx, http.MethodPost, "/user/unban", map[string]string{"name": name}, &r)
	return r.WasBanned, err
}

func (c *socketAdmin) Status(ctx context.Context) (statusReport, error) {
	var r statusReport
	err := c.do(ctx, http.MethodGet, "/status", nil, &r)
	return r, err
}
