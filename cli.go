package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
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
		config: fset.String("config", "", "config file (default config.yaml when it exists)"),
		db:     fset.String("db", "", "database file (default parley.db; db.path)"),
	}
	fset.Usage = func() {
		fmt.Fprint(stderr, usage)
		fset.PrintDefaults()
	}
	return fset, c
}

// parseArgs parses flags and checks the number of positional arguments.
func parseArgs(fset *flag.FlagSet, args []string, want int) error {
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fset.NArg() != want {
		fset.Usage()
		return usageError{fmt.Sprintf("%s takes %d argument(s), got %d", fset.Name(), want, fset.NArg())}
	}
	return nil
}

func (c commonFlags) load(environ []string) (Config, error) {
	settings := map[string]string{}
	if *c.db != "" {
		settings["db.path"] = *c.db
	}
	return loadConfig(configSources{File: *c.config, Environ: environ, FlagSettings: settings})
}

// openAdmin reaches the database: through the admin socket of the server
// that holds it, or directly when none does. mustExist refuses to create
// a database that is not there yet.
func openAdmin(ctx context.Context, cfg Config, stderr io.Writer, mustExist bool) (adminAPI, string, func(), error) {
	sock := adminSocketPath(cfg.DB.Path)
	if c := dialAdmin(ctx, sock); c != nil {
		return c, "through the running server", func() {}, nil
	}
	if _, err := os.Stat(cfg.DB.Path); mustExist && err != nil {
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
	// The same write path as the server's, without connections to tell.
	b := newBus(store.NewLog(st, logger), nil, nil, logger, time.Now)
	a := &admin{store: st, bus: b, hasher: auth.NewHasher(auth.DefaultArgon2(), 1), publicURL: publicURL(cfg), resetTTL: cfg.Auth.ResetTTL}
	return a, "directly (no server running)", func() {
		b.Close()
		if err := st.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}, nil
}

// publicURL is the address people open, for links the server hands out.
func publicURL(cfg Config) string {
	if cfg.Server.PublicURL != "" {
		return cfg.Server.PublicURL
	}
	_, port, _ := net.SplitHostPort(cfg.Server.Addr)
	if cfg.TLS.enabled() {
		if len(cfg.TLS.ACME.Domains) > 0 {
			return "https://" + cfg.TLS.ACME.Domains[0]
		}
		return "https://localhost:" + port
	}
	return "http://localhost:" + port
}

// --- backup and restore ---

const backupUsage = `Usage: parley backup [-config FILE] [-db FILE] BACKUP-FILE

Writes a consistent copy of the database to BACKUP-FILE while people keep
chatting. With a server running it asks the server (over the admin socket
next to the database) for a snapshot; otherwise it reads the database
directly. The copy is checked before it replaces BACKUP-FILE. Do not copy
the live database with cp: that copy can be torn.

`

func runBackup(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("backup", backupUsage, stderr)
	if err := parseArgs(fset, args, 1); err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	api, how, done, err := openAdmin(ctx, cfg, stderr, true)
	if err != nil {
		return err
	}
	defer done()
	dest := fset.Arg(0)
	n, err := writeFileAtomically(dest, func(w io.Writer) error {
		_, err := api.Backup(ctx, w)
		return err
	}, store.CheckFile)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes, %s)\n", cfg.DB.Path, dest, n, how)
	return nil
}

// writeFileAtomically writes path through a temporary file in the same
// directory, syncs it, checks it, and renames it into place, so path is
// never a partial file.
func writeFileAtomically(path string, write func(io.Writer) error, check func(string) error) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return 0, err
	}
	counter := &countingWriter{w: tmp}
	if err := write(counter); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := check(tmp.Name()); err != nil {
		return 0, fmt.Errorf("the copy does not check out: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	return counter.n, syncDir(filepath.Dir(path))
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

const restoreUsage = `Usage: parley restore [-config FILE] [-db FILE] BACKUP-FILE

Replaces the database with BACKUP-FILE, after checking it is a sound parley
database. It refuses while a server uses the database: stop parley first.
The database it replaces is kept beside it as DB.before-restore-TIMESTAMP.

`

func runRestore(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("restore", restoreUsage, stderr)
	if err := parseArgs(fset, args, 1); err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	src := fset.Arg(0)
	if dialAdmin(ctx, adminSocketPath(cfg.DB.Path)) != nil {
		return fmt.Errorf("restore: a parley server is running on %s; stop it first", cfg.DB.Path)
	}
	if err := store.CheckFile(src); err != nil {
		return fmt.Errorf("restore from %s: %w", src, err)
	}
	fi, statErr := os.Stat(cfg.DB.Path)
	existed := statErr == nil && fi.Size() > 0
	// Hold the database's lock while swapping files, so no server can
	// open it half-way.
	unlock, err := store.LockFile(cfg.DB.Path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer unlock()
	var kept string
	if existed {
		kept = fmt.Sprintf("%s.before-restore-%s", cfg.DB.Path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Link(cfg.DB.Path, kept); err != nil {
			return fmt.Errorf("restore: keep the current database as %s: %w", kept, err)
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	n, err := writeFileAtomically(cfg.DB.Path, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	}, store.CheckFile)
	if err != nil {
		return fmt.Errorf("restore %s to %s: %w", src, cfg.DB.Path, err)
	}
	fmt.Fprintf(stdout, "restored %s from %s (%d bytes)\n", cfg.DB.Path, src, n)
	if kept != "" {
		fmt.Fprintf(stdout, "the previous database is kept as %s\n", kept)
	}
	return nil
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
	if err := parseArgs(fset, args, wantName); err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	name := fset.Arg(0)
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
	if err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}
