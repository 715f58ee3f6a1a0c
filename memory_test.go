package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parley/internal/store"

	"github.com/gorilla/websocket"
)

// memoryBudget is the resident memory the server must stay under while
// one account's stalled connections ask for all they can (issue 13).
const memoryBudget = 300 << 20

// rssOf reads a process's resident set and its peak (VmHWM), in bytes.
func rssOf(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak, nil
}

// stalledHoarder signs in with token on a connection with a tiny receive
// buffer, sends history requests for the biggest page it may, and never
// reads again.
func stalledHoarder(t *testing.T, url, token string, requests int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: smallReceiveBuffer}).DialContext, ReadBufferSize: 1024}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := conn.WriteJSON(map[string]any{"type": "auth", "data": map[string]string{"token": token}}); err != nil {
		t.Fatal(err)
	}
	for {
		var f Frame
		conn.SetReadDeadline(time.Now().Add(frameWait))
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("sign in: %v", err)
		}
		if f.Type == "authenticated" {
			break
		}
		if f.Type == "error" {
			t.Fatalf("sign in: %s", f.Data)
		}
	}
	frame := []byte(`{"type":"history","data":{"roomId":"heavy","limit":100}}`)
	for range requests {
		if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			break // dropped already
		}
	}
	return conn
}

// TestMemory_FiftyStalledConnections is issue 13's memory attack against
// the built binary with the default settings: a room holds 100 messages
// of 4,000 "<" (6 bytes each once encoded); one account opens 50
// connections (the per-address cap) that stop reading and ask for a
// 100-message history page 100 times each, then does it again. The
// server's resident memory must stay under memoryBudget; the test
// reports the peak. (Before the byte limits, 4 such connections took a
// server to 1.4 GB.)
func TestMemory_FiftyStalledConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	db := t.TempDir() + "/parley.db"
	o := openOffline(t, db)
	hoarder := o.user("hoarder")
	o.must(store.JoinRoom{RoomID: "heavy", UserID: hoarder, AllowCreate: true})
	var pending sync.WaitGroup
	for range 100 {
		pending.Add(1)
		cmd := store.PostMessage{RoomID: "heavy", SenderID: hoarder, Content: strings.Repeat("<", 4000), Keep: 100}
		if err := o.bus.Send(context.Background(), "", cmd, func(store.Applied) { pending.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	pending.Wait()
	o.Close()

	// The account signs in 51 times within a minute; that budget has a
	// test of its own, and here all 50 connections must get in.
	p := startProcess(t, db, "PARLEY_LIMITS_SIGN_INS_PER_MINUTE=0")
	pid := p.cmd.Process.Pid
	c := dial(t, p.wsURL())
	token := c.auth("hoarder", "hoarder-password").Token
	c.conn.Close()

	var over atomic.Bool
	var peakSeen atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if rss, _, err := rssOf(pid); err == nil {
				if rss > peakSeen.Load() {
					peakSeen.Store(rss)
				}
				if rss > memoryBudget {
					over.Store(true)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-sampled
	}()
	baseline, _, _ := rssOf(pid)
	slowConsumers := func() float64 { return scrape(t, p.url+"metrics")["parley_slow_consumers_disconnected_total"] }
	for wave := 1; wave <= 2; wave++ {
		waitFor(t, "the previous wave's connections to close", func() bool {
			return scrape(t, p.url+"metrics")["parley_connections"] == 0
		})
		before := slowConsumers()
		conns := make([]*websocket.Conn, 50)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); conns[i] = stalledHoarder(t, p.wsURL(), token, 100) }()
		}
		wg.Wait()
		deadline := time.Now().Add(60 * time.Second)
		for slowConsumers()-before < 50 && !over.Load() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		dropped := slowConsumers() - before
		for _, conn := range conns {
			conn.Close()
		}
		if over.Load() {
			t.Fatalf("wave %d: the server's RSS passed %d MB (%d MB seen, from %d MB)", wave, memoryBudget>>20, peakSeen.Load()>>20, baseline>>20)
		}
		if dropped < 50 {
			t.Fatalf("wave %d: %v of 50 stalled connections dropped within 60 s", wave, dropped)
		}
	}
	close(stop)
	<-sampled
	_, hwm, err := rssOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("50 stalled connections of one account, 100 history pages asked on each, twice: server RSS %d MB at rest, "+
		"peak %d MB (VmHWM %d MB); budget %d MB", baseline>>20, peakSeen.Load()>>20, hwm>>20, memoryBudget>>20)
	if hwm > memoryBudget {
		t.Fatalf("peak RSS %d MB is over the %d MB budget", hwm>>20, memoryBudget>>20)
	}
}

