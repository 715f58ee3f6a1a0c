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
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"parley/internal/auth"
	"parley/internal/store"

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
  invite           print an invite link (sign-up, landing in a room)
  hook ...         add ROOM, rm ID, list: incoming webhooks
  bot add NAME     make a bot account and print its API token
  healthcheck      exit 0 if the server on this machine is ready, 1 if not
  check            find damaged records in the database, even while it serves
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
	case "invite":
		return runInvite(ctx, args, environ, stdout, stderr)
	case "hook":
		return runHook(ctx, args, environ, stdout, stderr)
	case "bot":
		return runBot(ctx, args, environ, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args, environ, stdout, stderr)
	case "check":
		return runCheck(ctx, args, environ, stdout, stderr)
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

// server is the running program: what serve starts and stops. Frame
// handlers do not hang off it; each group gets only what it uses (see
// newServer).
type server struct {
	cfg     Config
	log     *slog.Logger
	storage *storage
	store   *store.Store
	bus     *bus
	hub     *Hub
	admin   *admin
	metrics *metrics
	frames  *dispatcher
	uploads *uploads
	hooks   *hooks
	push    *pusher // nil when push.enabled is off
	guests  *guestReaper
	static  fs.FS
	proxies []*net.IPNet
	tls     *tls.Config // nil: plain HTTP
	acme    *autocert.Manager
	now     func() time.Time
	ipConns *ipCounter
	// diskFree is the free space on the database's disk (statfs; tests
	// swap it).
	diskFree func() (uint64, error)

	// cancel stops what outlives connections (handlers' contexts, the
	// janitor) once shutdown has finished with the connections.
	cancel context.CancelFunc
	conns  sync.WaitGroup // WebSocket handlers in flight

	warnedXFF    atomic.Bool // logged once: X-Forwarded-For from an untrusted peer
	warnedScheme atomic.Bool // logged once: a same-host page refused for its scheme
	shuttingDown atomic.Bool // /readyz answers 503 once set

	mu           sync.Mutex // guards redirectAddr
	redirectAddr string     // where the HTTP-to-HTTPS redirect listens, once it does
}

// newServer opens the store and wires everything; serve runs it.
func newServer(cfg Config, logger *slog.Logger) (*server, error) {
	return newServerWith(cfg, logger, auth.NewHasher(auth.DefaultArgon2(), 0), time.Now)
}

