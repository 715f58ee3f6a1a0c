package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/internal/store"
)

// Per-account budgets: one account on many connections gets what one
// connection gets, not more.

// TestBudgets_MessagesPerAccount: one account on 5 connections sends 100
// messages at once. The account's shared allowance (a burst of 20) lets
// about 20 through, not 100, so it cannot erase a room's history in a
// blink; the rest are refused with rate_limited.
func TestBudgets_MessagesPerAccount(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil) // 5 messages/s, bursts of 20
	watcher, _ := signedIn(t, ts, "watcher")
	watcher.join("room")
	conns := make([]*wsClient, 5)
	for i := range conns {
		conns[i], _ = signedIn(t, ts, "eraser")
		conns[i].join("room")
	}
	var wg sync.WaitGroup
	counts := make([]map[string]int, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				_ = c.trySend("chat", map[string]string{"roomId": "room", "content": fmt.Sprint("spam ", i, j), "clientMsgId": fmt.Sprint(i, "-", j)})
			}
			got := map[string]int{}
			// The connection's own 20 answers: an acknowledgement or an
			// error, each naming its clientMsgId.
			for got["ack"]+got["error"] < 20 {
				f := c.next()
				switch f.Type {
				case "message":
					var m messageFrame
					decodeInto(t, f, &m)
					if strings.HasPrefix(m.ClientMsgID, fmt.Sprint(i, "-")) {
						got["ack"]++
					}
				case "error":
					var e errorData
					decodeInto(t, f, &e)
					got["error"]++
					got[e.Code]++
				}
			}
			counts[i] = got
		}()
	}
	wg.Wait()
	acked, limited := 0, 0
	for _, got := range counts {
		acked += got["ack"]
		limited += got[codeRateLimited]
	}
	t.Logf("100 messages from one account on 5 connections at once: %d stored, %d rate_limited", acked, limited)
	if acked > 25 || acked+limited != 100 {
		t.Fatalf("%d stored and %d rate_limited of 100; want about the account's burst of 20 stored", acked, limited)
	}
}

// TestBudgets_SignInsPerAccount: 50 token resumes of one account at once
// sign in at most limits.sign_ins_per_minute (30) times.
func TestBudgets_SignInsPerAccount(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Limits.ConnectionsPerIP = 0
	ts := startServer(t, &cfg)
	_, a := signedIn(t, ts, "looper") // signing up is not signing in
	conns := make([]*wsClient, 50)
	for i := range conns {
		conns[i] = dial(t, ts.WSURL())
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.trySend("auth", map[string]string{"token": a.Token}) }()
	}
	wg.Wait()
	got := map[string]int{}
	for _, c := range conns {
		f := c.next()
		if f.Type == "error" {
			var e errorData
			decodeInto(t, f, &e)
			got[e.Code]++
		} else {
			got[f.Type]++
		}
	}
	t.Logf("50 resumes of one account at once: %v", got)
	if got["authenticated"] != 30 || got[codeRateLimited] != 20 {
		t.Fatalf("50 resumes at once: %v, want 30 sign-ins (30 a minute) and 20 rate_limited", got)
	}
}

// TestBudgets_PresenceFlaps: an account that connects and disconnects in
// a loop is announced online and offline at most presenceBurst times at
// once and then once per presence.announce_interval, and the last word
// others hear is the truth.
func TestBudgets_PresenceFlaps(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Presence.AnnounceInterval = 500 * time.Millisecond
	cfg.Limits.SignInsPerMinute = 0
	ts := startServer(t, &cfg)
	watcher, _ := signedIn(t, ts, "watcher")
	first, fa := signedIn(t, ts, "flapper")
	flapper := mustParseUint(t, fa.UserID)
	first.conn.Close()
	waitFor(t, "the flapper's first connection to close", func() bool { return !ts.srv.hub.Online(flapper) })

	start := time.Now()
	const flaps = 25
	for range flaps {
		c := dial(t, ts.WSURL())
		c.send("auth", map[string]string{"token": fa.Token})
		c.expect("authenticated")
		c.conn.Close()
		waitFor(t, "the flapper to go offline", func() bool { return !ts.srv.hub.Online(flapper) })
	}
	took := time.Since(start)
	waitFor(t, "the deferred announcement", func() bool { return ts.srv.hub.presencePending() == 0 })
	var heard []string
	for _, f := range watcher.sync() {
		if (f.Type == "userOnline" || f.Type == "userOffline") && strings.Contains(string(f.Data), `"flapper"`) {
			heard = append(heard, f.Type)
		}
	}
	// The first sign-in and its close, the 25 flaps: 52 changes.
	allowed := presenceBurst + int(took/cfg.Presence.AnnounceInterval) + 2
	t.Logf("%d connect/disconnect cycles in %s: others heard %d presence frames (allowed %d), last %s",
		flaps, took.Round(time.Millisecond), len(heard), allowed, heard[len(heard)-1])
	if len(heard) > allowed {
		t.Fatalf("%d presence frames for %d flaps in %s; want at most %d", len(heard), flaps, took, allowed)
	}
	if heard[len(heard)-1] != "userOffline" {
		t.Fatalf("the last presence frame is %s; the flapper is offline", heard[len(heard)-1])
	}
}