// TestMemory_AnswersAreBounded: history, joined, thread, search and rooms
// answers stay near store.MaxPageBytes however large the messages or how
// many the rooms, and say how to page on; paging on finds everything.
func TestMemory_AnswersAreBounded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.History.PerRoom = 0
	o := openOffline(t, cfg.DB.Path)
	reader, other := o.user("reader"), o.user("other")
	var pending sync.WaitGroup
	send := func(cmd store.Command) {
		pending.Add(1)
		if err := o.bus.Send(context.Background(), "", cmd, func(ap store.Applied) {
			if ap.Outcome.Err != nil {
				t.Errorf("%s: %v", store.Name(cmd), ap.Outcome.Err)
			}
			pending.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	o.must(store.JoinRoom{RoomID: "heavy", UserID: reader, AllowCreate: true})
	for range 100 {
		send(store.PostMessage{RoomID: "heavy", SenderID: reader, Content: strings.Repeat("<", 4000)})
	}
	pending.Wait()
	for range 150 {
		send(store.PostMessage{RoomID: "heavy", SenderID: reader, Content: "re: " + strings.Repeat("<", 3000), ReplyTo: 1})
	}
	for i := range 250 {
		send(store.JoinRoom{RoomID: fmt.Sprintf("room-%03d", i), UserID: other, AllowCreate: true})
	}
	for i := range 5 {
		send(store.JoinRoom{RoomID: fmt.Sprintf("room-secret-%d", i), UserID: other, AllowCreate: true, Private: true})
	}
	pending.Wait()
	o.Close()
	ts := startServer(t, &cfg)
	c, _ := signedIn(t, ts, "reader")
	const slack = 16 << 10 // the envelope and the fields outside the messages
	bounded := func(f Frame) Frame {
		t.Helper()
		if len(f.Data) > store.MaxPageBytes+slack {
			t.Fatalf("a %s answer of %d bytes; want at most about %d", f.Type, len(f.Data), store.MaxPageBytes)
		}
		return f
	}

	c.send("join", map[string]string{"roomId": "heavy"})
	var j joinedData
	decodeInto(t, bounded(c.await("joined")), &j)
	if !j.HasMore || len(j.History) == 0 {
		t.Fatalf("joined: %d messages, hasMore %v", len(j.History), j.HasMore)
	}

	// History: every page bounded, and paging back reaches the first.
	seen, pages, before := 0, 0, ""
	for {
		c.send("history", map[string]any{"roomId": "heavy", "limit": 100, "before": before})
		var h historyOutData
		decodeInto(t, bounded(c.await("history")), &h)
		seen += len(h.Messages)
		pages++
		if !h.HasMore {
			break
		}
		before = h.Messages[0].ID
	}
	if seen != 250 {
		t.Fatalf("paged through %d of 250 messages", seen)
	}

	// A thread of 150 replies comes in pages too.
	replies, after := 0, ""
	for {
		c.send("thread", map[string]string{"roomId": "heavy", "messageId": formatMessageID(1), "after": after})
		var th threadData
		decodeInto(t, bounded(c.await("thread")), &th)
		if len(th.Replies) > store.MaxThreadReplies {
			t.Fatalf("a thread page of %d replies", len(th.Replies))
		}
		replies += len(th.Replies)
		if !th.HasMore {
			break
		}
		after = th.Replies[len(th.Replies)-1].ID
	}
	if replies != 150 {
		t.Fatalf("paged through %d of 150 replies", replies)
	}

	c.send("search", map[string]any{"query": "<<<", "limit": 100})
	var sr searchResultsData
	decodeInto(t, bounded(c.await("searchResults")), &sr)
	if !sr.Truncated || len(sr.Results) == 0 {
		t.Fatalf("search over 250 large messages: %d results, truncated %v", len(sr.Results), sr.Truncated)
	}

	// Rooms: 100 a page by default, private rooms of others never.
	var names []string
	after = ""
	for {
		c.send("rooms", map[string]any{"after": after})
		var r roomsData
		decodeInto(t, bounded(c.await("rooms")), &r)
		if len(r.Rooms) > 100 {
			t.Fatalf("a rooms page of %d", len(r.Rooms))
		}
		for _, info := range r.Rooms {
			names = append(names, info.RoomID)
		}
		if !r.HasMore {
			break
		}
		after = r.Rooms[len(r.Rooms)-1].RoomID
	}
	if len(names) != 251 || strings.Contains(strings.Join(names, ","), "secret") {
		t.Fatalf("paged through %d rooms (want 250 and heavy, no private ones of others)", len(names))
	}
	t.Logf("250 messages of 4,000 \"<\": %d history pages of at most %d KB; 150 replies in pages of at most %d; %d search results",
		pages, (store.MaxPageBytes+slack)>>10, store.MaxThreadReplies, len(sr.Results))
}
