package main

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The smaller holes of issue 13, each attacked.

// TestHardening_MutedCannotReact: a mute silences reactions, which reach
// the whole room like messages; unmuted, the member reacts again.
func TestHardening_MutedCannotReact(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	owner, _ := signedIn(t, ts, "owner")
	owner.join("room")
	member, memberA := signedIn(t, ts, "member")
	member.join("room")
	owner.send("chat", map[string]string{"roomId": "room", "content": "react?"})
	m := member.awaitMessage("react?")
	owner.send("mute", map[string]any{"roomId": "room", "userId": memberA.UserID})
	member.await("muted")
	member.send("react", map[string]string{"roomId": "room", "messageId": m.ID, "emoji": "👍"})
	member.awaitError(codeMuted)
	owner.none("reaction")
	owner.send("unmute", map[string]any{"roomId": "room", "userId": memberA.UserID})
	member.await("unmuted")
	member.send("react", map[string]string{"roomId": "room", "messageId": m.ID, "emoji": "👍"})
	owner.await("reaction")
}

// TestHardening_MarkupIsAttachment: an SVG (or any text that opens a
// tag) is served as an attachment, never inline; plain text stays inline.
func TestHardening_MarkupIsAttachment(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	_, a := signedIn(t, ts, "uploader")
	for _, tc := range []struct {
		name, body, ctype, disposition string
	}{
		{"drawing.svg", `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`, "application/octet-stream", "attachment"},
		{"spaced.svg", "\ufeff \n <svg><script>alert(1)</script></svg>", "application/octet-stream", "attachment"},
		{"page.txt", "<custom-element onclick=alert(1)>hi</custom-element>", "application/octet-stream", "attachment"},
		{"notes.txt", "just notes, 2 < 3", "text/plain; charset=utf-8", "inline"},
	} {
		status, f := upload(t, ts, a.Token, tc.name, []byte(tc.body))
		if status != http.StatusCreated {
			t.Fatalf("upload %s: HTTP %d", tc.name, status)
		}
		_, h, _ := httpGet(t, ts.URL()+f.URL)
		if h.Get("Content-Type") != tc.ctype || !strings.HasPrefix(h.Get("Content-Disposition"), tc.disposition) {
			t.Errorf("%s served as %q, %q; want %q, %s", tc.name, h.Get("Content-Type"), h.Get("Content-Disposition"), tc.ctype, tc.disposition)
		}
	}
}

// TestHardening_OriginScheme: a page from https://HOST may not open a
// socket on http://HOST (or the reverse); a trusted TLS proxy says which
// scheme the client used, and server.public_url's origin is the
// server's own.
func TestHardening_OriginScheme(t *testing.T) {
	t.Parallel()
	try := func(ts *testServer, origin string, extra http.Header) int {
		t.Helper()
		h := http.Header{"Origin": {origin}}
		for k, v := range extra {
			h[k] = v
		}
		conn, resp, err := websocket.DefaultDialer.Dial(ts.WSURL(), h)
		if err == nil {
			conn.Close()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("dial with Origin %s: %v", origin, err)
		}
		return resp.StatusCode
	}
	plain := startServer(t, nil)
	if got := try(plain, "https://"+plain.addr, nil); got != http.StatusForbidden {
		t.Fatalf("https page on an http server: HTTP %d, want 403", got)
	}
	if got := try(plain, "http://"+plain.addr, nil); got != http.StatusSwitchingProtocols {
		t.Fatalf("its own origin: HTTP %d", got)
	}
	// A forwarded scheme from a peer that is not a trusted proxy is not believed.
	if got := try(plain, "https://"+plain.addr, http.Header{"X-Forwarded-Proto": {"https"}}); got != http.StatusForbidden {
		t.Fatalf("X-Forwarded-Proto from an untrusted peer: HTTP %d, want 403", got)
	}
	waitForLog(t, plain, "set server.public_url")

	cfg := testConfig(t.TempDir())
	cfg.Server.TrustedProxies = []string{"127.0.0.1"}
	cfg.Server.PublicURL = "https://chat.example.com"
	proxied := startServer(t, &cfg)
	if got := try(proxied, "https://"+proxied.addr, http.Header{"X-Forwarded-Proto": {"https"}}); got != http.StatusSwitchingProtocols {
		t.Fatalf("behind a trusted TLS proxy: HTTP %d", got)
	}
	if got := try(proxied, "http://"+proxied.addr, http.Header{"X-Forwarded-Proto": {"https"}}); got != http.StatusForbidden {
		t.Fatalf("an http page behind a TLS proxy: HTTP %d, want 403", got)
	}
	if got := try(proxied, "https://chat.example.com", nil); got != http.StatusSwitchingProtocols {
		t.Fatalf("the page from server.public_url: HTTP %d", got)
	}
}

