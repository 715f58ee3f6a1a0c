package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// clusterConfigs returns the configurations of n nodes on this machine,
// each with an embedded NATS server routed to the others.
func clusterConfigs(t testing.TB, n, replicas int) []Config {
	t.Helper()
	ports := freePorts(t, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	cfgs := make([]Config, n)
	for i := range n {
		cfg := testConfig(t.TempDir())
		cfg.Cluster.Node = fmt.Sprintf("n%d", i+1)
		cfg.Cluster.Replicas = replicas
		cfg.Cluster.NATS.Embedded.Listen = fmt.Sprintf("127.0.0.1:%d", ports[i])
		cfg.Cluster.NATS.Embedded.ClusterListen = fmt.Sprintf("127.0.0.1:%d", ports[n+i])
		for j, r := range routes {
			if j != i {
				cfg.Cluster.NATS.Embedded.Routes = append(cfg.Cluster.NATS.Embedded.Routes, r)
			}
		}
		cfgs[i] = cfg
	}
	return cfgs
}

// startCluster starts n parley nodes in this process, at once: each
// waits for the others to form the NATS cluster.
func startCluster(t *testing.T, n, replicas int) []*testServer {
	t.Helper()
	return startNodes(t, clusterConfigs(t, n, replicas))
}

// TestCluster_ChatAcrossNodes: alice on node 1 and bob on node 2 chat in
// a room, edit and react; carol on node 3 sees the same history with the
// same ids; after the run every node's database holds the same state.
func TestCluster_ChatAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	alice, aliceA := signedIn(t, nodes[0], "alice")
	alice.join("lobby")
	// Presence: node 2 learns alice is online on node 1, and bob, signing
	// in there, finds her in his list; alice hears him come online.
	aliceID := mustParseUint(t, aliceA.UserID)
	waitFor(t, "node 2 to see alice online", func() bool { return nodes[1].srv.hub.Online(aliceID) })
	bob, bobA := signedIn(t, nodes[1], "bob")
	if !containsUser(bobA.OnlineUsers, "alice") {
		t.Fatalf("bob's onlineUsers on node 2 = %+v, want alice of node 1", bobA.OnlineUsers)
	}
	decodeUserRef(t, alice.await("userOnline"), "bob")
	bob.join("lobby")
	alice.await("userJoined")
	// Typing crosses nodes too.
	bob.send("typing", map[string]any{"roomId": "lobby", "isTyping": true})
	var ty typingOutData
	decodeInto(t, alice.await("typing"), &ty)
	if ty.Username != "bob" || !ty.IsTyping {
		t.Fatalf("alice saw typing %+v", ty)
	}

	alice.send("chat", map[string]string{"roomId": "lobby", "content": "hello from n1", "clientMsgId": "a-1"})
	mine := alice.awaitMessage("hello from n1")
	theirs := bob.awaitMessage("hello from n1")
	if mine.ID != theirs.ID || theirs.ClientMsgID != "a-1" {
		t.Fatalf("alice's copy %+v, bob's %+v", mine, theirs)
	}
	bob.send("chat", map[string]any{"roomId": "lobby", "content": "hi from n2", "replyTo": mine.ID})
	reply := alice.awaitMessage("hi from n2")
	if reply.ReplyTo == nil || reply.ReplyTo.ID != mine.ID {
		t.Fatalf("reply = %+v", reply)
	}
	alice.send("edit", map[string]string{"roomId": "lobby", "messageId": mine.ID, "content": "hello again from n1"})
	bob.await("messageEdited")
	bob.send("react", map[string]string{"roomId": "lobby", "messageId": mine.ID, "emoji": "👍"})
	alice.await("reaction")

	// A direct message from node 2 to node 1.
	alice.send("private", map[string]string{"targetUserId": bobA.UserID, "content": "psst"})
	bob.awaitMessage("psst")

	carol, carolA := signedIn(t, nodes[2], "carol")
	decodeUserRef(t, alice.await("userOnline"), "carol")
	// A file uploaded through node 3 is served by node 1: its bytes are
	// in the cluster's object store, its record in every database.
	status, file := upload(t, nodes[2], carolA.Token, "dot.png", pngBytes)
	if status != 201 {
		t.Fatalf("upload to node 3: %d", status)
	}
	carol.join("lobby")
	carol.send("chat", map[string]any{"roomId": "lobby", "content": "a picture", "files": []string{file.ID}})
	pic := alice.awaitMessage("a picture")
	if len(pic.Files) != 1 {
		t.Fatalf("the message carries %+v", pic.Files)
	}
	if code, _, body := httpGet(t, nodes[0].URL()+pic.Files[0].URL); code != 200 || body != string(pngBytes) {
		t.Fatalf("node 1 serves the file from node 3: %d, %d bytes", code, len(body))
	}
	j := carol.join("lobby")
	if len(j.History) != 3 || j.History[0].ID != mine.ID || j.History[0].Content != "hello again from n1" ||
		len(j.History[0].Reactions) != 1 || j.History[1].ID != reply.ID {
		t.Fatalf("carol on n3 sees %+v", j.History)
	}
	// A user is online while any node has them: bob's second connection,
	// on node 3, keeps him online when the one on node 2 closes.
	bob2, _ := signedIn(t, nodes[2], "bob")
	waitFor(t, "node 1 to see bob on node 3 too", func() bool {
		nodes[0].srv.hub.mu.RLock()
		defer nodes[0].srv.hub.mu.RUnlock()
		r := nodes[0].srv.hub.remote[mustParseUint(t, bobA.UserID)]
		return r != nil && len(r.nodes) == 2
	})
	bob.conn.Close()
	waitFor(t, "node 1 to see bob leave node 2", func() bool {
		nodes[0].srv.hub.mu.RLock()
		defer nodes[0].srv.hub.mu.RUnlock()
		r := nodes[0].srv.hub.remote[mustParseUint(t, bobA.UserID)]
		return r != nil && len(r.nodes) == 1
	})
	alice.none("userOffline")
	bob2.conn.Close()
	decodeUserRef(t, alice.await("userOffline"), "bob")
	waitConverged(t, nodes)
	for _, ts := range nodes {
		ts.Stop()
	}
	assertSameDatabases(t, nodes)
}