// TestBudgets_SearchIsFair: one account fires 20 searches at once on 20
// connections over 30,000 messages, then keeps at it. It gets one search
// running at a time and its per-minute allowance; another user's search
// and chat still answer promptly. Reports the figures.
func TestBudgets_SearchIsFair(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.History.PerRoom = 0
	cfg.Limits.ConnectionsPerIP = 0
	o := openOffline(t, cfg.DB.Path)
	hog, other := o.user("hog"), o.user("other")
	var pending sync.WaitGroup
	for r := range 3 {
		room := fmt.Sprint("archive-", r)
		o.must(store.JoinRoom{RoomID: room, UserID: hog, AllowCreate: true})
		o.must(store.JoinRoom{RoomID: room, UserID: other})
		for i := range 10000 {
			pending.Add(1)
			cmd := store.PostMessage{RoomID: room, SenderID: hog, Content: fmt.Sprintf("log line %d of %s: nothing to see here", i, room)}
			if err := o.bus.Send(context.Background(), "", cmd, func(store.Applied) { pending.Done() }); err != nil {
				t.Fatal(err)
			}
		}
	}
	pending.Wait()
	o.Close()
	ts := startServer(t, &cfg)

	var hogs []*wsClient
	for range 20 {
		c, _ := signedIn(t, ts, "hog")
		hogs = append(hogs, c)
	}
	bystander, _ := signedIn(t, ts, "other")
	search := func(c *wsClient, q string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		c.send("search", map[string]string{"query": q})
		for {
			f := c.next()
			switch f.Type {
			case "searchResults":
				return "searchResults", time.Since(start)
			case "error":
				var e errorData
				decodeInto(t, f, &e)
				return e.Code, time.Since(start)
			}
		}
	}
	_, alone := search(bystander, "not in any line")

	// The hog's 20 at once, and the bystander's search right behind them.
	var wg sync.WaitGroup
	answers := make([]string, len(hogs))
	for i, c := range hogs {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i], _ = search(c, "also not there") }()
	}
	time.Sleep(20 * time.Millisecond) // behind the hog's, not before them
	_, during := search(bystander, "not in any line")
	bystander.join("chatter")
	var chat []time.Duration
	for i := range 5 {
		start := time.Now()
		bystander.send("chat", map[string]string{"roomId": "chatter", "content": fmt.Sprint("still here ", i)})
		bystander.awaitMessage(fmt.Sprint("still here ", i))
		chat = append(chat, time.Since(start))
	}
	wg.Wait()
	got := map[string]int{}
	for _, a := range answers {
		got[a]++
	}
	// The hog goes on, one search after another, past its allowance.
	sequential := map[string]int{}
	begun := time.Now()
	for range 12 {
		code, _ := search(hogs[0], "and again")
		sequential[code]++
	}
	slices.Sort(chat)
	t.Logf("search fairness: 20 searches at once from one account: %v; then 12 in a row: %v; "+
		"another user's search took %s alone and %s behind them; their chat acknowledged in %s (worst %s)",
		got, sequential, alone.Round(time.Millisecond), during.Round(time.Millisecond),
		chat[len(chat)/2].Round(time.Millisecond), chat[len(chat)-1].Round(time.Millisecond))
	if got["searchResults"] < 1 || got["searchResults"] > 2 || got["searchResults"]+got[codeRateLimited] != 20 {
		t.Fatalf("20 searches at once from one account: %v; want one or two run, the rest rate_limited", got)
	}
	refilled := int(time.Since(begun) / (time.Minute / time.Duration(cfg.Limits.SearchesPerMinute)))
	if ran := got["searchResults"] + sequential["searchResults"]; ran > cfg.Limits.SearchesPerMinute+refilled+1 || sequential[codeRateLimited] == 0 {
		t.Fatalf("searches in a row past the allowance of %d a minute: %v", cfg.Limits.SearchesPerMinute, sequential)
	}
	// Behind at most one of the hog's searches, not twenty: allow for a
	// machine busy with other tests.
	if during > 8*alone+3*time.Second {
		t.Fatalf("another user's search took %s behind the hog's, %s alone", during, alone)
	}
}
