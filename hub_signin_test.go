package main

import (
	"fmt"
	"sync"
	"testing"
)

// TestHub_SignInStormKeepsEveryoneSmall: users who sign in while at most
// presence.broadcast_limit are online hear everyone come and go for as
// long as they stay. In a reconnect storm many sign-ins are under way at
// once; had each decided from the count it saw before attaching, all of
// them would have found it low and joined, and every later sign-in would
// have been announced to all of them (the reconnect benchmark saw 15
// million presence frames for 5,000 users instead of 150,000). Here every
// sign-in of the storm works out its list before any attaches, and
// someone who signs in afterwards is announced to at most limit+1 of
// them.
func TestHub_SignInStormKeepsEveryoneSmall(t *testing.T) {
	t.Parallel()
	const limit, n = 3, 20
	cfg := testConfig(t.TempDir())
	cfg.Presence.BroadcastLimit = limit
	ts := startServer(t, &cfg)
	hub := ts.srv.hub

	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = dial(t, ts.WSURL())
	}
	waitFor(t, "every connection to reach the hub", func() bool { return hub.Count() == n })
	hub.mu.RLock()
	var conns []*Conn
	for _, c := range hub.conns {
		conns = append(conns, c)
	}
	hub.mu.RUnlock()

	var listed sync.WaitGroup
	listed.Add(n)
	release := make(chan struct{})
	var attached sync.WaitGroup
	for i, c := range conns {
		attached.Add(1)
		go func() {
			defer attached.Done()
			first := true
			hello := func([]userRef) []byte {
				if first { // the storm: everyone has a list before anyone attaches
					first = false
					listed.Done()
					<-release
				}
				return marshalFrame("authenticated", map[string]string{"username": fmt.Sprintf("storm%d", i)})
			}
			who := identity{userID: uint64(1_000_000 + i), name: fmt.Sprintf("storm%d", i)}
			if !hub.SignIn(c, who, nil, nil, hello, ^uint64(0)) {
				t.Errorf("sign-in %d refused", i)
			}
		}()
	}
	listed.Wait()
	close(release)
	attached.Wait()

	signedIn(t, ts, "zed")
	heard := 0
	for _, c := range clients {
		for _, f := range c.sync() {
			if f.Type == "userOnline" {
				var u userRef
				decodeInto(t, f, &u)
				if u.Username == "zed" {
					heard++
				}
			}
		}
	}
	if heard > limit+1 {
		t.Fatalf("zed's sign-in was announced to %d of the %d storm users, want at most %d (those who signed in while at most %d were online)", heard, n, limit+1, limit)
	}
	if heard == 0 {
		t.Fatalf("zed's sign-in was announced to none of the storm users; the first %d to attach were listed everyone", limit+1)
	}
	t.Logf("zed announced to %d of %d", heard, n)
}
