package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"parley/internal/auth"
	"parley/internal/store"
)

// offlineStore is a database opened the way the command-line tools open
// it, with no server running: the store, its log and a bus. Its clock is
// the test's, so commands can be sent "in the past".
type offlineStore struct {
	t   testing.TB
	st  *store.Store
	bus *bus

	mu  sync.Mutex // guards now
	now time.Time
}

func openOffline(t testing.TB, path string) *offlineStore {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	o := &offlineStore{t: t, st: st, now: time.Now()}
	o.bus = newBus(store.NewLog(st, nil), nil, nil, slog.New(slog.DiscardHandler), o.clock, nil)
	t.Cleanup(o.Close)
	return o
}

func (o *offlineStore) clock() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.now
}

// at sets the time the next commands are sent at.
func (o *offlineStore) at(t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.now = t
}

// must applies a command that must succeed.
func (o *offlineStore) must(cmd store.Command) store.Outcome {
	o.t.Helper()
	out, err := o.bus.Do(context.Background(), "", cmd)
	if err != nil {
		o.t.Fatalf("%s: %v", store.Name(cmd), err)
	}
	return out
}

// Close applies what is queued and closes the database; safe to call twice.
func (o *offlineStore) Close() {
	if o.bus == nil {
		return
	}
	o.bus.Close()
	o.st.Close()
	o.bus = nil
}

// user registers an account whose password is NAME-password, as
// signedIn expects, hashed with cheap argon2 settings.
func (o *offlineStore) user(name string) uint64 {
	o.t.Helper()
	hash, err := auth.NewHasher(auth.Argon2Params{Memory: 1024, Time: 1, Threads: 1}, 1).Hash(context.Background(), name+"-password")
	if err != nil {
		o.t.Fatal(err)
	}
	return o.must(store.CreateUser{Name: name, PasswordHash: hash}).User.ID
}
