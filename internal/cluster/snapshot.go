package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"parley/internal/store"

	"github.com/nats-io/nats.go/jetstream"
)

// Snapshots let a node start without replaying the whole log: a node
// stores a hot backup of its database, with the log position it stands
// at, in an object store bucket, and a new node (or one whose position
// the stream no longer holds) starts from the newest and replays the
// rest. A single server's database, started as the first node of a new
// cluster, becomes the first snapshot: that is the whole migration.

const (
	snapshotsBucket = "PARLEY_SNAPSHOTS"
	snapshotName    = "latest"
	clusterIDKey    = "cluster-id"
	originKey       = "origin"
)

// ErrNoSnapshot: the cluster has no snapshot yet.
var ErrNoSnapshot = errors.New("the cluster has no snapshot")

// SnapshotInfo says what a snapshot holds.
type SnapshotInfo struct {
	Seq  uint64 // the log position it stands at
	Node string // who took it
	Size uint64
	Time time.Time
}

// LatestSnapshot describes the newest snapshot.
func (n *Node) LatestSnapshot(ctx context.Context) (SnapshotInfo, error) {
	var info *jetstream.ObjectInfo
	err := n.retry(ctx, "read the snapshot's description", func(ctx context.Context) error {
		var err error
		info, err = n.snaps.GetInfo(ctx, snapshotName)
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return SnapshotInfo{}, ErrNoSnapshot
	} else if err != nil {
		return SnapshotInfo{}, err
	}
	seq, err := strconv.ParseUint(info.Metadata["seq"], 10, 64)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("the snapshot names no log position: %q", info.Metadata["seq"])
	}
	return SnapshotInfo{Seq: seq, Node: info.Metadata["node"], Size: info.Size, Time: info.ModTime}, nil
}

// PutSnapshot stores a snapshot of st as the newest, unless the newest
// already stands at its position or later.
func (n *Node) PutSnapshot(ctx context.Context, st *store.Store) (SnapshotInfo, error) {
	// The copy is written to a file first: the object store reads what it
	// puts at its own pace, and a read transaction must not wait on it.
	tmp, err := os.CreateTemp("", "parley-snapshot-*")
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	seq, size, err := st.Snapshot(tmp)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("take a snapshot: %w", err)
	}
	if latest, err := n.LatestSnapshot(ctx); err == nil && latest.Seq >= seq && seq > 0 {
		return latest, nil
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return SnapshotInfo{}, err
	}
	meta := jetstream.ObjectMeta{Name: snapshotName, Metadata: map[string]string{
		"seq": strconv.FormatUint(seq, 10), "node": n.cfg.Node}}
	if _, err := n.snaps.Put(ctx, meta, tmp); err != nil {
		return SnapshotInfo{}, fmt.Errorf("store the snapshot: %w", err)
	}
	n.log.Info("stored a snapshot", "seq", seq, "bytes", size)
	return SnapshotInfo{Seq: seq, Node: n.cfg.Node, Size: uint64(size), Time: time.Now()}, nil
}

// fetchSnapshot writes the newest snapshot to path, through a temporary
// file beside it, and checks it is a sound database.
func (n *Node) fetchSnapshot(ctx context.Context, path string) (SnapshotInfo, error) {
	info, err := n.LatestSnapshot(ctx)
	if err != nil {
		return SnapshotInfo{}, err
	}
	r, err := n.snaps.Get(ctx, snapshotName)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("fetch the snapshot: %w", err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".snapshot-*")
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return SnapshotInfo{}, fmt.Errorf("fetch the snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return SnapshotInfo{}, err
	}
	if err := tmp.Close(); err != nil {
		return SnapshotInfo{}, err
	}
	if err := store.CheckFile(tmp.Name()); err != nil {
		return SnapshotInfo{}, fmt.Errorf("the snapshot does not check out: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return SnapshotInfo{}, err
	}
	n.log.Info("started from a snapshot", "seq", info.Seq, "taken_by", info.Node, "bytes", info.Size)
	return info, nil
}

// clusterID is the cluster's identity, made by its first node.
func (n *Node) clusterID(ctx context.Context) (string, error) {
	raw := make([]byte, 8)
	rand.Read(raw)
	id, err := n.createOrRead(ctx, clusterIDKey, []byte(hex.EncodeToString(raw)))
	return string(id), err
}

// originGrace is how long a node without data waits for a node with a
// single server's database to make the cluster from it, before the
// cluster starts empty.
const originGrace = 5 * time.Second

// emptyOrigin marks a cluster that started with no data.
const emptyOrigin = "-"

// OpenStore opens this node's database, made ready to apply the
// cluster's log:
//
//   - a node without a database (or with an empty one) starts from the
//     newest snapshot, if the cluster has one;
//   - a single server's database becomes the cluster's state and first
//     snapshot, if it is the first the cluster sees (nodes without data
//     wait a few seconds for one);
//   - a database whose position the stream no longer holds is moved aside
//     (kept, renamed) and replaced by the newest snapshot;
//   - a database of another cluster, or a single server's database
//     joining a cluster that has state of its own, is refused.
func (n *Node) OpenStore(ctx context.Context, path string, opts store.Options) (*store.Store, error) {
	id, err := n.clusterID(ctx)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		if _, err := n.fetchSnapshot(ctx, path); err != nil && !errors.Is(err, ErrNoSnapshot) {
			return nil, err
		}
	}
	st, err := store.Open(path, opts)
	if err != nil {
		return nil, err
	}
	mine, empty, err := st.Cluster()
	if err != nil {
		st.Close()
		return nil, err
	}
	switch {
	case mine == id:
	case mine != "":
		st.Close()
		return nil, fmt.Errorf("database %s belongs to another cluster (%s, not %s): move it away to join this one", path, mine, id)
	case !empty:
		if st, err = n.becomeOrigin(ctx, st, id, path); err != nil {
			return nil, err
		}
	default:
		if st, err = n.joinEmpty(ctx, st, id, path, opts); err != nil {
			return nil, err
		}
	}
	return n.catchUpFrom(ctx, st, path, opts)
}

