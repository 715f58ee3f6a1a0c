package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliEnv runs a parley command in-process with an environment, and
// returns its standard output and standard error apart.
func cliEnv(t *testing.T, environ []string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	err = run(context.Background(), args, environ, strings.NewReader(stdin), out, errOut)
	return out.String(), errOut.String(), err
}

// TestRun_BusyPortLeavesNoDatabase: a port that is taken is an error
// before anything touches the disk.
func TestRun_BusyPortLeavesNoDatabase(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	db := filepath.Join(t.TempDir(), "new.db")
	_, _, err = cliEnv(t, nil, "", "serve", "-addr", busy.Addr().String(), "-db", db)
	if err == nil || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Fatalf("serve on a busy port: %v", err)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("serve on a busy port left a new database behind")
	}
}

// serveLogs starts parley serve with environ until it is ready, stops it,
// and returns what it logged.
func serveLogs(t *testing.T, environ []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), environ, nil, stdout, stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "parley is running") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start: %s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	return stderr.String()
}

// TestRun_WarnsBehindProxyWithoutPublicURL: behind a reverse proxy, links
// parley hands out cannot know the public address unless told.
func TestRun_WarnsBehindProxyWithoutPublicURL(t *testing.T) {
	const warning = "server.public_url is not set"
	for _, tc := range []struct {
		name    string
		environ []string
		addr    string
		warn    bool
	}{
		{"loopback only", nil, "127.0.0.1:0", true},
		{"trusted proxies", []string{"PARLEY_SERVER_TRUSTED_PROXIES=10.0.0.1"}, "127.0.0.1:0", true},
		{"loopback with public_url", []string{"PARLEY_SERVER_PUBLIC_URL=https://chat.example.com"}, "127.0.0.1:0", false},
		{"every address, no proxy", nil, ":0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := serveLogs(t, tc.environ, "-addr", tc.addr, "-db", filepath.Join(t.TempDir(), "p.db"))
			if strings.Contains(logs, warning) != tc.warn {
				t.Fatalf("warned %v, want %v; logs:\n%s", !tc.warn, tc.warn, logs)
			}
		})
	}
}
