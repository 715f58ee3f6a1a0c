package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"parley/internal/store"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCLI_FlagsAfterArguments: flags go where people type them, before or
// after the name or file.
func TestCLI_FlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "parley.db")
	backup := filepath.Join(dir, "b.db")
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"user", "add", "bob", "-db", db}, "bob-password\n", "created user bob"},
		{[]string{"user", "add", "carol", "-db=" + db}, "carol-password\n", "created user carol"},
		{[]string{"user", "admin", "carol", "-db", db, "-revoke"}, "", "carol is no longer an admin"},
		{[]string{"user", "add", "-db", db, "--", "dave"}, "dave-password\n", "created user dave"},
		{[]string{"user", "list", "-db", db}, "", "carol"},
		{[]string{"backup", backup, "-db", db}, "", "backed up"},
		{[]string{"status", "-db", db}, "", "accounts:  3"},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			if out := mustCLI(t, tc.stdin, tc.args...); !strings.Contains(out, tc.want) {
				t.Fatalf("parley %s: %q, want %q", strings.Join(tc.args, " "), out, tc.want)
			}
		})
	}
	// The number of arguments is still checked, wherever the flags are.
	if _, err := cli(t, "", "user", "add", "bob", "extra", "-db", db); err == nil || !strings.Contains(err.Error(), "got 2") {
		t.Fatalf("user add with two names: %v", err)
	}
	if _, err := cli(t, "", "backup", "-db", db); err == nil || !strings.Contains(err.Error(), "got 0") {
		t.Fatalf("backup without a file: %v", err)
	}
}

// TestCLI_BackupToStandardOutput: "-" is standard output for backup and
// standard input for restore, never a file named "-".
func TestCLI_BackupToStandardOutput(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "parley.db")
	mustCLI(t, "owner-password\n", "user", "add", "owner", "-db", db)

	stdout, stderr, err := cliEnv(t, nil, "", "backup", "-db", db, "-")
	if err != nil {
		t.Fatalf("backup -: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "to standard output") || strings.Contains(stdout, "backed up") {
		t.Fatalf("the report must go to stderr, the copy alone to stdout; stderr %q", stderr)
	}
	copyPath := filepath.Join(dir, "piped.db")
	writeFile(t, copyPath, stdout)
	if err := store.CheckFile(copyPath); err != nil {
		t.Fatalf("the copy on standard output is not a sound database: %v", err)
	}
	for _, p := range []string{"-", filepath.Join(dir, "-")} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("backup - wrote a file named %s", p)
		}
	}

	// While a server runs, the copy comes through its admin socket.
	cfg := testConfig(t.TempDir())
	ts := startServer(t, &cfg)
	signedIn(t, ts, "live")
	live, stderr, err := cliEnv(t, nil, "", "backup", "-", "-db", ts.cfg.DB.Path)
	if err != nil || !strings.Contains(stderr, "through the running server") {
		t.Fatalf("backup - while serving: %v %s", err, stderr)
	}
	ts.Stop()

	// restore - takes the copy from standard input, and refuses junk
	// without touching the database or leaving files behind.
	before, _ := os.ReadDir(dir)
	if _, _, err := cliEnv(t, nil, "not a database", "restore", "-", "-db", db); err == nil {
		t.Fatal("restore - accepted junk on standard input")
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Fatalf("a refused restore left files: %v -> %v", names(before), names(after))
	}
	out, _, err := cliEnv(t, nil, live, "restore", "-", "-db", db)
	if err != nil || !strings.Contains(out, "from standard input") {
		t.Fatalf("restore -: %v %s", err, out)
	}
	if list := mustCLI(t, "", "user", "list", "-db", db); !strings.Contains(list, "live") || strings.Contains(list, "owner") {
		t.Fatalf("after restore - from the live server's copy: %s", list)
	}
}

func names(entries []fs.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// serviceUID and serviceGID stand for the parley user that a systemd
// unit runs as, in the tests that run commands as root.
const serviceUID, serviceGID = 4242, 4243

// serviceDir makes a directory, owned by the service user, that the
// service user can reach (t.TempDir's parents are root's alone), and a copy
// of the parley binary in it that the service user may run.
func serviceDir(t *testing.T) (dir, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to act as root does on a server")
	}
	base, err := os.MkdirTemp("", "parley-service-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	built, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(base, "parley")
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(base, "data")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, serviceUID, serviceGID); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// asServiceUser runs the parley binary as the service user, as systemd
// would, and fails the test unless it succeeds.
func asServiceUser(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: serviceUID, Gid: serviceGID}}
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("as the service user, parley %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func ownerAndMode(t *testing.T, path string) (int, int, fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), fi.Mode().Perm()
}

// TestCLI_RootLeavesTheDatabaseToTheServiceUser runs restore and user add
// as root, as an operator does with sudo, and checks the service's user
// can still open the database afterwards.
func TestCLI_RootLeavesTheDatabaseToTheServiceUser(t *testing.T) {
	dir, bin := serviceDir(t)
	db := filepath.Join(dir, "parley.db")

	// A new database made by root belongs to its directory's owner.
	mustCLI(t, "owner-password\n", "user", "add", "owner", "-db", db)
	if uid, gid, mode := ownerAndMode(t, db); uid != serviceUID || gid != serviceGID || mode != 0o600 {
		t.Fatalf("new database made by root: owner %d:%d mode %o, want %d:%d 0600", uid, gid, mode, serviceUID, serviceGID)
	}
	asServiceUser(t, bin, "user", "list", "-db", db)

	backup := filepath.Join(t.TempDir(), "b.db")
	mustCLI(t, "", "backup", backup, "-db", db)
	if uid, _, _ := ownerAndMode(t, backup); uid != 0 {
		t.Fatalf("a backup file belongs to who made it; got uid %d", uid)
	}
	// The operator loosened the mode for a backup group; restore keeps it.
	if err := os.Chmod(db, 0o640); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "", "restore", backup, "-db", db)
	if uid, gid, mode := ownerAndMode(t, db); uid != serviceUID || gid != serviceGID || mode != 0o640 {
		t.Fatalf("restored by root: owner %d:%d mode %o, want %d:%d 0640\n%s", uid, gid, mode, serviceUID, serviceGID, out)
	}
	if list := asServiceUser(t, bin, "user", "list", "-db", db); !strings.Contains(list, "owner") {
		t.Fatalf("the service user cannot read the restored database: %s", list)
	}

	// Restoring where no database is yet: the directory's owner, 0600.
	fresh := filepath.Join(dir, "fresh.db")
	mustCLI(t, "", "restore", "-db", fresh, backup)
	if uid, gid, mode := ownerAndMode(t, fresh); uid != serviceUID || gid != serviceGID || mode != 0o600 {
		t.Fatalf("restored to a new file by root: owner %d:%d mode %o", uid, gid, mode)
	}
	asServiceUser(t, bin, "user", "list", "-db", fresh)
}
