package cluster

import (
	"bytes"
	"testing"

	"parley/internal/store"
)

// TestDecodeEntry: a log entry is one command (as every entry was before
// commands were batched, so older streams still apply) or an array of
// them. A command that does not decode becomes a placeholder in its
// place, which apply refuses, and the others of its batch still apply.
func TestDecodeEntry(t *testing.T) {
	one, err := store.Envelope{ID: "x-1", Cmd: store.MarkRead{UserID: 1, Seq: 2}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	two, err := store.Envelope{ID: "x-2", Cmd: store.MarkRead{UserID: 3, Seq: 4}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	envs, bad, err := decodeEntry(one, 7)
	if err != nil || bad != 0 || len(envs) != 1 || envs[0].ID != "x-1" {
		t.Fatalf("one command: %+v, %d, %v", envs, bad, err)
	}
	envs, bad, err = decodeEntry([]byte("["+string(one)+","+string(two)+"]"), 7)
	if err != nil || bad != 0 || len(envs) != 2 || envs[0].ID != "x-1" || envs[1].ID != "x-2" {
		t.Fatalf("a batch: %+v, %d, %v", envs, bad, err)
	}
	if mr, ok := envs[1].Cmd.(store.MarkRead); !ok || mr.UserID != 3 || mr.Seq != 4 {
		t.Fatalf("the batch's second command = %#v", envs[1].Cmd)
	}

	// A newer build's command, between two this build knows.
	unknown := bytes.Replace(two, []byte(`"markRead"`), []byte(`"somethingNewer"`), 1)
	if bytes.Equal(unknown, two) {
		t.Fatalf("the command's type is not where the test expects it: %s", two)
	}
	envs, bad, err = decodeEntry([]byte("["+string(one)+","+string(unknown)+","+string(two)+"]"), 7)
	if err == nil || bad != 1 || len(envs) != 3 {
		t.Fatalf("a batch with an unknown command: %+v, %d, %v", envs, bad, err)
	}
	if envs[0].ID != "x-1" || envs[1].Cmd != nil || envs[1].ID != "undecodable-7-1" || envs[2].ID != "x-2" {
		t.Fatalf("a batch with an unknown command decoded to %+v", envs)
	}

	for _, junk := range []string{"", "{", "[{", "42", "[]"} {
		envs, bad, err := decodeEntry([]byte(junk), 9)
		if err == nil || bad != 1 || len(envs) != 1 || envs[0].Cmd != nil {
			t.Errorf("%q decoded to %+v, %d, %v; want one placeholder and an error", junk, envs, bad, err)
		}
	}
}