// newServerWith is newServer with a password hasher and a clock of the
// caller's (tests use a cheap hasher and a fake clock).
func newServerWith(cfg Config, logger *slog.Logger, hasher *auth.Hasher, now func() time.Time) (*server, error) {
	s := &server{
		cfg:     cfg,
		log:     logger,
		static:  staticFiles(),
		now:     now,
		ipConns: &ipCounter{max: cfg.Limits.ConnectionsPerIP, counts: map[string]int{}},
	}
	dbDir := filepath.Dir(cfg.DB.Path)
	s.diskFree = func() (uint64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dbDir, &st); err != nil {
			return 0, err
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
	for _, p := range cfg.Server.TrustedProxies {
		n, _ := parseCIDROrIP(p) // validated with the config
		s.proxies = append(s.proxies, n)
	}
	var err error
	if s.tls, s.acme, err = newTLSConfig(cfg); err != nil {
		return nil, err
	}
	storage, err := openStore(cfg, logger)
	if err != nil {
		return nil, err
	}
	st := storage.st
	s.storage, s.store = storage, st
	s.metrics = newMetrics()
	s.hub = NewHub(HubConfig{FrameBytes: cfg.Limits.FrameBytes, SendBuffer: cfg.Server.SendBuffer,
		SendBufferBytes: cfg.Server.SendBufferBytes, WriteWait: cfg.Server.WriteWait,
		PongWait: cfg.Server.PongWait, PresenceLimit: cfg.Presence.BroadcastLimit, SignInTimeout: cfg.Server.SignInTimeout,
		AnnounceInterval: cfg.Presence.AnnounceInterval,
		CheckOrigin:      sameOrAllowedOrigin(allowedOrigins(cfg), s.requestScheme)}, logger, s.metrics)
	if err := storage.relay(s.hub); err != nil {
		storage.log.Close()
		storage.close(logger)
		return nil, err
	}
	s.metrics.watch(s.hub, st)
	if storage.node != nil {
		s.metrics.watchCluster(storage.node, storage.clog)
	}
	var after func(store.Batch, func(store.Envelope) bool)
	if cfg.Push.Enabled {
		s.push = newPusher(cfg.Push, publicURL(cfg), st, s.hub, logger, s.metrics, now)
		after = s.push.deliver
	}
	s.bus = newBus(storage.log, s.hub, s.metrics, logger, now, after)
	if s.push != nil {
		s.push.bus = s.bus // before start, which proposes with it
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel

	d := deps{store: st, bus: s.bus, hub: s.hub, now: now, log: logger, metrics: s.metrics}
	links := linkBase{publicURL: cfg.Server.PublicURL, fallback: publicURL(cfg), tls: s.tls != nil}
	authH := newAuthHandlers(d, cfg.Auth, cfg.Limits.SignInsPerMinute, hasher, links, maxUploadBytes(cfg.Uploads))
	if s.push != nil {
		authH.vapidKey = s.push.publicKey
	}
	s.frames = &dispatcher{hub: s.hub, limits: cfg.Limits, log: logger, metrics: s.metrics, ctx: ctx,
		perUser: perSecondLimiter(cfg.Limits.MessagesPerSecond, cfg.Limits.Burst),
		table: frameTable(
			authH,
			&roomHandlers{deps: d, limits: cfg.Limits, onJoin: cfg.History.OnJoin,
				roomsCreated: auth.NewLimiter(cfg.Limits.RoomsCreatedPerHour, time.Hour)},
			&messageHandlers{deps: d, limits: cfg.Limits, keep: cfg.History.PerRoom,
				searches: auth.NewLimiter(cfg.Limits.SearchesPerMinute, time.Minute), gate: newSearchGate(runtime.GOMAXPROCS(0) / 2)},
			&moderationHandlers{deps: d},
			&reachHandlers{
				invites: &inviteHandlers{deps: d, links: links, ttl: cfg.Auth.InviteTTL},
				hooks:   &hookHandlers{deps: d, links: links, enabled: cfg.Hooks.Enabled},
				push:    &pushHandlers{deps: d, push: s.push},
			})}
	s.hooks = newHooks(st, s.bus, cfg.Limits, cfg.History.PerRoom, cfg.Auth.FailedLoginWindow, s.clientIP, logger, s.metrics)
	s.guests = &guestReaper{store: st, bus: s.bus, hub: s.hub, now: now, log: logger.With("component", "guests")}
	s.frames.closed = s.guests.closed
	if s.push != nil {
		s.frames.active = s.push.seen
	}
	s.uploads = newUploads(cfg.Uploads, st, s.bus, now, logger)
	s.uploads.blobs = storage.blobs()
	s.admin = &admin{store: st, bus: s.bus, hasher: hasher, publicURL: publicURL(cfg), resetTTL: cfg.Auth.ResetTTL}
	return s, nil
}

// closeStore applies what is queued, stops the pusher, and closes the
// database.
func (s *server) closeStore() {
	s.bus.Close()
	if s.push != nil {
		s.push.Close()
	}
	s.storage.close(s.log)
}

// serve answers on ln until ctx is cancelled, then shuts down: stop
// accepting, close every connection with 1001, let in-flight handlers and
// commands finish, close the store. Beside ln it runs the HTTP-to-HTTPS
// redirect (with TLS), the admin socket, and the retention janitor;
// onReady runs once all of them listen.
func (s *server) serve(ctx context.Context, ln net.Listener, onReady func()) error {
	// The pusher makes the server's Web Push keys with a command, so it
	// starts here, where a test's hooks on the bus already see it.
	if s.push != nil {
		startCtx, stop := context.WithTimeout(context.Background(), handlerTimeout)
		err := s.push.start(startCtx)
		stop()
		if err != nil {
			ln.Close()
			s.cancel()
			s.closeStore()
			return err
		}
	}
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
				s.cancel()
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
	janitorCtx, stopJanitor := context.WithCancel(context.Background())
	janitorDone := make(chan struct{})
	go func() { defer close(janitorDone); s.janitor(janitorCtx) }()
	snapshotsDone := make(chan struct{}) // stopped with the janitor
	if node := s.storage.node; node != nil {
		go func() { defer close(snapshotsDone); node.KeepSnapshots(janitorCtx, s.store, snapshotInterval) }()
	} else {
		close(snapshotsDone)
	}
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
	s.hub.Close()

	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline.Done():
		// Clients that do not read never see the close frame; cut them off.
		s.hub.CutOff()
		<-done
	}
	s.hub.Wait()
	stopJanitor()
	<-janitorDone
	<-snapshotsDone
	s.cancel()
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

// snapshotInterval is how often a cluster node stores a snapshot of its
// database, when it has applied something the newest one lacks.
const snapshotInterval = 10 * time.Minute

// janitorInterval is how often expired tokens and, with history.max_age,
// old messages are deleted.
const janitorInterval = time.Minute

// janitor deletes what has expired, through commands like every other
// change, until ctx ends.
func (s *server) janitor(ctx context.Context) {
	tick := time.NewTicker(janitorInterval)
	defer tick.Stop()
	var lastExpire time.Time // at start, and hourly after
	for {
		if s.cfg.History.MaxAge > 0 {
			s.deleteOldMessages(ctx, s.now().Add(-s.cfg.History.MaxAge))
		}
		s.guests.sweep(ctx)
		if s.now().Sub(lastExpire) >= time.Hour {
			lastExpire = s.now()
			s.expire(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// expire deletes expired tokens, reset links and unattached uploads, and
// on a cluster node the uploaded bytes no file record names any more.
func (s *server) expire(ctx context.Context) {
	out, err := s.bus.Do(ctx, "", store.Expire{})
	if err != nil {
		s.log.Warn("delete expired tokens and uploads", "err", err)
	} else if out.Count > 0 {
		s.log.Info("deleted expired tokens, reset links and unattached uploads", "count", out.Count)
	}
	if f := s.storage.files; f != nil {
		// An hour's grace: bytes are stored before their command applies.
		n, err := f.Sweep(ctx, time.Hour, func(id string) bool {
			_, err := s.store.File(id)
			return !errors.Is(err, store.ErrNotFound)
		})
		if err != nil {
			s.log.Warn("delete uploads no file names", "err", err)
		} else if n > 0 {
			s.log.Info("deleted uploads no file names", "count", n)
		}
	}
}

// retentionBatch is how many old messages one command deletes; small
// enough that message commits waiting behind it are not held up.
const retentionBatch = 500

func (s *server) deleteOldMessages(ctx context.Context, cutoff time.Time) {
	total := 0
	for ctx.Err() == nil {
		out, err := s.bus.Do(ctx, "", store.TrimOlderThan{Cutoff: cutoff, Limit: retentionBatch})
		if err != nil {
			s.log.Warn("delete old messages", "err", err)
			return
		}
		total += out.Count
		if out.Count < retentionBatch {
			break
		}
	}
	if total > 0 {
		s.log.Info("deleted messages past history.max_age", "count", total, "max_age", s.cfg.History.MaxAge)
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

// requestScheme is the scheme the client used: https on a TLS
// connection; behind a trusted proxy, what its X-Forwarded-Proto says;
// otherwise http.
func (s *server) requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if s.trusted(host) {
		switch p := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0])); p {
		case "http", "https":
			return p
		}
	}
	return "http"
}

// allowedOrigins are the origins besides the server's own that may open
// a WebSocket: server.allowed_origins, and server.public_url's, which a
// TLS-terminating proxy serves the page from.
func allowedOrigins(cfg Config) []string {
	out := append([]string{}, cfg.Server.AllowedOrigins...)
	if u, err := url.Parse(cfg.Server.PublicURL); err == nil && u.Host != "" {
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out
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
