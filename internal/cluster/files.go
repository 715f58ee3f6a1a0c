package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Files keeps uploaded files' bytes in a replicated JetStream Object
// Store bucket, so any node serves any file and the log carries only
// their metadata.
type Files struct {
	obj jetstream.ObjectStore
}

// Files is the bucket of uploads.
func (n *Node) Files() *Files { return &Files{obj: n.files} }

// Put stores a file's bytes under its id; it returns once a quorum of
// replicas has them.
func (f *Files) Put(ctx context.Context, id string, data []byte) error {
	if _, err := f.obj.PutBytes(ctx, id, data); err != nil {
		return fmt.Errorf("store file %s in the cluster: %w", id, err)
	}
	return nil
}

// ErrNoFile: the bucket has no file by that id.
var ErrNoFile = errors.New("no such file in the cluster")

// Open reads a file's bytes.
func (f *Files) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	r, err := f.obj.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, ErrNoFile
	} else if err != nil {
		return nil, fmt.Errorf("read file %s from the cluster: %w", id, err)
	}
	return r, nil
}

// Sweep deletes the files older than grace that keep(id) says no longer
// belong to anything (their upload was deleted, trimmed, or never sent).
// Any node may sweep: deleting twice is harmless.
func (f *Files) Sweep(ctx context.Context, grace time.Duration, keep func(id string) bool) (int, error) {
	infos, err := f.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("list the cluster's files: %w", err)
	}
	n := 0
	for _, info := range infos {
		if time.Since(info.ModTime) < grace || keep(info.Name) {
			continue
		}
		if err := f.obj.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return n, fmt.Errorf("delete file %s from the cluster: %w", info.Name, err)
		}
		n++
	}
	return n, nil
}
