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
	cfg Config
	log *slog.Logger
	srv *server.Server // nil with external NATS
	nc  *nats.Conn
	js  jetstream.JetStream
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
	for attempt := 0; ; attempt++ {
		// Each attempt gets a few seconds: a request made before the
		// cluster has a leader is never answered.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := n.js.CreateOrUpdateStream(actx, want)
		cancel()
		if err == nil {
			info := s.CachedInfo()
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
		if ctx.Err() != nil {
			return fmt.Errorf("create stream %s: the cluster did not form within %s: %w", streamName, startTimeout, err)
		}
		if attempt%5 == 0 {
			n.log.Info("waiting for the cluster to form", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkSettings records this node's settings for the cluster, or checks
// them against the ones recorded: nodes that apply the same commands
// differently would drift apart.
func (n *Node) checkSettings(ctx context.Context) error {
	var kv jetstream.KeyValue
	var err error
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err = n.js.CreateOrUpdateKeyValue(actx, jetstream.KeyValueConfig{Bucket: settingsKV, Replicas: n.cfg.Replicas,
			Storage: jetstream.FileStorage})
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("settings bucket %s: %w", settingsKV, err)
	}
	for key, mine := range n.cfg.Settings {
		name := strings.ReplaceAll(key, "_", "-") // KV keys: letters, digits, - _ / = .
		if _, err := kv.Create(ctx, name, []byte(mine)); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("record setting %s: %w", key, err)
		}
		// Another node wrote it a moment ago; a replica this node reads
		// from may not have it yet.
		var e jetstream.KeyValueEntry
		for range 50 {
			if e, err = kv.Get(ctx, name); !errors.Is(err, jetstream.ErrKeyNotFound) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("read setting %s: %w", key, err)
		}
		if theirs := string(e.Value()); theirs != mine {
			return fmt.Errorf("%s = %s here, but the cluster runs with %s: every node must apply commands alike; "+
				"set it to %s", key, mine, theirs, theirs)
		}
	}
	return nil
}

// Leader names the NATS server leading the log stream, if known.
func (n *Node) Leader(ctx context.Context) string {
	s, err := n.js.Stream(ctx, streamName)
	if err != nil || s.CachedInfo().Cluster == nil {
		return ""
	}
	return s.CachedInfo().Cluster.Leader
}

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
