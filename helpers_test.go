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
	"parley/internal/auth"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testServer is a real parley server on a random loopback port, with a
// real bbolt database in a temporary directory.
type testServer struct {
	t      testing.TB
	cfg    Config
	srv    *server
	addr   string // host:port
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	// prepare, when set, adjusts the server after it is built and before
	// it serves (tests inject handlers this way).
	prepare func(*server)
	// hasher hashes passwords: argon2id with cheap settings, unless a
	// test needs the real cost.
	hasher *auth.Hasher
}

// cheapArgon2 keeps argon2id's code path at a fraction of its cost, so the
// many sign-ups of the suite stay fast under -race; realArgon2 is for the
// tests that measure the cost.
var cheapArgon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}

// testConfig is the default configuration with a database in dir and a
// loopback listener.
func testConfig(dir string) Config {
	cfg := defaultConfig()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.DB.Path = filepath.Join(dir, "parley.db")
	cfg.Server.ShutdownTimeout = 3 * time.Second
	// Tests sign many users up from one loopback address; the limit has
	// its own test.
	cfg.Auth.SignupsPerIPPerHour = 0
	if os.Getenv("PARLEY_TEST_CLUSTER") == "1" {
		// The protocol suite again, through a one-node cluster's log
		// (.ci/run runs it so), which must behave as one server does.
		cfg.Cluster.Node, cfg.Cluster.Replicas = "solo", 1
		cfg.Cluster.NATS.Embedded.Listen = "127.0.0.1:" + freePort()
		cfg.Cluster.NATS.Embedded.ClusterListen = "127.0.0.1:" + freePort()
	}
	// Most tests sign people up freely; a new database would otherwise
	// take new members by invite link only (invites_test.go).
	cfg.Auth.Registration = "open"
	return cfg
}

// startServer starts a server with cfg, or testConfig(t.TempDir()) when
// cfg is nil, and stops it when the test ends.
func startServer(t testing.TB, cfg *Config) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith is startServer with a hook run before the server serves.
func startServerWith(t testing.TB, cfg *Config, prepare func(*server)) *testServer {
	t.Helper()
	return startTestServer(t, cfg, prepare, auth.NewHasher(cheapArgon2, 0))
}

// startServerArgon2 is startServer with the server's own password
// hashing, for tests that depend on what it costs.
func startServerArgon2(t testing.TB, cfg *Config) *testServer {
	t.Helper()
	return startTestServer(t, cfg, nil, auth.NewHasher(auth.DefaultArgon2(), 0))
}