// waitConverged waits until every node has applied as much of the log as
// the furthest one.
func waitConverged(t *testing.T, nodes []*testServer) {
	t.Helper()
	waitFor(t, "the nodes to apply the same log", func() bool {
		var first uint64
		for i, ts := range nodes {
			a := ts.srv.storage.clog.Applied()
			if i == 0 {
				first = a
			} else if a != first {
				return false
			}
		}
		return true
	})
}

// assertSameDatabases checks that every node's database exports alike.
func assertSameDatabases(t *testing.T, nodes []*testServer) {
	t.Helper()
	var first bytes.Buffer
	exportDB(t, nodes[0].cfg.DB.Path, &first)
	for _, ts := range nodes[1:] {
		var other bytes.Buffer
		exportDB(t, ts.cfg.DB.Path, &other)
		if !bytes.Equal(first.Bytes(), other.Bytes()) {
			t.Fatalf("%s and %s hold different state:\n%s\n----\n%s", nodes[0].cfg.Cluster.Node, ts.cfg.Cluster.Node,
				first.String(), other.String())
		}
	}
}

// TestCluster_OneNode runs a cluster of one: the single-node default's
// behaviour, through the replicated log.
func TestCluster_OneNode(t *testing.T) {
	cfg := clusterConfigs(t, 1, 1)[0]
	cfg.DB.Path = filepath.Join(t.TempDir(), "parley.db")
	ts := startServer(t, &cfg)
	c, _ := signedIn(t, ts, "solo")
	c.join("alone")
	start := time.Now()
	c.send("chat", map[string]string{"roomId": "alone", "content": "echo"})
	c.awaitMessage("echo")
	t.Logf("a one-node cluster acknowledged a message in %s", time.Since(start))
}

func containsUser(list []userRef, name string) bool {
	for _, u := range list {
		if u.Username == name {
			return true
		}
	}
	return false
}

// startNodes starts the nodes of cfgs at once and waits until each is
// ready.
func startNodes(t *testing.T, cfgs []Config) []*testServer {
	t.Helper()
	nodes := make([]*testServer, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i] = startServer(t, &cfgs[i])
		}()
	}
	wg.Wait()
	for _, ts := range nodes {
		if ts == nil {
			t.FailNow()
		}
		waitFor(t, "the node to be ready", func() bool {
			status, _, _ := httpGet(t, ts.URL()+"/readyz")
			return status == 200
		})
	}
	return nodes
}

