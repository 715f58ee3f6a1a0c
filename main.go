// Command parley is a self-hosted real-time chat server: one binary with
// the server, the web client and an embedded database.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/olahol/melody"
)

//go:embed static
var embeddedStatic embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	var usage usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usageText = `Usage: parley [command] [flags]

Commands:
  serve     run the chat server (the default when no command is given)
  help      show this help

Run "parley serve -h" for the server's flags.
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, environ, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		fmt.Fprint(stderr, usageText)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func runServe(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("serve", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "config file (default config.yaml when it exists)")
	fset.String("addr", "", "listen address HOST:PORT (default :8080; server.addr)")
	fset.String("db", "", "database file (default parley.db; db.path)")
	fset.Usage = func() {
		fmt.Fprint(stderr, "Usage: parley serve [-config FILE] [-addr HOST:PORT] [-db FILE]\n\n"+
			"Runs the chat server. Settings come from built-in defaults, then the config\n"+
			"file, then PARLEY_* environment variables (PARLEY_SERVER_ADDR=:9000), then flags.\n\n")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fset.NArg() > 0 {
		fset.Usage()
		return usageError{fmt.Sprintf("unexpected argument %q", fset.Arg(0))}
	}
	flagKeys := map[string]string{"addr": "server.addr", "db": "db.path"}
	settings := map[string]string{}
	fset.Visit(func(f *flag.Flag) {
		if key, ok := flagKeys[f.Name]; ok {
			settings[key] = f.Value.String()
		}
	})
	cfg, err := loadConfig(configSources{File: *configPath, Environ: environ, FlagSettings: settings})
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)

	srv, err := newServer(cfg, logger)
	if err != nil {
		return err
	}
	// Listen synchronously, so a busy port is an error, not a log line.
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		srv.closeStore()
		return fmt.Errorf("listen on %s: %w", cfg.Server.Addr, err)
	}
	fmt.Fprintf(stdout, "parley is running: open %s in your browser (database %s)\n", displayURL(ln.Addr()), cfg.DB.Path)
	return srv.serve(ctx, ln)
}

// displayURL is the address a person on this machine can open.
func displayURL(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// server is the running program's state: configuration, store, hub and
// melody, passed explicitly; there are no package-level variables.
type server struct {
	cfg      Config
	log      *slog.Logger
	store    *Store
	hub      *Hub
	melody   *melody.Melody
	hasher   *passwordHasher
	handlers map[string]handler
	static   fs.FS
	proxies  []*net.IPNet
	now      func() time.Time

	// ctx is cancelled when shutdown has finished with the connections.
	ctx    context.Context
	cancel context.CancelFunc

	conns      sync.WaitGroup // WebSocket handlers in flight
	background sync.WaitGroup // short-lived goroutines that close connections

	failedByIP   *keyedLimiter // failed sign-ins per client address
	failedByUser *keyedLimiter // failed sign-ins per lower-cased username
	signupsByIP  *keyedLimiter // new accounts per client address
	roomsCreated *keyedLimiter // new rooms per user id
	ipConns      *ipCounter

	slowConsumers atomic.Int64 // connections dropped for a full send buffer
	warnedXFF     atomic.Bool  // logged once: X-Forwarded-For from an untrusted peer

	mu      sync.Mutex // guards clients
	clients map[*client]struct{}
}

// newServer opens the store and wires everything; serve runs it.
func newServer(cfg Config, logger *slog.Logger) (*server, error) {
	s := &server{
		cfg:     cfg,
		log:     logger,
		hub:     NewHub(logger, cfg.Presence.BroadcastLimit),
		hasher:  newPasswordHasher(defaultArgon2, 0),
		static:  staticFiles(),
		now:     time.Now,
		clients: map[*client]struct{}{},

		failedByIP:   newKeyedLimiter(cfg.Auth.FailedLoginsPerIP, cfg.Auth.FailedLoginWindow),
		failedByUser: newKeyedLimiter(cfg.Auth.FailedLoginsPerUser, cfg.Auth.FailedLoginWindow),
		signupsByIP:  newKeyedLimiter(cfg.Auth.SignupsPerIPPerHour, time.Hour),
		roomsCreated: newKeyedLimiter(cfg.Limits.RoomsCreatedPerHour, time.Hour),
		ipConns:      &ipCounter{max: cfg.Limits.ConnectionsPerIP, counts: map[string]int{}},
	}
	for _, p := range cfg.Server.TrustedProxies {
		n, _ := parseCIDROrIP(p) // validated with the config
		s.proxies = append(s.proxies, n)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	store, err := OpenStore(cfg.DB.Path, StoreOptions{
		LockTimeout:    cfg.DB.LockTimeout,
		HistoryPerRoom: cfg.History.PerRoom,
		OnCommit:       s.deliver,
		Logger:         logger,
	})
	if err != nil {
		return nil, err
	}
	s.store = store
	s.handlers = s.messageHandlers()
	s.melody = newMelody(cfg, sameOrAllowedOrigin(cfg.Server.AllowedOrigins))
	s.wireMelody()
	if n, err := store.PurgeExpiredTokens(s.now()); err != nil {
		logger.Warn("purge expired sign-in tokens", "err", err)
	} else if n > 0 {
		logger.Info("purged expired sign-in tokens", "count", n)
	}
	return s, nil
}

func (s *server) closeStore() {
	if err := s.store.Close(); err != nil {
		s.log.Error("close store", "err", err)
	}
}

// serve answers on ln until ctx is cancelled, then shuts down: stop
// accepting, close every connection with 1001, let in-flight handlers and
// commits finish, close the store.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	httpSrv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "db", s.cfg.DB.Path)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve http: %w", err)
	}
	s.log.Info("shutting down")
	deadline, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	if shutErr := httpSrv.Shutdown(deadline); shutErr != nil {
		s.log.Warn("http shutdown", "err", shutErr)
	}
	_ = s.melody.CloseWithMsg(melody.FormatCloseMessage(melody.CloseGoingAway, "server shutting down"))

	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline.Done():
		// Clients that do not read never see the close frame; cut them off.
		s.mu.Lock()
		for c := range s.clients {
			_ = c.sess.WebsocketConnection().Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.background.Wait()
	s.cancel()
	s.closeStore()
	s.log.Info("stopped")
	return err
}

func (s *server) trackClient(c *client, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.clients[c] = struct{}{}
	} else {
		delete(s.clients, c)
	}
}

// clientIP is the address limits and logs use: the peer's, or, when the
// peer is a trusted proxy, the last address X-Forwarded-For adds that is
// not itself a trusted proxy.
func (s *server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(host) {
		if r.Header.Get("X-Forwarded-For") != "" && s.warnedXFF.CompareAndSwap(false, true) {
			s.log.Warn("ignoring X-Forwarded-For from a peer not in server.trusted_proxies; "+
				"behind a reverse proxy, list it there or every client shares the proxy's limits", "peer", host)
		}
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if net.ParseIP(hop) == nil {
			break
		}
		if !s.trusted(hop) {
			return hop
		}
		host = hop
	}
	return host
}

func (s *server) trusted(ip string) bool {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return false
	}
	for _, n := range s.proxies {
		if n.Contains(parsed) {
			return true
		}
	}
	return false
}