func startTestServer(t testing.TB, cfg *Config, prepare func(*server), hasher *auth.Hasher) *testServer {
	t.Helper()
	if cfg == nil {
		c := testConfig(t.TempDir())
		cfg = &c
	}
	ts := &testServer{t: t, cfg: *cfg, logs: &syncBuffer{}, prepare: prepare, hasher: hasher}
	ts.start()
	t.Cleanup(func() {
		ts.Stop()
		if t.Failed() {
			// What the server said last is the likeliest clue.
			lines := strings.Split(strings.TrimSpace(ts.Logs()), "\n")
			t.Logf("the server's last log lines:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return ts
}

func (ts *testServer) start() {
	ts.t.Helper()
	logger := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := newServerWith(ts.cfg, logger, ts.hasher, time.Now)
	if err != nil {
		ts.t.Fatalf("start server: %v", err)
	}
	addr := ts.cfg.Server.Addr
	if ts.addr != "" {
		addr = ts.addr // a restart keeps the port, as a real restart would
	}
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		srv.closeStore()
		ts.t.Fatalf("listen: %v", err)
	}
	if ts.prepare != nil {
		ts.prepare(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.srv, ts.addr, ts.cancel, ts.done = srv, ln.Addr().String(), cancel, make(chan error, 1)
	ready := make(chan struct{})
	go func() { ts.done <- srv.serve(ctx, ln, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-ts.done:
		ts.t.Fatalf("serve: %v", err)
	}
}

// Stop shuts the server down gracefully and waits for it; it is safe to
// call twice.
func (ts *testServer) Stop() {
	ts.t.Helper()
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			ts.t.Errorf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		ts.t.Errorf("server did not stop within 15s")
	}
	ts.cancel = nil
}

// Restart stops the server and starts it again on the same port and database.
func (ts *testServer) Restart() {
	ts.t.Helper()
	ts.Stop()
	ts.start()
}

// URL is the server's base URL, such as http://127.0.0.1:43121.
func (ts *testServer) URL() string { return "http://" + ts.addr }

// WSURL is the WebSocket endpoint.
func (ts *testServer) WSURL() string { return "ws://" + ts.addr + "/ws" }

// Logs returns what the server has logged so far.
func (ts *testServer) Logs() string { return ts.logs.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// wsClient is a real WebSocket client speaking the protocol. Frames are
// read by a background goroutine into a channel so tests can wait for a
// frame of a given type with a timeout.
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan Frame
	closed chan struct{}
	// closeErr is the read error that ended the connection, set before closed closes.
	closeErr error

	wmu   sync.Mutex // serialises writes, guards syncs
	syncs int        // sync requests sent
}

// dial opens a connection without an Origin header, as a script would,
// and reads the "connected" frame.
func dial(t testing.TB, url string) *wsClient {
	t.Helper()
	return dialHeader(t, url, nil)
}

func dialHeader(t testing.TB, url string, h http.Header) *wsClient {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan Frame, 4096), closed: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	c.expect("connected")
	return c
}

func (c *wsClient) readLoop() {
	defer close(c.closed)
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			c.closeErr = err
			return
		}
		var f Frame
		if err := json.Unmarshal(msg, &f); err != nil {
			c.closeErr = fmt.Errorf("server sent invalid JSON %q: %w", msg, err)
			return
		}
		c.frames <- f
	}
}

// send writes a frame with the given type and data.
func (c *wsClient) send(typ string, data any) {
	c.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		c.t.Fatalf("marshal %s: %v", typ, err)
	}
	c.sendRaw(mustJSON(c.t, Frame{Type: typ, Data: raw}))
}

// trySend is send for a connection the server may close meanwhile.
func (c *wsClient) trySend(typ string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	b, err := json.Marshal(Frame{Type: typ, Data: raw})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// sync sends the server a request it answers at once and returns the
// frames that arrive before the answer. The server writes a connection's
// frames in order, so a frame queued for it before the request was read
// arrives before the answer: a frame that should not come, and was not
// among these, did not come. The request is an unknown frame type, which
// works signed in or not.
func (c *wsClient) sync() []Frame {
	c.t.Helper()
	c.wmu.Lock()
	c.syncs++
	marker := fmt.Sprintf("sync-%d", c.syncs)
	c.wmu.Unlock()
	c.sendRaw([]byte(`{"type":"` + marker + `"}`))
	var before []Frame
	for {
		f := c.next()
		if f.Type == "error" {
			var e errorData
			decodeInto(c.t, f, &e)
			if e.Code == codeUnknownType && strings.HasSuffix(e.Message, marker) {
				return before
			}
		}
		before = append(before, f)
	}
}

// none fails if a frame of one of the given types comes before a sync;
// other frames are skipped.
func (c *wsClient) none(types ...string) {
	c.t.Helper()
	for _, f := range c.sync() {
		if contains(types, f.Type) {
			c.t.Fatalf("unexpected %s frame: %s", f.Type, f.Data)
		}
	}
}

// sendRaw writes bytes as one text frame.
func (c *wsClient) sendRaw(b []byte) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

const frameWait = 5 * time.Second

// next returns the next frame of any type.
func (c *wsClient) next() Frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		// Frames read before the close are still in the channel.
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("connection closed while waiting for a frame: %v", c.closeErr)
	case <-time.After(frameWait):
		c.t.Fatalf("no frame within %s", frameWait)
	}
	return Frame{}
}

// expect returns the next frame, failing unless it has the given type.
// Frames of other types are skipped only if listed in skip.
func (c *wsClient) expect(typ string, skip ...string) Frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type == typ {
			return f
		}
		if !contains(skip, f.Type) {
			c.t.Fatalf("want %s frame, got %s: %s", typ, f.Type, f.Data)
		}
	}
}

