package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// nodeEnv is a node's configuration as the environment of the built
// binary.
func nodeEnv(cfg Config) []string {
	c := cfg.Cluster
	return []string{
		"PARLEY_CLUSTER_NODE=" + c.Node,
		fmt.Sprint("PARLEY_CLUSTER_REPLICAS=", c.Replicas),
		"PARLEY_CLUSTER_NATS_EMBEDDED_LISTEN=" + c.NATS.Embedded.Listen,
		"PARLEY_CLUSTER_NATS_EMBEDDED_CLUSTER_LISTEN=" + c.NATS.Embedded.ClusterListen,
		"PARLEY_CLUSTER_NATS_EMBEDDED_ROUTES=" + strings.Join(c.NATS.Embedded.Routes, ","),
		// Capacity, not abuse, is under test.
		"PARLEY_HISTORY_PER_ROOM=0", "PARLEY_LIMITS_MESSAGES_PER_SECOND=0", "PARLEY_LIMITS_FRAMES_PER_SECOND=0",
		"PARLEY_AUTH_SIGNUPS_PER_IP_PER_HOUR=0", "PARLEY_LIMITS_SIGN_INS_PER_MINUTE=0", "PARLEY_LIMITS_CONNECTIONS_PER_IP=0",
		"PARLEY_LOG_LEVEL=warn",
		"PARLEY_AUTH_REGISTRATION=open", // twenty senders sign up; a new database is invite-only
	}
}

