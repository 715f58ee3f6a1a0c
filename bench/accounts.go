package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Bench accounts are bench00000, bench00001, ...; the password follows
// from the name, so an account whose token was lost can still sign in.
func userName(i int) string { return fmt.Sprintf("bench%05d", i) }

func userPassword(name string) string { return "bench-password-" + name }

// accounts caches parley sign-in tokens on disk. parley hashes a password
// with argon2id (tens of milliseconds, a few at a time), so thousands of
// sign-ups take minutes: each account signs up once and later runs resume
// with auth {token}, which hashes nothing.
type accounts struct {
	path string

	mu     sync.Mutex // guards tokens and dirty
	tokens map[string]string
	dirty  bool
}

func loadAccounts(path string) (*accounts, error) {
	a := &accounts{path: path, tokens: map[string]string{}}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read accounts %s: %w", path, err)
	}
	var f struct {
		Tokens map[string]string `json:"tokens"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("decode accounts %s: %w", path, err)
	}
	if f.Tokens != nil {
		a.tokens = f.Tokens
	}
	return a, nil
}

func (a *accounts) token(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokens[name]
}

func (a *accounts) setToken(name, token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens[name] != token {
		a.tokens[name] = token
		a.dirty = true
	}
}

func (a *accounts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.tokens)
}

// save writes the cache if it changed, atomically.
func (a *accounts) save() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.dirty {
		return nil
	}
	raw, err := json.Marshal(struct {
		Tokens map[string]string `json:"tokens"`
	}{a.tokens})
	if err != nil {
		return fmt.Errorf("encode accounts: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.path), ".accounts-*")
	if err != nil {
		return fmt.Errorf("save accounts %s: %w", a.path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("save accounts %s: %w", a.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save accounts %s: %w", a.path, err)
	}
	if err := os.Rename(tmp.Name(), a.path); err != nil {
		return fmt.Errorf("save accounts %s: %w", a.path, err)
	}
	a.dirty = false
	return nil
}

// authenticated is the part of the answer to auth the tool uses.
type authenticated struct {
	ClientID string `json:"clientId"`
	UserID   string `json:"userId"`
	Token    string `json:"token"`
	Rooms    []struct {
		RoomID string `json:"roomId"`
	} `json:"rooms"`
}

// authWait bounds one auth step; a sign-up may queue behind other
// password hashes.
const authWait = 30 * time.Second

// signIn authenticates c as bench account i. Against parley it resumes
// with the cached token, falling back to the password (which registers
// the account the first time); against the tutorial it sends the
// username, all that server knows. It retries rate_limited answers.
func (r *runner) signIn(ctx context.Context, c *conn, i int) error {
	c.user, c.name = i, userName(i)
	for attempt := 0; ; attempt++ {
		var err error
		switch {
		case r.cfg.target == "tutorial":
			err = c.send("auth", map[string]string{"username": c.name})
		case r.accts.token(c.name) != "":
			err = c.send("auth", map[string]string{"token": r.accts.token(c.name)})
		default:
			err = c.send("auth", map[string]string{"username": c.name, "password": userPassword(c.name)})
		}
		if err != nil {
			return err
		}
		f, err := c.await(ctx, "authenticated", authWait)
		var se *serverError
		switch {
		case err == nil:
			var a authenticated
			if err := json.Unmarshal(f.Data, &a); err != nil {
				return fmt.Errorf("decode authenticated for %s: %w", c.name, err)
			}
			c.userID = a.UserID
			if r.cfg.target == "tutorial" {
				c.userID = a.ClientID
			}
			c.rooms = make(map[string]bool, len(a.Rooms))
			for _, room := range a.Rooms {
				c.rooms[room.RoomID] = true
			}
			if a.Token != "" {
				r.accts.setToken(c.name, a.Token)
			}
			return nil
		case errors.As(err, &se) && se.Code == "auth_failed" && r.accts.token(c.name) != "":
			// A token from another database: sign in with the password.
			r.accts.setToken(c.name, "")
		case errors.As(err, &se) && se.Code == "rate_limited" && attempt < 20:
			r.rateLimited.Add(1)
			wait := time.Duration(se.RetryAfter * float64(time.Second))
			if wait <= 0 {
				wait = time.Second
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return fmt.Errorf("auth as %s: %w", c.name, err)
		}
	}
}

// join makes c a member of room. parley keeps memberships across
// connections, so a user who already belongs is not joined again.
func (r *runner) join(ctx context.Context, c *conn, room string) error {
	if c.rooms[room] {
		return nil
	}
	if err := c.send("join", map[string]string{"roomId": room}); err != nil {
		return err
	}
	if _, err := c.await(ctx, "joined", authWait); err != nil {
		return fmt.Errorf("%s join %s: %w", c.name, room, err)
	}
	c.rooms[room] = true
	return nil
}

// signup registers accounts [first, first+n) that have no cached token,
// at most 2 x the server's hashing slots at once, and saves the tokens.
func (r *runner) signup(ctx context.Context, first, n int) (created int, took time.Duration, err error) {
	var missing []int
	for i := first; i < first+n; i++ {
		if r.accts.token(userName(i)) == "" {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return 0, 0, nil
	}
	r.logf("signing up %d accounts (argon2id on the server; this is slow)", len(missing))
	start := time.Now()
	parallel := 2 * runtime.GOMAXPROCS(0)
	if r.cfg.parallel < parallel {
		parallel = r.cfg.parallel
	}
	err = forEach(ctx, len(missing), parallel, func(ctx context.Context, k int) error {
		c, err := r.dialer.dial(ctx, r.dialer.urlFor(missing[k], false), &r.counters)
		if err != nil {
			return err
		}
		defer c.close()
		if _, err := c.await(ctx, "connected", authWait); err != nil {
			return err
		}
		if err := r.signIn(ctx, c, missing[k]); err != nil {
			return err
		}
		if k%500 == 499 {
			r.logf("  %d/%d signed up", k+1, len(missing))
			if err := r.accts.save(); err != nil {
				return err
			}
		}
		return nil
	})
	if serr := r.accts.save(); err == nil {
		err = serr
	}
	return len(missing), time.Since(start), err
}

// forEach runs fn for 0..n-1 with at most parallel running at once. The
// first error cancels the rest and is returned.
func forEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < parallel && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