// TestCluster_SingleServerBecomesCluster: a single server's database,
// started as the first node of a new cluster, becomes the cluster's
// state: every node has every user, room, message and token, and a
// client resumes with its old token on another node. A fourth node
// added later starts from a snapshot and ends with the same content.
func TestCluster_SingleServerBecomesCluster(t *testing.T) {
	cfgs := clusterConfigs(t, 4, 3)
	// The community, on one server.
	single := testConfig(t.TempDir())
	single.DB.Path = cfgs[0].DB.Path
	ts := startServer(t, &single)
	alice, aliceA := signedIn(t, ts, "alice")
	alice.join("general")
	for i := range 5 {
		alice.send("chat", map[string]string{"roomId": "general", "content": fmt.Sprint("before ", i)})
		alice.awaitMessage(fmt.Sprint("before ", i))
	}
	ts.Stop()

	// Nodes 1-3 of the cluster: node 1 on that database.
	nodes := startNodes(t, cfgs[:3])
	back := dial(t, nodes[2].WSURL())
	back.send("auth", map[string]string{"token": aliceA.Token})
	back.await("authenticated")
	j := back.join("general")
	if len(j.History) != 5 || j.History[4].Content != "before 4" {
		t.Fatalf("node 3 sees %d messages of the single server's room", len(j.History))
	}
	back.send("chat", map[string]string{"roomId": "general", "content": "after"})
	back.awaitMessage("after")

	// A snapshot, and a fourth node that starts from it.
	info, err := nodes[1].srv.storage.node.PutSnapshot(context.Background(), nodes[1].srv.store)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot at log position %d, %d bytes", info.Seq, info.Size)
	back.send("chat", map[string]string{"roomId": "general", "content": "after the snapshot"})
	back.awaitMessage("after the snapshot")
	fourth := startNodes(t, cfgs[3:])[0]
	if !strings.Contains(fourth.Logs(), "started from a snapshot") {
		t.Fatalf("the fourth node did not start from the snapshot:\n%s", fourth.Logs())
	}
	late := dial(t, fourth.WSURL())
	late.send("auth", map[string]string{"token": aliceA.Token})
	late.await("authenticated")
	j = late.join("general")
	if n := len(j.History); n != 7 || j.History[n-1].Content != "after the snapshot" {
		t.Fatalf("node 4 sees %d messages, the last %q", n, j.History[n-1].Content)
	}
	all := append(nodes, fourth)
	waitConverged(t, all)
	for _, n := range all {
		n.Stop()
	}
	assertSameDatabases(t, all)
}

// TestCluster_SettingsMustAgree: a node whose settings would store things
// differently from the cluster's refuses to start, naming the setting.
func TestCluster_SettingsMustAgree(t *testing.T) {
	cfg := clusterConfigs(t, 1, 1)[0]
	ts := startServer(t, &cfg)
	ts.Stop()
	cfg.History.PerRoom = 5
	logger := slog.New(slog.DiscardHandler)
	_, err := newServer(cfg, logger)
	if err == nil || !strings.Contains(err.Error(), "history.per_room = 5 here, but the cluster runs with 100") {
		t.Fatalf("a node with another history.per_room: %v", err)
	}
}

// TestCluster_QuorumLostAnswers: with two of three nodes gone the log
// cannot store anything. A message sent to the survivor gets an error
// naming it (never a silent wait, never "nothing was stored" when a
// publish may have been), the connection keeps working, and the node
// still shuts down in time.
func TestCluster_QuorumLostAnswers(t *testing.T) {
	nodes := startCluster(t, 3, 3)
	alice, _ := signedIn(t, nodes[0], "alice")
	alice.join("lobby")
	alice.send("chat", map[string]string{"roomId": "lobby", "content": "before", "clientMsgId": "m-1"})
	alice.awaitMessage("before")
	nodes[1].Stop()
	nodes[2].Stop()

	start := time.Now()
	alice.send("chat", map[string]string{"roomId": "lobby", "content": "into the void", "clientMsgId": "m-2"})
	var e errorData
	deadline := time.After(handlerTimeout + 5*time.Second)
	for e.Code == "" {
		select {
		case f := <-alice.frames:
			if f.Type == "message" {
				t.Fatalf("a message was acknowledged without a quorum: %s", f.Data)
			}
			if f.Type == "error" {
				decodeInto(t, f, &e)
			}
		case <-deadline:
			t.Fatalf("no answer to a message %s after the quorum was lost", time.Since(start))
		}
	}
	// Each publish timed out, so it may have been stored: "nothing was
	// stored, try again" would invite a duplicate.
	if e.ClientMsgID != "m-2" || e.Code != codeUnconfirmed {
		t.Fatalf("error = %+v, want unconfirmed for m-2", e)
	}
	t.Logf("without a quorum, the answer %q came after %s: %s", e.Code, time.Since(start).Round(time.Millisecond), e.Message)
	// The connection is still served: a frame that needs no write is
	// answered at once.
	alice.send("history", map[string]string{"roomId": "lobby"})
	alice.await("history")

	start = time.Now()
	nodes[0].Stop()
	took := time.Since(start)
	t.Logf("the node stopped in %s", took.Round(time.Millisecond))
	if took > nodes[0].cfg.Server.ShutdownTimeout+5*time.Second {
		t.Errorf("the node took %s to stop without a quorum", took)
	}
}
