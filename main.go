// Command parley is a self-hosted real-time chat server: one binary with
// the server, the web client and an embedded database.
package main

import (
	"context"
	"crypto/tls"
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
	"golang.org/x/crypto/acme/autocert"
)

//go:embed static
var embeddedStatic embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
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
  serve            run the chat server (the default when no command is given)
  backup FILE|-    write a consistent copy of the database, even while it serves
  restore FILE|-   replace the database with a backup (the server must be stopped)
  compact          rewrite the database without its free space (server stopped)
  status           show whether a server runs, and the database's sizes
  user ...         add, passwd, rm, list, admin, reset, unban: manage accounts
  healthcheck      exit 0 if the server on this machine is ready, 1 if not
  version          print the version and commit
  help             show this help

Run "parley COMMAND -h" for a command's flags.
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, environ, stdout, stderr)
	case "backup":
		return runBackup(ctx, args, environ, stdout, stderr)
	case "restore":
		return runRestore(ctx, args, environ, stdin, stdout, stderr)
	case "compact":
		return runCompact(ctx, args, environ, stdout, stderr)
	case "status":
		return runStatus(ctx, args, environ, stdout, stderr)
	case "user":
		return runUser(ctx, args, environ, stdin, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args, environ, stdout, stderr)
	case "version":
		return runVersion(args, stdout, stderr)
	case "help", "-h", "-help", "--help":
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
	configPath := fset.String("config", "", "config file (default: config.yaml, else /etc/parley/config.yaml, when one exists)")
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
	cfg, err := loadConfig(configSources{File: *configPath, Search: defaultConfigFiles(), Environ: environ, FlagSettings: settings})
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)

	// Listen synchronously, so a busy port is an error, not a log line,
	// and before opening the store, so that error leaves no new database.
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Server.Addr, err)
	}
	srv, err := newServer(cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	warnAboutSettings(cfg, logger)
	return srv.serve(ctx, ln, func() {
		fmt.Fprintf(stdout, "parley is running: open %s in your browser (database %s)\n", displayURL(ln.Addr(), srv.tls != nil), cfg.DB.Path)
	})
}

