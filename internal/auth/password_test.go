package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHasher_ConcurrencyCap(t *testing.T) {
	h := NewHasher(Argon2Params{Memory: 1024, Time: 1, Threads: 1}, 1)
	h.slots <- struct{}{} // one hash in progress fills the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "password"); !errors.Is(err, ErrBusy) {
		t.Fatalf("hash with the slot taken: %v, want ErrBusy", err)
	}
	<-h.slots
	if _, err := h.Hash(context.Background(), "password"); err != nil {
		t.Fatalf("hash with the slot free: %v", err)
	}
}