// await skips frames until one of the given type arrives.
func (c *wsClient) await(typ string) Frame {
	c.t.Helper()
	deadline := time.After(frameWait)
	for {
		select {
		case f := <-c.frames:
			if f.Type == typ {
				return f
			}
		case <-c.closed:
			// Frames read before the close are still in the channel.
			for {
				select {
				case f := <-c.frames:
					if f.Type == typ {
						return f
					}
					continue
				default:
				}
				break
			}
			c.t.Fatalf("connection closed while waiting for %s: %v", typ, c.closeErr)
		case <-deadline:
			c.t.Fatalf("no %s frame within %s", typ, frameWait)
		}
	}
}

// awaitError skips frames until an error arrives and checks its code.
func (c *wsClient) awaitError(code string) errorData {
	c.t.Helper()
	var e errorData
	decodeInto(c.t, c.await("error"), &e)
	if e.Code != code {
		c.t.Fatalf("want error %s, got %s (%s)", code, e.Code, e.Message)
	}
	return e
}

// awaitMessage skips frames until a message (room or direct) with the
// given content arrives.
func (c *wsClient) awaitMessage(content string) messageFrame {
	c.t.Helper()
	deadline := time.After(frameWait)
	for {
		select {
		case f := <-c.frames:
			if f.Type != "message" && f.Type != "privateMessage" && f.Type != "privateMessageSent" {
				continue
			}
			var m messageFrame
			decodeInto(c.t, f, &m)
			if m.Content == content {
				return m
			}
		case <-c.closed:
			c.t.Fatalf("connection closed while waiting for message %q: %v", content, c.closeErr)
		case <-deadline:
			c.t.Fatalf("no message %q within %s", content, frameWait)
		}
	}
}

// expectError reads the next frame and checks it is an error with code;
// frames of the types in skip may come first.
func (c *wsClient) expectError(code string, skip ...string) errorData {
	c.t.Helper()
	f := c.expect("error", skip...)
	var e errorData
	decodeInto(c.t, f, &e)
	if e.Code != code {
		c.t.Fatalf("want error %s, got %s (%s)", code, e.Code, e.Message)
	}
	return e
}

// quiet fails if any frame comes before a sync.
func (c *wsClient) quiet() {
	c.t.Helper()
	if before := c.sync(); len(before) > 0 {
		c.t.Fatalf("unexpected %s frame: %s", before[0].Type, before[0].Data)
	}
}

// waitClosed waits for the server to close the connection and returns the
// close error (a *websocket.CloseError when the server sent a close frame).
func (c *wsClient) waitClosed(d time.Duration) error {
	c.t.Helper()
	select {
	case <-c.closed:
		return c.closeErr
	case <-time.After(d):
		c.t.Fatalf("connection still open after %s", d)
		return nil
	}
}

// auth signs in (registering on first use) and returns the answer.
func (c *wsClient) auth(username, password string) authenticatedData {
	c.t.Helper()
	c.send("auth", map[string]string{"username": username, "password": password})
	var a authenticatedData
	decodeInto(c.t, c.expect("authenticated"), &a)
	return a
}

// join joins a room and returns the answer; frames that may race with it
// (presence, messages) are skipped.
func (c *wsClient) join(room string) joinedData {
	c.t.Helper()
	c.send("join", map[string]string{"roomId": room})
	var j joinedData
	decodeInto(c.t, c.expect("joined", "userOnline", "userOffline", "userJoined", "message", "typing"), &j)
	return j
}

// signedIn dials and signs in a user.
func signedIn(t testing.TB, ts *testServer, username string) (*wsClient, authenticatedData) {
	t.Helper()
	c := dial(t, ts.WSURL())
	return c, c.auth(username, username+"-password")
}

func decodeInto(t testing.TB, f Frame, v any) {
	t.Helper()
	if err := json.Unmarshal(f.Data, v); err != nil {
		t.Fatalf("decode %s data %s: %v", f.Type, f.Data, err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// httpGet fetches a URL and returns status, headers and body.
func httpGet(t testing.TB, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// freePort is a loopback port that was free a moment ago.
func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
