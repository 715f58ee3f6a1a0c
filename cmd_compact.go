package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"parley/internal/store"
	"path/filepath"
)

const compactUsage = `Usage: parley compact [-config FILE] [-db FILE]

Gives the database's free space back to the disk. A bbolt file never
shrinks by itself: deleted messages and uploads leave free pages inside it
that parley reuses but does not return (parley status shows how much).
compact copies everything into a new file, packed full, checks the copy,
and puts it in place with the old file's owner and mode. The old file is
kept beside it as DB.before-compact-TIMESTAMP: delete it once parley runs
well on the new one.

The server must be stopped (systemctl stop parley), and the disk needs room
for the copy.

`

func runCompact(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fset, common := newFlagSet("compact", compactUsage, stderr)
	if _, err := parseArgs(fset, args, 0); err != nil {
		return err
	}
	cfg, err := common.load(environ)
	if err != nil {
		return err
	}
	path := cfg.DB.Path
	if dialAdmin(ctx, adminSocketPath(path)) != nil {
		return fmt.Errorf("compact: a parley server is running on %s; stop it first", path)
	}
	owner, err := ownerFor(path)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	before, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	var kept string
	var after int64
	err = store.Compact(path, cfg.DB.LockTimeout, func(compacted string) error {
		f, err := os.Open(compacted)
		if err != nil {
			return err
		}
		err = owner.apply(f)
		fi, statErr := f.Stat()
		f.Close()
		if err != nil {
			return fmt.Errorf("give the copy the database's owner and mode: %w", err)
		}
		if statErr != nil {
			return statErr
		}
		after = fi.Size()
		if kept, err = keepBeside(path, "before-compact"); err != nil {
			return err
		}
		if err := os.Rename(compacted, path); err != nil {
			os.Remove(kept) // the database is still in place
			return err
		}
		return syncDir(filepath.Dir(path))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %s -> %s\n", path, humanBytes(before.Size()), humanBytes(after))
	fmt.Fprintf(stdout, "the previous database is kept as %s; delete it once parley runs well\n", kept)
	return nil
}

// humanBytes writes a size for people, to one decimal: 12.3 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
