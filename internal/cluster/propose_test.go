package cluster

import (
	"testing"

	"parley/internal/store"
)

// TestDecodeEntry: a log entry is one command (as every entry was before
// commands were batched, so older streams still apply) or an array of
// them; anything else is an error the applier turns into a no-op.
func TestDecodeEntry(t *testing.T) {
	one, err := store.Envelope{ID: "x-1", Cmd: store.MarkRead{UserID: 1, Seq: 2}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	two, err := store.Envelope{ID: "x-2", Cmd: store.MarkRead{UserID: 3, Seq: 4}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	envs, err := decodeEntry(one)
	if err != nil || len(envs) != 1 || envs[0].ID != "x-1" {
		t.Fatalf("one command: %+v, %v", envs, err)
	}
	envs, err = decodeEntry([]byte("[" + string(one) + "," + string(two) + "]"))
	if err != nil || len(envs) != 2 || envs[0].ID != "x-1" || envs[1].ID != "x-2" {
		t.Fatalf("a batch: %+v, %v", envs, err)
	}
	if mr, ok := envs[1].Cmd.(store.MarkRead); !ok || mr.UserID != 3 || mr.Seq != 4 {
		t.Fatalf("the batch's second command = %#v", envs[1].Cmd)
	}
	for _, bad := range []string{"", "{", "[{", "42"} {
		if envs, err := decodeEntry([]byte(bad)); err == nil {
			t.Errorf("%q decoded to %+v", bad, envs)
		}
	}
}
