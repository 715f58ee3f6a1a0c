// Package cluster runs parley as one node of several on NATS JetStream:
// commands go into one replicated stream, every node applies all of them
// in stream order to its own bbolt file with the store's own apply, and
// ephemeral state (presence, typing) travels on core NATS subjects. Each
// node embeds a NATS server of its own, or connects to a NATS cluster by
// URL. It imports the store, never the program: what the program needs
// arrives as a Log (the command log), a Presence and a FileStore.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is one node's cluster settings.
type Config struct {
	Node     string // this node's name, unique in the cluster
	Replicas int    // copies of the log (and files, snapshots) the cluster keeps
	URL      string // external NATS servers, comma-separated; empty runs one embedded
	// Monitor lists the external servers' monitoring endpoints
	// (http://host:8222), where parley checks that they fsync every write.
	Monitor  []string
	Embedded Embedded
	// Settings are the values of this node's settings that change what
	// apply does; every node of a cluster must have the same ones.
	Settings map[string]string
}

// Embedded is the NATS server a node runs inside itself.
type Embedded struct {
	Listen        string   // client address, HOST:PORT
	ClusterListen string   // route address for the other NATS servers, HOST:PORT
	Routes        []string // the other servers' route URLs, nats://host:port
	StoreDir      string   // where JetStream keeps its files
}

// Names of what the cluster keeps in JetStream.
const (
	streamName   = "PARLEY_LOG"
	logSubject   = "parley.log"
	settingsKV   = "PARLEY_SETTINGS"
	filesBucket  = "PARLEY_FILES"
	dupWindow    = 2 * time.Minute // a retried publish within it is applied once
	clusterName  = "parley"
	startTimeout = 2 * time.Minute // how long a node waits for the cluster to form
)

// Node is this process's place in the cluster: its NATS server (when
// embedded), its connection, and the stream.
type Node struct {
	cfg   Config
	log   *slog.Logger
	srv   *server.Server // nil with external NATS
	nc    *nats.Conn
	js    jetstream.JetStream
	kv    jetstream.KeyValue    // settings and the cluster's identity
	files jetstream.ObjectStore // uploaded bytes
	snaps jetstream.ObjectStore // database snapshots

	leaderMu sync.Mutex // guards leader and leaderAt
	leader   string
	leaderAt time.Time
}