// TestHardening_SignInDeadline: a socket that never signs in is closed
// with 1008 after server.sign_in_timeout; one that signed in stays.
func TestHardening_SignInDeadline(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Server.SignInTimeout = 500 * time.Millisecond
	ts := startServer(t, &cfg)
	member, _ := signedIn(t, ts, "member")
	idle := dial(t, ts.WSURL())
	opened := time.Now()
	var ce *websocket.CloseError
	if err := idle.waitClosed(5 * time.Second); !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("idle unauthenticated socket: %v, want close 1008", err)
	}
	if took := time.Since(opened); took < 400*time.Millisecond {
		t.Fatalf("closed after %s, before the deadline", took)
	}
	// The member's deadline passed before the idle socket's did.
	member.send("rooms", nil)
	member.await("rooms")
	waitForLog(t, ts, "not signed in in time")
}

// TestHardening_MetricsThroughProxy: a reverse proxy on the same host
// does not open /metrics to the world: forwarding headers from a peer
// that is not a trusted proxy are refused; a trusted proxy's client
// address is what the allowlist checks.
func TestHardening_MetricsThroughProxy(t *testing.T) {
	t.Parallel()
	get := func(ts *testServer, h http.Header) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL()+"/metrics", nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ts := startServer(t, nil)
	if got := get(ts, http.Header{}); got != http.StatusOK {
		t.Fatalf("metrics from loopback: %d", got)
	}
	for _, h := range []http.Header{
		{"X-Forwarded-For": {"203.0.113.9"}},
		{"Forwarded": {"for=203.0.113.9;proto=https"}},
		{"X-Real-Ip": {"203.0.113.9"}},
		{"X-Forwarded-For": {"127.0.0.1"}},
	} {
		if got := get(ts, h); got != http.StatusForbidden {
			t.Errorf("metrics through an untrusted proxy with %v: %d, want 403", h, got)
		}
	}
	cfg := testConfig(t.TempDir())
	cfg.Server.TrustedProxies = []string{"127.0.0.1"}
	trusted := startServer(t, &cfg)
	if got := get(trusted, http.Header{"X-Forwarded-For": {"203.0.113.9"}}); got != http.StatusForbidden {
		t.Fatalf("a trusted proxy's outside client: %d, want 403", got)
	}
	if got := get(trusted, http.Header{"X-Forwarded-For": {"127.0.0.1"}}); got != http.StatusOK {
		t.Fatalf("a trusted proxy's loopback client: %d", got)
	}
}

// TestHardening_ReadyzDiskFull: /readyz says not ready while the
// database's disk is full, and ready once space returns. (TestDiskFull
// fills a real disk where it can mount one.)
func TestHardening_ReadyzDiskFull(t *testing.T) {
	t.Parallel()
	var free atomic.Uint64
	free.Store(10 << 30)
	ts := startServerWith(t, nil, func(s *server) {
		s.diskFree = func() (uint64, error) { return free.Load(), nil }
	})
	if status, _, _ := httpGet(t, ts.URL()+"/readyz"); status != http.StatusOK {
		t.Fatalf("readyz with space: %d", status)
	}
	free.Store(4096)
	if status, _, body := httpGet(t, ts.URL()+"/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, "disk full") {
		t.Fatalf("readyz on a full disk: %d %s", status, body)
	}
	free.Store(10 << 30)
	if status, _, _ := httpGet(t, ts.URL()+"/readyz"); status != http.StatusOK {
		t.Fatalf("readyz once space returned: %d", status)
	}
}