// displayURL is the address a person on this machine can open.
func displayURL(addr net.Addr, tls bool) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port) + "/"
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
	admin    *admin
	metrics  *metrics
	handlers map[string]handler
	static   fs.FS
	proxies  []*net.IPNet
	tls      *tls.Config // nil: plain HTTP
	acme     *autocert.Manager
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
	shuttingDown  atomic.Bool  // /readyz answers 503 once set

	uploadSlots chan struct{} // uploads being received, at most maxConcurrentUploads

	mu           sync.Mutex // guards clients and the addresses below
	clients      map[*client]struct{}
	redirectAddr string // where the HTTP-to-HTTPS redirect listens, once it does
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

		uploadSlots: make(chan struct{}, maxConcurrentUploads),

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
	var err error
	if s.tls, s.acme, err = newTLSConfig(cfg); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	store, err := OpenStore(cfg.DB.Path, StoreOptions{
		LockTimeout:    cfg.DB.LockTimeout,
		HistoryPerRoom: cfg.History.PerRoom,
		OnCommit:       s.deliver,
		ObserveCommit:  s.metrics.observeCommit,
		Logger:         logger,
	})
	if err != nil {
		return nil, err
	}
	s.store = store
	s.admin = &admin{store: store, hasher: s.hasher, now: s.now, publicURL: publicURL(cfg),
		resetTTL: cfg.Auth.ResetTTL, signOut: s.signOutAll}
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
// commits finish, close the store. Beside ln it runs the HTTP-to-HTTPS
// redirect (with TLS), the admin socket, and the retention janitor;
// onReady runs once all of them listen.
func (s *server) serve(ctx context.Context, ln net.Listener, onReady func()) error {
	errLog := slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelWarn)
	httpSrv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
	}
	var aux []*http.Server // servers shut down along with the main one
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
		if s.cfg.TLS.RedirectAddr != "" {
			rln, err := net.Listen("tcp", s.cfg.TLS.RedirectAddr)
			if err != nil {
				ln.Close()
				s.closeStore()
				return fmt.Errorf("listen for the HTTP-to-HTTPS redirect on %s: %w", s.cfg.TLS.RedirectAddr, err)
			}
			s.mu.Lock()
			s.redirectAddr = rln.Addr().String()
			s.mu.Unlock()
			redirect := &http.Server{Handler: s.redirectHandler(ln.Addr()), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
			aux = append(aux, redirect)
			go s.serveAux(redirect, rln, "redirect")
			s.log.Info("redirecting HTTP to HTTPS", "addr", rln.Addr().String())
		}
	}
	if aln, err := listenAdmin(adminSocketPath(s.cfg.DB.Path)); err != nil {
		s.log.Warn("no admin socket: parley backup and parley user will not reach this server", "err", err)
	} else {
		adminSrv := &http.Server{Handler: adminRoutes(s.admin, s.log.With("component", "admin")), ErrorLog: errLog}
		aux = append(aux, adminSrv)
		go s.serveAux(adminSrv, aln, "admin")
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	janitorDone := make(chan struct{})
	go func() { defer close(janitorDone); s.janitor(s.ctx) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "db", s.cfg.DB.Path, "tls", s.tls != nil)
	if onReady != nil {
		onReady()
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve http: %w", err)
	}
	s.log.Info("shutting down")
	s.shuttingDown.Store(true)
	deadline, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	for _, srv := range append(aux, httpSrv) {
		if shutErr := srv.Shutdown(deadline); shutErr != nil {
			s.log.Warn("http shutdown", "err", shutErr)
		}
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
			_ = c.out.closeNow() // one by one: none may wait on its socket
		}
		s.mu.Unlock()
		<-done
	}
	s.background.Wait()
	s.cancel()
	<-janitorDone
	s.closeStore()
	s.log.Info("stopped")
	return err
}

// serveAux runs a secondary server until it is shut down.
func (s *server) serveAux(srv *http.Server, ln net.Listener, name string) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("server stopped", "server", name, "err", err)
	}
}

// janitorInterval is how often expired tokens and, with history.max_age,
// old messages are deleted.
const janitorInterval = time.Minute

// janitor deletes what has expired, in short transactions, until ctx ends.
func (s *server) janitor(ctx context.Context) {
	tick := time.NewTicker(janitorInterval)
	defer tick.Stop()
	lastPurge := s.now()
	for {
		if s.cfg.History.MaxAge > 0 {
			s.deleteOldMessages(ctx, s.now().Add(-s.cfg.History.MaxAge))
		}
		if s.now().Sub(lastPurge) >= time.Hour {
			lastPurge = s.now()
			if n, err := s.store.PurgeExpiredTokens(lastPurge); err != nil {
				s.log.Warn("purge expired tokens", "err", err)
			} else if n > 0 {
				s.log.Info("purged expired tokens", "count", n)
			}
			if n, err := s.store.PurgeUnattachedFiles(lastPurge); err != nil {
				s.log.Warn("purge unattached uploads", "err", err)
			} else if n > 0 {
				s.log.Info("purged uploads no message used", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// retentionBatch is how many old messages one transaction deletes; small
// enough that message commits waiting behind it are not held up.
const retentionBatch = 500

func (s *server) deleteOldMessages(ctx context.Context, cutoff time.Time) {
	total := 0
	for ctx.Err() == nil {
		n, err := s.store.DeleteOlderThan(cutoff, retentionBatch)
		if err != nil {
			s.log.Warn("delete old messages", "err", err)
			return
		}
		total += n
		if n < retentionBatch {
			break
		}
	}
	if total > 0 {
		s.log.Info("deleted messages past history.max_age", "count", total, "max_age", s.cfg.History.MaxAge)
	}
}

func (s *server) connectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
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