// Start starts the embedded NATS server (or connects to the external
// one), waits for the cluster to form, makes sure the log stream exists
// with fsync on every write, and checks this node's settings against the
// cluster's.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Node, error) {
	n := &Node{cfg: cfg, log: logger.With("component", "cluster", "node", cfg.Node)}
	if cfg.Replicas < 1 {
		return nil, fmt.Errorf("cluster.replicas = %d: must be at least 1", cfg.Replicas)
	}
	var err error
	if cfg.URL == "" {
		if n.srv, err = startEmbedded(cfg, n.log); err != nil {
			return nil, err
		}
		n.nc, err = nats.Connect("", nats.InProcessServer(n.srv), nats.Name("parley "+cfg.Node), nats.MaxReconnects(-1))
	} else {
		if err := checkExternalSync(ctx, cfg.Monitor); err != nil {
			return nil, err
		}
		n.nc, err = nats.Connect(cfg.URL, nats.Name("parley "+cfg.Node), nats.MaxReconnects(-1),
			nats.RetryOnFailedConnect(true), nats.ReconnectWait(time.Second))
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		n.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := n.ensureStream(ctx); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.ensureBuckets(ctx); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.checkSettings(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// startEmbedded runs a NATS server with JetStream in this process,
// fsyncing every write: the default syncs every two minutes and can lose
// acknowledged writes on power loss.
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	host, port, err := splitHostPort(cfg.Embedded.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster.nats.embedded.listen = %q: %w", cfg.Embedded.Listen, err)
	}
	opts := &server.Options{
		ServerName: cfg.Node,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.Embedded.StoreDir,
		SyncAlways: true,
		NoSigs:     true,
	}
	// With no other servers to route to, JetStream runs alone, not as a
	// cluster of one waiting for routes.
	if cfg.Embedded.ClusterListen != "" && len(cfg.Embedded.Routes) > 0 {
		chost, cport, err := splitHostPort(cfg.Embedded.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("cluster.nats.embedded.cluster_listen = %q: %w", cfg.Embedded.ClusterListen, err)
		}
		opts.Cluster = server.ClusterOpts{Name: clusterName, Host: chost, Port: cport}
		opts.Routes = server.RoutesFromStr(strings.Join(cfg.Embedded.Routes, ","))
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log.With("component", "nats")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("start embedded NATS on %s: not ready after 30s", cfg.Embedded.Listen)
	}
	return srv, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, port, nil
}

// checkExternalSync refuses NATS servers that do not fsync every write,
// read from their monitoring endpoints.
func checkExternalSync(ctx context.Context, monitors []string) error {
	if len(monitors) == 0 {
		return errors.New("cluster.nats.monitor is empty: with external NATS, list each server's monitoring URL " +
			"(http://host:8222) so parley can check it runs with jetstream { sync_interval: always }")
	}
	for _, m := range monitors {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(m, "/")+"/varz", nil)
		if err != nil {
			return fmt.Errorf("cluster.nats.monitor %q: %w", m, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("check NATS server %s: %w", m, err)
		}
		var v struct {
			JetStream struct {
				Config struct {
					SyncAlways bool `json:"sync_always"`
				} `json:"config"`
			} `json:"jetstream"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("check NATS server %s: read /varz: %w", m, err)
		}
		if !v.JetStream.Config.SyncAlways {
			return fmt.Errorf("NATS server %s does not fsync every write: set jetstream { sync_interval: always } "+
				"(without it, acknowledged messages can be lost on power loss)", m)
		}
	}
	return nil
}

// ensureStream creates the log stream, or checks the one there, retrying
// while the cluster forms (a replicated stream needs a quorum of servers).
func (n *Node) ensureStream(ctx context.Context) error {
	want := jetstream.StreamConfig{
		Name:       streamName,
		Subjects:   []string{logSubject},
		Storage:    jetstream.FileStorage,
		Replicas:   n.cfg.Replicas,
		Duplicates: dupWindow,
		Retention:  jetstream.LimitsPolicy,
	}
	var info *jetstream.StreamInfo
	if err := n.retry(ctx, "create stream "+streamName, func(ctx context.Context) error {
		s, err := n.js.CreateOrUpdateStream(ctx, want)
		if err == nil {
			info = s.CachedInfo()
		}
		return err
	}); err != nil {
		return err
	}
	if info.Config.Storage != jetstream.FileStorage {
		return fmt.Errorf("stream %s keeps its messages in memory: parley needs file storage", streamName)
	}
	leader := ""
	if info.Cluster != nil {
		leader = info.Cluster.Leader
	}
	n.log.Info("joined the cluster", "stream", streamName, "replicas", info.Config.Replicas, "leader", leader,
		"messages", info.State.Msgs)
	return nil
}

// retry runs fn until it succeeds, fails for good, or ctx ends, giving
// each attempt a few seconds: while the cluster forms, or a replicated
// bucket elects its leader, requests go unanswered for a while.
func (n *Node) retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		if isFinal(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: the cluster did not answer in time: %w", what, err)
		}
		if attempt%5 == 4 {
			n.log.Info("waiting for the cluster", "for", what, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// isFinal tells an answer of the cluster, which retrying will not
// change, from the silence of a cluster still forming.
func isFinal(err error) bool {
	for _, e := range []error{jetstream.ErrKeyExists, jetstream.ErrKeyNotFound, jetstream.ErrObjectNotFound,
		jetstream.ErrNoObjectsFound, errFinal} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errFinal marks an error that retry returns at once.
var errFinal = errors.New("final")

// ensureBuckets creates the key-value and object store buckets the
// cluster keeps besides its log.
func (n *Node) ensureBuckets(ctx context.Context) error {
	r := n.cfg.Replicas
	if err := n.retry(ctx, "settings bucket "+settingsKV, func(ctx context.Context) error {
		var err error
		n.kv, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: settingsKV, Replicas: r, Storage: jetstream.FileStorage})
		return err
	}); err != nil {
		return err
	}
	if err := n.retry(ctx, "files bucket "+filesBucket, func(ctx context.Context) error {
		var err error
		n.files, err = n.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: filesBucket, Replicas: r,
			Storage: jetstream.FileStorage, Description: "parley's uploaded files"})
		return err
	}); err != nil {
		return err
	}
	return n.retry(ctx, "snapshots bucket "+snapshotsBucket, func(ctx context.Context) error {
		var err error
		n.snaps, err = n.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: snapshotsBucket, Replicas: r,
			Storage: jetstream.FileStorage, Description: "parley's database snapshots"})
		return err
	})
}

// getKey reads a key; a key that is not there is jetstream.ErrKeyNotFound.
func (n *Node) getKey(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := n.retry(ctx, "read "+key, func(ctx context.Context) error {
		e, err := n.kv.Get(ctx, key)
		if err != nil {
			return err
		}
		v = e.Value()
		return nil
	})
	return v, err
}

// createOrRead writes a key unless it is there, and returns what is.
func (n *Node) createOrRead(ctx context.Context, key string, value []byte) ([]byte, error) {
	err := n.retry(ctx, "record "+key, func(ctx context.Context) error {
		_, err := n.kv.Create(ctx, key, value)
		return err
	})
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, err
	}
	// Another node wrote it a moment ago; the replica this node reads
	// from may not have it yet.
	for range 50 {
		v, err := n.getKey(ctx, key)
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return v, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("read %s: written by another node, but not readable here", key)
}

// checkSettings records this node's settings for the cluster, or checks
// them against the ones recorded: nodes that apply the same commands
// differently would drift apart.
func (n *Node) checkSettings(ctx context.Context) error {
	for key, mine := range n.cfg.Settings {
		name := strings.ReplaceAll(key, "_", "-") // KV keys: letters, digits, - _ / = .
		theirs, err := n.createOrRead(ctx, name, []byte(mine))
		if err != nil {
			return fmt.Errorf("setting %s: %w", key, err)
		}
		if string(theirs) != mine {
			return fmt.Errorf("%s = %s here, but the cluster runs with %s: every node must apply commands alike; "+
				"set it to %s", key, mine, theirs, theirs)
		}
	}
	return nil
}

// Leader names the NATS server leading the log stream, if known, as of at
// most a second ago.
func (n *Node) Leader(ctx context.Context) string {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	if time.Since(n.leaderAt) < time.Second {
		return n.leader
	}
	n.leader, n.leaderAt = "", time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if s, err := n.js.Stream(ctx, streamName); err == nil && s.CachedInfo().Cluster != nil {
		n.leader = s.CachedInfo().Cluster.Leader
	}
	return n.leader
}

// Name is this node's name.
func (n *Node) Name() string { return n.cfg.Node }

// Connected reports whether the node's NATS connection is up.
func (n *Node) Connected() bool { return n.nc != nil && n.nc.IsConnected() }

// Close drains the NATS connection and stops the embedded server.
func (n *Node) Close() {
	if n.nc != nil {
		_ = n.nc.Drain()
		for i := 0; i < 100 && !n.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		n.nc.Close()
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// natsLogger hands the embedded server's log to slog.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