// readyz reads a node's /readyz.
func readyz(url string) (int, map[string]string) {
	resp, err := http.Get(url + "readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// sender is one client sending numbered messages to a room until told to
// stop, reconnecting (with its token) to the next node when its node dies.
type sender struct {
	name  string
	token string
	urls  []string // the nodes, in the order it tries them

	mu    sync.Mutex // guards acked and lastAck
	acked []string   // clientMsgIds acknowledged, in order
	last  time.Time  // when the last one was
}

// run sends until stop closes; it moves on to the next node when its
// connection dies.
func (s *sender) run(t *testing.T, stop <-chan struct{}) {
	n := 0
	for node := 0; ; node = (node + 1) % len(s.urls) {
		select {
		case <-stop:
			return
		default:
		}
		conn, _, err := websocket.DefaultDialer.Dial(s.urls[node], nil)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if s.session(conn, &n, stop) {
			conn.Close()
			return
		}
		conn.Close()
	}
}

// session signs in with the token and sends; it reports whether it was
// told to stop (rather than losing its connection).
func (s *sender) session(conn *websocket.Conn, n *int, stop <-chan struct{}) bool {
	_ = conn.WriteJSON(map[string]any{"type": "auth", "data": map[string]string{"token": s.token}})
	acks := make(chan string, 1)
	refused := make(chan string, 1)
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		for {
			var f Frame
			if conn.ReadJSON(&f) != nil {
				return
			}
			var m messageFrame
			var e errorData
			switch {
			case f.Type == "message" && json.Unmarshal(f.Data, &m) == nil && strings.HasPrefix(m.ClientMsgID, s.name+"-"):
				acks <- m.ClientMsgID
			case f.Type == "error" && json.Unmarshal(f.Data, &e) == nil && strings.HasPrefix(e.ClientMsgID, s.name+"-"):
				refused <- e.ClientMsgID // not stored (the log had no leader): send the next one
			}
		}
	}()
	for {
		id := fmt.Sprintf("%s-%d", s.name, *n)
		*n++ // never reused: an unacknowledged message may still have been stored
		if conn.WriteJSON(map[string]any{"type": "chat", "data": map[string]string{"roomId": "killroom", "content": id, "clientMsgId": id}}) != nil {
			return false
		}
		select {
		case got := <-acks:
			s.mu.Lock()
			s.acked = append(s.acked, got)
			s.last = time.Now()
			s.mu.Unlock()
		case <-refused:
			time.Sleep(50 * time.Millisecond)
		case <-dead:
			return false
		case <-stop:
			return true
		case <-time.After(20 * time.Second):
			return false
		}
	}
}

// TestCluster_KillNodeLosesNothing runs three nodes as the built binary,
// has 20 clients send acknowledged messages through all of them, and
// kills (SIGKILL) the node whose NATS server leads the log. Writes resume
// on the other two; every acknowledged message is in each survivor's
// history, in order, exactly once; the killed node's clients go on through
// another node with their tokens; and the survivors hold the same state.
func TestCluster_KillNodeLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; skipped with -short")
	}
	cfgs := clusterConfigs(t, 3, 3)
	procs := make([]*process, 3)
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Add(1)
		go func() { defer wg.Done(); procs[i] = startProcess(t, cfgs[i].DB.Path, nodeEnv(cfgs[i])...) }()
	}
	wg.Wait()
	for _, p := range procs {
		if p == nil {
			t.FailNow()
		}
		waitFor(t, "the node to be ready", func() bool { code, _ := readyz(p.url); return code == 200 })
	}
	_, body := readyz(procs[0].url)
	leader := -1
	for i, c := range cfgs {
		if c.Cluster.Node == body["leader"] {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("no node leads the log: %v", body)
	}

	const clients = 20
	senders := make([]*sender, clients)
	for i := range senders {
		home := i % 3
		c := dial(t, procs[home].wsURL())
		a := c.auth(fmt.Sprintf("sender%02d", i), "sender-password")
		c.join("killroom")
		c.conn.Close()
		urls := []string{procs[home].wsURL(), procs[(home+1)%3].wsURL(), procs[(home+2)%3].wsURL()}
		senders[i] = &sender{name: fmt.Sprintf("s%02d", i), token: a.Token, urls: urls}
	}
	stop := make(chan struct{})
	var running sync.WaitGroup
	for _, s := range senders {
		running.Add(1)
		go func() { defer running.Done(); s.run(t, stop) }()
	}
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	if err := procs[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = procs[leader].cmd.Wait()
	// Writes resume: every sender gets acknowledgements again.
	waitForWithin(t, "every sender to be acknowledged after the kill", 60*time.Second, func() bool {
		for _, s := range senders {
			s.mu.Lock()
			ok := s.last.After(killed.Add(100 * time.Millisecond))
			s.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	resumed := time.Now()
	t.Logf("killed %s (the log's leader); all 20 senders acknowledged again %s later",
		cfgs[leader].Cluster.Node, resumed.Sub(killed).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	running.Wait()

	total := 0
	for _, s := range senders {
		total += len(s.acked)
	}
	t.Logf("%d messages acknowledged", total)
	var survivors []*process
	for i, p := range procs {
		if i != leader {
			survivors = append(survivors, p)
		}
	}
	for _, p := range survivors {
		c := dial(t, p.wsURL())
		c.auth("reader", "reader-password")
		c.join("killroom")
		seen := map[string]int{}
		var order []string
		for _, m := range allHistory(t, c, "killroom") {
			seen[m.ClientMsgID]++
			order = append(order, m.ClientMsgID)
		}
		for _, s := range senders {
			last := -1
			for _, id := range s.acked {
				if seen[id] != 1 {
					t.Fatalf("%s: acknowledged %s is in history %d times", p.url, id, seen[id])
				}
			}
			pos := map[string]int{}
			for i, id := range order {
				pos[id] = i
			}
			for _, id := range s.acked {
				if pos[id] < last {
					t.Fatalf("%s: %s's messages are out of order at %s", p.url, s.name, id)
				}
				last = pos[id]
			}
		}
	}
	// The survivors converge and hold the same state.
	applied := func(p *process) string {
		m := scrape(t, p.url+"metrics")
		return fmt.Sprint(m["parley_cluster_applied_seq"])
	}
	waitFor(t, "the survivors to apply the same log", func() bool { return applied(survivors[0]) == applied(survivors[1]) })
	var dbs []string
	for i, p := range procs {
		if i == leader {
			continue
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()
		dbs = append(dbs, cfgs[i].DB.Path)
	}
	var a, b bytes.Buffer
	exportDB(t, dbs[0], &a)
	exportDB(t, dbs[1], &b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the survivors hold different state")
	}
}

// waitForWithin is waitFor with a deadline of the caller's.
func waitForWithin(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
