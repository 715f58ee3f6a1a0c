package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
