package main

import (
	"parley/internal/store"

	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// runInBackground calls run as main would and returns the URL it prints
// and a function that stops it and returns its error.
func runInBackground(t *testing.T, args ...string) (url string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, nil, nil, stdout, stderr) }()
	re := regexp.MustCompile(`open (http://\S+/) in your browser`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("run exited early: %v\nstderr: %s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("run printed no URL; stdout %q", stdout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var stopped bool
	var result error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case result = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("run did not return within 15s of cancellation")
			}
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return url, stop
}

func TestRun_ServesAndShutsDownGracefully(t *testing.T) {
	db := filepath.Join(t.TempDir(), "chat.db")
	url, stop := runInBackground(t, "serve", "-addr", "127.0.0.1:0", "-db", db)

	status, h, body := httpGet(t, url)
	if status != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("GET / = %d %.80q", status, body)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
		t.Fatalf("headers %v", h)
	}
	if status, _, body := httpGet(t, url+"healthz"); status != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("GET /healthz = %d %s", status, body)
	}

	wsURL := "ws" + strings.TrimPrefix(url, "http") + "ws"
	c := dial(t, wsURL)
	c.auth("yara", "yara-password")
	c.join("room")
	c.send("chat", map[string]string{"roomId": "room", "content": "last words"})
	c.await("message")

	// A second server on the same database refuses to start.
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", db}, nil, nil, &syncBuffer{}, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server: %v, want database in use", err)
	}

	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("run returned %v after shutdown", err)
	}
	var ce *websocket.CloseError
	if err := c.waitClosed(5 * time.Second); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("client saw %v, want close 1001", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %s", took)
	}

	// The database was closed cleanly and holds the message.
	s := openOffline(t, db)
	p, err := s.st.History(store.RoomConv("room"), 0, 10)
	if err != nil || len(p.Messages) != 1 || p.Messages[0].Content != "last words" {
		t.Fatalf("history after shutdown: %v %v", p.Messages, err)
	}
}

func TestRun_CommandLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"unknown command", []string{"frobnicate"}, true, `unknown command "frobnicate"`},
		{"unknown flag", []string{"serve", "-colour", "blue"}, true, "colour"},
		{"stray argument", []string{"serve", "extra"}, true, "extra"},
		{"missing config file", []string{"-config", filepath.Join(dir, "missing.yaml")}, false, "does not exist"},
		{"busy port", []string{"-addr", "256.0.0.1:1", "-db", filepath.Join(dir, "x.db")}, false, "listen on 256.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr := &syncBuffer{}
			err := run(context.Background(), tc.args, nil, nil, &syncBuffer{}, stderr)
			var u usageError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &u) != tc.usage {
				t.Fatalf("run %q = %v (usage error: %v), want %q (usage error: %v)", tc.args, err, errors.As(err, &u), tc.want, tc.usage)
			}
			if tc.usage && !strings.Contains(stderr.String(), "Usage") {
				t.Fatalf("no usage text on stderr: %q", stderr)
			}
		})
	}
}
