package main

import (
	"errors"
	"fmt"
	"os"
	"parley/internal/store"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dumpDatabase reads every bucket, sequence, key and value of a bbolt
// file into one map, for comparing two files' contents.
func dumpDatabase(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		out[prefix+"#seq"] = strconv.FormatUint(b.Sequence(), 10)
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+"/"+string(k), b.Bucket(k))
			}
			out[prefix+"/"+string(k)] = string(v)
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// statusNumber reads the number that pattern's group matches out of
// parley status's output.
func statusNumber(t *testing.T, out, pattern string) int64 {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("parley status has no %s:\n%s", pattern, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestCLI_StatusAndCompact fills a database with uploads, shows them in
// /metrics and parley status, deletes them, and compacts the free space
// away: the file shrinks, keeps every key and sequence, keeps its mode,
// and a server carries on with it.
func TestCLI_StatusAndCompact(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Uploads.MaxBytes = 1 << 20
	ts := startServer(t, &cfg)
	c, auth := signedIn(t, ts, "filer")
	c.join("archive")
	const files, size = 12, 512 << 10
	for i := range files {
		data := []byte(strings.Repeat(fmt.Sprintf("file %02d ", i), size/8))
		if status, _ := upload(t, ts, auth.Token, fmt.Sprintf("f%d.txt", i), data); status != 201 {
			t.Fatalf("upload %d: HTTP %d", i, status)
		}
	}
	for i := range 5 {
		c.send("chat", map[string]string{"roomId": "archive", "content": fmt.Sprintf("kept %d", i)})
		c.await("message")
	}
	m := scrape(t, ts.URL()+"/metrics")
	if m["parley_uploads"] != files || m["parley_uploads_bytes"] != files*size {
		t.Fatalf("metrics: parley_uploads %v, parley_uploads_bytes %v; want %d and %d", m["parley_uploads"], m["parley_uploads_bytes"], files, files*size)
	}
	db := ts.cfg.DB.Path
	out := mustCLI(t, "", "status", "-db", db)
	if !strings.Contains(out, "running: parley ") || statusNumber(t, out, `uploads:\s+(\d+) files`) != files ||
		statusNumber(t, out, `\((\d+) bytes;`) != files*size {
		t.Fatalf("status while serving:\n%s", out)
	}
	if _, err := cli(t, "", "compact", "-db", db); err == nil || !strings.Contains(err.Error(), "running") {
		t.Fatalf("compact while a server runs: %v", err)
	}
	// Without the admin socket, the database's lock still says no.
	if err := os.Remove(adminSocketPath(db)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "", "compact", "-db", db); !errors.Is(err, store.ErrDatabaseInUse) {
		t.Fatalf("compact of a locked database: %v", err)
	}
	ts.Stop()

	// What is not a parley database is refused and left as it was.
	for _, junk := range []string{"", "not a database"} {
		path := filepath.Join(t.TempDir(), "junk.db")
		writeFile(t, path, junk)
		if _, err := cli(t, "", "compact", "-db", path); !errors.Is(err, store.ErrNotParleyDB) {
			t.Fatalf("compact of %q: %v", junk, err)
		}
		if raw, _ := os.ReadFile(path); string(raw) != junk {
			t.Fatalf("compact changed a file that is not a database: %q", raw)
		}
	}

	// The uploads were never attached to a message: a day on, they go,
	// and leave their pages free inside the file.
	s := openOffline(t, db)
	s.at(time.Now().Add(48 * time.Hour))
	if n := s.must(store.Expire{}).Count; n < files {
		t.Fatalf("expire deleted %d, want the %d uploads at least", n, files)
	}
	s.Close()
	out = mustCLI(t, "", "status", "-db", db)
	free, fileSize := statusNumber(t, out, `of which \S+ \S+ \((\d+) bytes\) free`), statusNumber(t, out, `size:\s+\S+ \S+ \((\d+) bytes\)`)
	if !strings.Contains(out, "not running") || free < files*size/2 {
		t.Fatalf("status after deleting %d bytes of uploads:\n%s", files*size, out)
	}
	if err := os.Chmod(db, 0o640); err != nil {
		t.Fatal(err)
	}
	before := dumpDatabase(t, db)

	out = mustCLI(t, "", "compact", "-db", db)
	kept, _ := filepath.Glob(db + ".before-compact-*")
	if len(kept) != 1 || !strings.Contains(out, kept[0]) {
		t.Fatalf("compact kept %v; said %s", kept, out)
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > fileSize-free/2 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("compacted %d bytes with %d free to %d bytes, mode %o", fileSize, free, fi.Size(), fi.Mode().Perm())
	}
	after := dumpDatabase(t, db)
	if len(after) != len(before) {
		t.Fatalf("compaction changed the number of keys: %d -> %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("compaction changed %q", k)
		}
	}
	if got := dumpDatabase(t, kept[0]); len(got) != len(before) {
		t.Fatal("the kept copy is not the database as it was")
	}

	// A server carries on: old history is there, new messages get new ids.
	ts.Restart()
	c, _ = signedIn(t, ts, "filer")
	c.join("archive")
	c.send("chat", map[string]string{"roomId": "archive", "content": "after compaction"})
	c.awaitMessage("after compaction")
	history := allHistory(t, c, "archive")
	if len(history) != 6 || history[0].Content != "kept 0" || history[5].Content != "after compaction" || history[5].ID == history[4].ID {
		t.Fatalf("history after compaction: %+v", history)
	}
}
