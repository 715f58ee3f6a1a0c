package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"parley/internal/auth"
	"parley/internal/store"

	"golang.org/x/term"
)

// The subcommands other than serve. Each parses its own flags, loads the
// configuration like serve does (so -config, PARLEY_DB_PATH and -db find
// the same database), and reaches the database through the running
// server's admin socket or, when no server runs, directly.

// commonFlags are the flags of every command that works on a database.
type commonFlags struct {
	config *string
	db     *string
}

func newFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, commonFlags) {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	c := commonFlags{
		config: fset.String("config", "", "config file (default: config.yaml, else /etc/parley/config.yaml, when one exists)"),
		db:     fset.String("db", "", "database file (default parley.db; db.path)"),
	}
	fset.Usage = func() {
		fmt.Fprint(stderr, usage)
		fset.PrintDefaults()
	}
	return fset, c
}

// parseArgs parses flags and returns the positional arguments, checking
// there are want of them. Flags may come before or after the positional
// arguments ("user add bob -db X"), as people type them; "--" ends the
// flags, and "-" alone is an argument (standard output or input).
func parseArgs(fset *flag.FlagSet, args []string, want int) ([]string, error) {
	var positional []string
	for {
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest := fset.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	if len(positional) != want {
		fset.Usage()
		return nil, usageError{fmt.Sprintf("%s takes %d argument(s), got %d", fset.Name(), want, len(positional))}
	}
	return positional, nil
}

func (c commonFlags) load(environ []string) (Config, error) {
	settings := map[string]string{}
	if *c.db != "" {
		settings["db.path"] = *c.db
	}
	return loadConfig(configSources{File: *c.config, Search: defaultConfigFiles(), Environ: environ, FlagSettings: settings})
}

// openAdmin reaches the database: through the admin socket of the server
// that holds it, or directly when none does. mustExist refuses to create
// a database that is not there yet.
func openAdmin(ctx context.Context, cfg Config, stderr io.Writer, mustExist bool) (adminAPI, string, func(), error) {
	sock := adminSocketPath(cfg.DB.Path)
	if c := dialAdmin(ctx, sock); c != nil {
		return c, "through the running server", func() {}, nil
	}
	_, statErr := os.Stat(cfg.DB.Path)
	if mustExist && statErr != nil {
		return nil, "", nil, fmt.Errorf("database %s: %w", cfg.DB.Path, statErr)
	}
	owner, err := ownerFor(cfg.DB.Path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("database %s: %w", cfg.DB.Path, err)
	}
	logger := newLogger(cfg.Log, stderr)
	st, err := store.Open(cfg.DB.Path, store.Options{LockTimeout: 500 * time.Millisecond, Logger: logger})
	if errors.Is(err, store.ErrDatabaseInUse) {
		return nil, "", nil, fmt.Errorf("%w, and no server answers on its admin socket %s", err, sock)
	}
	if err != nil {
		return nil, "", nil, err
	}
	if statErr != nil && os.Geteuid() == 0 {
		// A new database made by root (sudo parley user add) belongs to
		// whoever owns its directory: the service's user, who must open it.
		if err := os.Chown(cfg.DB.Path, owner.uid, owner.gid); err != nil {
			st.Close()
			return nil, "", nil, fmt.Errorf("give the new database %s to its directory's owner: %w", cfg.DB.Path, err)
		}
	}
	// The same write path as the server's, without connections to tell;
	// a cluster node's database changes only through the cluster's log.
	var log commandLog = store.NewLog(st, logger)
	if id, _, err := st.Cluster(); err == nil && id != "" {
		log = refusingLog{fmt.Errorf("database %s is a cluster node's copy: changes go through the cluster's log, "+
			"so run this while its node runs (parley reaches it through its admin socket), or on another node", cfg.DB.Path)}
	}
	b := newBus(log, nil, nil, logger, time.Now, nil)
	a := &admin{store: st, bus: b, hasher: auth.NewHasher(auth.DefaultArgon2(), 1), publicURL: publicURL(cfg), resetTTL: cfg.Auth.ResetTTL}
	return a, "directly (no server running)", func() {
		b.Close()
		if err := st.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}, nil
}

// publicURL is the address people open, for links handed out where no
// browser's request says it (parley user reset): server.public_url, or
// the name the certificate is for, or else localhost. A request's Host
// header is not used here: anyone can send any Host, and a reset link that
// names a stranger's host hands them the account.
func publicURL(cfg Config) string {
	if cfg.Server.PublicURL != "" {
		return strings.TrimRight(cfg.Server.PublicURL, "/")
	}
	_, port, _ := net.SplitHostPort(cfg.Server.Addr)
	if cfg.TLS.enabled() {
		host := "localhost"
		if len(cfg.TLS.ACME.Domains) > 0 {
			host = cfg.TLS.ACME.Domains[0]
		} else if name := certificateName(cfg.TLS.CertFile); name != "" {
			host = name
		}
		if port == "443" || len(cfg.TLS.ACME.Domains) > 0 {
			return "https://" + host
		}
		return "https://" + net.JoinHostPort(host, port)
	}
	return "http://localhost:" + port
}

// certificateName is the first DNS name, not a wildcard, of the first
// certificate in a PEM file, or "".
func certificateName(certFile string) string {
	raw, err := os.ReadFile(certFile)
	if err != nil {
		return ""
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	for _, name := range cert.DNSNames {
		if !strings.HasPrefix(name, "*") {
			return name
		}
	}
	return ""
}

// linkNamesLocalhost reports whether a link points at this machine only,
// which nobody it is handed to can open.
func linkNamesLocalhost(link string) bool {
	u, err := url.Parse(link)
	if err != nil {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// --- users ---

const userUsage = `Usage: parley user COMMAND [-config FILE] [-db FILE] [NAME]

Commands:
  add NAME      create an account; the password is read from the terminal
                (asked twice) or from the first line of standard input
  passwd NAME   set a new password; signs the user out everywhere
  rm NAME       close an account: it can no longer sign in, its messages stay,
                and its name stays reserved
  list          list accounts
  admin NAME    make NAME an admin (-revoke takes the role away)
  reset NAME    print a one-time link that signs NAME in to set a new password
  unban NAME    lift a server-wide ban, so NAME may sign in again

They work while the server runs (through its admin socket) and while it
does not (directly on the database).

`

func runUser(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprint(stderr, userUsage)
			return flag.ErrHelp
		}
		fmt.Fprint(stderr, userUsage)
		return usageError{"user needs a command: add, passwd, rm, list, admin, reset or unban"}
	}
	sub, args := args[0], args[1:]
	wantName := 1
	switch sub {
	case "list":
		wantName = 0
	case "add", "passwd", "rm", "admin", "reset", "unban":
	default:
		fmt.Fprint(stderr, userUsage)
		return usageError{fmt.Sprintf("unknown user command %q", sub)}
	}
	fset, common := newFlagSet("user "+sub, userUsage, stderr)
	revoke := false
	if sub == "admin" {
		fset.BoolVar(&revoke, "revoke", false, "take the admin role away instead")
	}
	pos, err := parseArgs(fset, args, wantName)
	if err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	name := ""
	if sub != "list" {
		name = pos[0]
	}
	switch sub {
	case "add":
		if perr := checkUsername(name); perr != nil {
			return usageError{perr.Message}
		}
	case "list":
	default:
		// Accounts registered before names of dots alone were refused
		// ("." and "..") must stay manageable.
		if !validName(name, maxUsernameLen) {
			return usageError{fmt.Sprintf("no user can be named %q", name)}
		}
	}
	api, _, done, err := openAdmin(ctx, cfg, stderr, sub != "add")
	if err != nil {
		return err
	}
	defer done()

	switch sub {
	case "add":
		pw, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		u, err := api.AddUser(ctx, name, pw)
		if err != nil {
			return fmt.Errorf("user add %s: %w", name, err)
		}
		role := ""
		if u.Admin {
			role = " (admin: the first account)"
		}
		fmt.Fprintf(stdout, "created user %s%s\n", u.Name, role)
	case "passwd":
		// Say so before asking for a password nobody will use.
		users, err := api.Users(ctx)
		if err != nil {
			return fmt.Errorf("user passwd %s: %w", name, err)
		}
		if !slices.ContainsFunc(users, func(u store.User) bool { return strings.EqualFold(u.Name, name) && !u.Deleted }) {
			return fmt.Errorf("user passwd %s: no user %q", name, name)
		}
		pw, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if err := api.SetPassword(ctx, name, pw); err != nil {
			return fmt.Errorf("user passwd %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "password of %s changed; signed out everywhere\n", name)
	case "rm":
		if err := api.RemoveUser(ctx, name); err != nil {
			return fmt.Errorf("user rm %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "removed user %s\n", name)
	case "list":
		users, err := api.Users(ctx)
		if err != nil {
			return fmt.Errorf("user list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED")
		for _, u := range users {
			role := "member"
			switch {
			case u.Deleted:
				role = "removed"
			case u.Admin:
				role = "admin"
			case u.Suspended:
				role = "banned"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", u.ID, u.Name, role, u.CreatedAt.Format(time.DateOnly))
		}
		return tw.Flush()
	case "admin":
		if err := api.SetAdmin(ctx, name, !revoke); err != nil {
			return fmt.Errorf("user admin %s: %w", name, err)
		}
		if revoke {
			fmt.Fprintf(stdout, "%s is no longer an admin\n", name)
		} else {
			fmt.Fprintf(stdout, "%s is now an admin\n", name)
		}
	case "reset":
		url, expires, err := api.ResetLink(ctx, name)
		if err != nil {
			return fmt.Errorf("user reset %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "one-time sign-in link for %s (valid until %s):\n%s\n", name, expires.Local().Format(time.DateTime), url)
		if linkNamesLocalhost(url) {
			fmt.Fprintln(stderr, "warning: this link names localhost, which only works on the server itself; set "+
				"server.public_url (such as https://chat.example.com) in the config, or replace the address "+
				"before the #reset= part with the one people open")
		}
	case "unban":
		was, err := api.Unban(ctx, name)
		if err != nil {
			return fmt.Errorf("user unban %s: %w", name, err)
		}
		if was {
			fmt.Fprintf(stdout, "%s is no longer banned from the server and may sign in again\n", name)
		} else {
			fmt.Fprintf(stdout, "%s was not banned from the server\n", name)
		}
	}
	return nil
}

// readNewPassword asks twice on a terminal, or reads one line from a pipe.
func readNewPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "New password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// --- version ---

// buildInfo reads what the Go toolchain embeds: the module version and,
// when built from a checkout with VCS stamping (-buildvcs=true), the commit.
func buildInfo() (version, commit, goVersion string, modified bool) {
	version, commit = "(devel)", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version, commit, "", false
	}
	if info.Main.Version != "" {
		version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return version, commit, info.GoVersion, modified
}

func versionString() string {
	version, commit, goVersion, modified := buildInfo()
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("parley %s, commit %s, %s", version, commit, goVersion)
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("version", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprint(stderr, "Usage: parley version\n\nPrints the version and commit parley was built from.\n")
	}
	if _, err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

// refusingLog takes no commands: a cluster node's database read while the
// node is stopped can be read, not changed.
type refusingLog struct{ err error }

func (r refusingLog) Propose(context.Context, store.Envelope) error { return r.err }

func (refusingLog) Batches() <-chan store.Batch {
	ch := make(chan store.Batch)
	close(ch)
	return ch
}

func (refusingLog) Close() {}