// becomeOrigin makes a single server's database the cluster's first
// state, if no other node's is.
func (n *Node) becomeOrigin(ctx context.Context, st *store.Store, id, path string) (*store.Store, error) {
	origin, err := n.createOrRead(ctx, originKey, []byte(n.cfg.Node))
	if err != nil {
		st.Close()
		return nil, err
	}
	if string(origin) != n.cfg.Node {
		st.Close()
		from := "no data"
		if string(origin) != emptyOrigin {
			from = "node " + string(origin) + "'s database"
		}
		return nil, fmt.Errorf("database %s holds a single server's data, but the cluster started from %s: "+
			"move it away to join; to make a cluster from it, start its node first, with the others", path, from)
	}
	if err := st.JoinCluster(id, 0); err != nil {
		st.Close()
		return nil, err
	}
	if _, err := n.PutSnapshot(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	n.log.Info("this database is the cluster's first state", "db", path)
	return st, nil
}

// joinEmpty prepares a node without data: it starts from the snapshot
// of a node that made the cluster from its database, or, when none does
// within originGrace, the cluster starts empty.
func (n *Node) joinEmpty(ctx context.Context, st *store.Store, id, path string, opts store.Options) (*store.Store, error) {
	origin, err := n.waitOrigin(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	if origin == emptyOrigin {
		if err := st.JoinCluster(id, 0); err != nil {
			st.Close()
			return nil, err
		}
		return st, nil
	}
	// Another node's database is the cluster's state: start from its
	// snapshot, once it has stored one.
	st.Close()
	for {
		if _, err := n.fetchSnapshot(ctx, path); err == nil {
			break
		} else if !errors.Is(err, ErrNoSnapshot) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for node %s's snapshot: %w", origin, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return store.Open(path, opts)
}

// waitOrigin says which node's database the cluster started from, or
// emptyOrigin; it waits originGrace for a node with data to say so.
func (n *Node) waitOrigin(ctx context.Context) (string, error) {
	grace := originGrace
	if n.cfg.URL == "" && len(n.cfg.Embedded.Routes) == 0 {
		grace = 0 // a cluster of one: no other node can bring data
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		v, err := n.getKey(ctx, originKey)
		if err == nil {
			return string(v), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	v, err := n.createOrRead(ctx, originKey, []byte(emptyOrigin))
	return string(v), err
}

// catchUpFrom replaces a database whose position the stream no longer
// holds by the newest snapshot, keeping the old file beside it.
func (n *Node) catchUpFrom(ctx context.Context, st *store.Store, path string, opts store.Options) (*store.Store, error) {
	var state jetstream.StreamState
	if err := n.retry(ctx, "read stream "+streamName, func(ctx context.Context) error {
		s, err := n.js.Stream(ctx, streamName)
		if err == nil {
			state = s.CachedInfo().State
		}
		return err
	}); err != nil {
		st.Close()
		return nil, err
	}
	applied := st.AppliedSeq()
	if state.Msgs == 0 || state.FirstSeq <= applied+1 {
		return st, nil
	}
	st.Close()
	aside := fmt.Sprintf("%s.behind-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("move the database that is behind the log aside: %w", err)
	}
	n.log.Warn("the database is behind what the log keeps; starting from the newest snapshot",
		"applied", applied, "log_begins", state.FirstSeq, "kept_as", aside)
	info, err := n.fetchSnapshot(ctx, path)
	if err != nil {
		return nil, err
	}
	if info.Seq+1 < state.FirstSeq {
		return nil, fmt.Errorf("the newest snapshot stands at %d, but the log begins at %d: no node can catch up; "+
			"keep snapshots more often than the log's retention", info.Seq, state.FirstSeq)
	}
	return store.Open(path, opts)
}

// KeepSnapshots stores a snapshot every interval while this node has
// applied commands the newest one lacks, until ctx ends.
func (n *Node) KeepSnapshots(ctx context.Context, st *store.Store, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		latest, err := n.LatestSnapshot(ctx)
		if err != nil && !errors.Is(err, ErrNoSnapshot) {
			n.log.Warn("read the newest snapshot", "err", err)
			continue
		}
		if st.AppliedSeq() <= latest.Seq && err == nil {
			continue
		}
		if _, err := n.PutSnapshot(ctx, st); err != nil {
			n.log.Warn("store a snapshot", "err", err)
		}
	}
}
