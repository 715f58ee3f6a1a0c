package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"parley/internal/store"
	"path/filepath"
	"syscall"
	"time"
)

// parley backup and parley restore, and the file handling they share with
// parley compact: files are replaced whole, never left partial, and a
// replaced database keeps its owner and mode.

const backupUsage = `Usage: parley backup [-config FILE] [-db FILE] BACKUP-FILE|-

Writes a consistent copy of the database to BACKUP-FILE while people keep
chatting. With a server running it asks the server (over the admin socket
next to the database) for a snapshot; otherwise it reads the database
directly. The copy is checked before it replaces BACKUP-FILE. Do not copy
the live database with cp: that copy can be torn.

With - instead of a file, the copy goes to standard output, for a pipe into
restic, rclone, age or ssh; a failed copy exits non-zero (use
"set -o pipefail" in scripts).

`

func runBackup(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("backup", backupUsage, stderr)
	pos, err := parseArgs(fset, args, 1)
	if err != nil {
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
	dest := pos[0]
	if dest == "-" {
		// The copy is the output; what is said about it goes to stderr.
		n, err := api.Backup(ctx, stdout)
		if err != nil {
			return fmt.Errorf("backup to standard output: %w", err)
		}
		fmt.Fprintf(stderr, "backed up %s to standard output (%d bytes, %s)\n", cfg.DB.Path, n, how)
		return nil
	}
	n, err := writeFileAtomically(dest, func(w io.Writer) error {
		_, err := api.Backup(ctx, w)
		return err
	}, store.CheckFile, nil)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes, %s)\n", cfg.DB.Path, dest, n, how)
	return nil
}

const restoreUsage = `Usage: parley restore [-config FILE] [-db FILE] BACKUP-FILE|-

Replaces the database with BACKUP-FILE (or, with -, what standard input
holds), after checking it is a sound parley database. It refuses while a
server uses the database: stop parley first. The database it replaces is
kept beside it as DB.before-restore-TIMESTAMP, and the restored file gets
the replaced one's owner and mode, so a restore run as root leaves a
database the service's user can still open.

`

func runRestore(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("restore", restoreUsage, stderr)
	pos, err := parseArgs(fset, args, 1)
	if err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	src, from := pos[0], pos[0]
	if dialAdmin(ctx, adminSocketPath(cfg.DB.Path)) != nil {
		return fmt.Errorf("restore: a parley server is running on %s; stop it first", cfg.DB.Path)
	}
	var in io.Reader
	if src == "-" {
		from, in = "standard input", stdin // checked once it is in a file
	} else {
		if err := store.CheckFile(src); err != nil {
			return fmt.Errorf("restore from %s: %w", src, err)
		}
		f, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		in = f
	}
	owner, err := ownerFor(cfg.DB.Path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fi, statErr := os.Stat(cfg.DB.Path)
	existed := statErr == nil
	// Hold the database's lock while swapping files, so no server can
	// open it half-way.
	unlock, err := store.LockFile(cfg.DB.Path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer unlock()
	var kept string
	if existed && fi.Size() > 0 {
		if kept, err = keepBeside(cfg.DB.Path, "before-restore"); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	n, err := writeFileAtomically(cfg.DB.Path, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	}, store.CheckFile, &owner)
	if err != nil {
		if kept != "" {
			os.Remove(kept) // the database is still in place
		}
		if !existed {
			os.Remove(cfg.DB.Path) // the empty file the lock created
		}
		return fmt.Errorf("restore %s to %s: %w", from, cfg.DB.Path, err)
	}
	fmt.Fprintf(stdout, "restored %s from %s (%d bytes)\n", cfg.DB.Path, from, n)
	if kept != "" {
		fmt.Fprintf(stdout, "the previous database is kept as %s\n", kept)
	}
	return nil
}

// keepBeside links path to path.WHAT-TIMESTAMP, so the file stays there
// after path is replaced, and returns the new name.
func keepBeside(path, what string) (string, error) {
	kept := fmt.Sprintf("%s.%s-%s", path, what, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Link(path, kept); err != nil {
		return "", fmt.Errorf("keep %s as %s: %w", path, kept, err)
	}
	return kept, nil
}

// fileOwner is the owner and permissions a written file gets.
type fileOwner struct {
	uid, gid int
	mode     fs.FileMode
}

// ownerFor is what a file written at path should get: what the file there
// has now or, when there is none, its directory's owner and mode 0600.
// A command run as root (restore, compact, user add on a new database)
// then leaves a database that the service's user can open.
func ownerFor(path string) (fileOwner, error) {
	fi, err := os.Stat(path)
	mode := fs.FileMode(0)
	if errors.Is(err, fs.ErrNotExist) {
		fi, err = os.Stat(filepath.Dir(path))
		mode = 0o600
	}
	if err != nil {
		return fileOwner{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileOwner{}, fmt.Errorf("no owner for %s on this system", path)
	}
	if mode == 0 {
		mode = fi.Mode().Perm()
	}
	return fileOwner{uid: int(st.Uid), gid: int(st.Gid), mode: mode}, nil
}

// apply gives f the owner, when this process may (as root; nobody else
// can give files away), and the mode.
func (o fileOwner) apply(f *os.File) error {
	if os.Geteuid() == 0 {
		if err := f.Chown(o.uid, o.gid); err != nil {
			return err
		}
	}
	return f.Chmod(o.mode)
}

// writeFileAtomically writes path through a temporary file in the same
// directory, syncs it, gives it owner (nil: this user, mode 0600), checks
// it, and renames it into place, so path is never a partial file.
func writeFileAtomically(path string, write func(io.Writer) error, check func(string) error, owner *fileOwner) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if owner == nil {
		owner = &fileOwner{uid: os.Getuid(), gid: os.Getgid(), mode: 0o600}
	}
	if err := owner.apply(tmp); err != nil {
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
