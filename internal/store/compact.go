package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// compactTxBytes bounds the keys and values one transaction of the
// compaction copies, in bytes, so a large database is not held in memory.
const compactTxBytes = 64 << 20

// Compact writes a compacted copy of the database at path to a new
// file beside it, with bbolt's compaction: every bucket, key, value and
// sequence, pages packed full, free pages left out. It holds the
// database's lock throughout, failing with ErrDatabaseInUse while a
// server runs, and calls swap with the checked copy's name while it still
// holds the lock, so the files change places before anyone opens either.
func Compact(path string, lockTimeout time.Duration, swap func(compacted string) error) (err error) {
	// As in Open: a fault inside a damaged file becomes an error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compact %s: %w: the database is corrupted (%v)", path, ErrNotParleyDB, r)
		}
	}()
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("compact: %w", err)
	} else if fi.Size() == 0 {
		// bbolt would make an empty file a database of its own.
		return fmt.Errorf("compact %s: %w: the file is empty", path, ErrNotParleyDB)
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("compact %s: %w", path, ErrDatabaseInUse)
	} else if err != nil {
		return fmt.Errorf("compact %s: %w: %v", path, ErrNotParleyDB, err)
	}
	defer src.Close()
	if err := checkOpenDatabase(src, path); err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".compact-*")
	if err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // after a successful swap this is a no-op
	dst, err := bolt.Open(tmpName, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("compact %s: open the copy: %w", path, err)
	}
	if err := bolt.Compact(dst, src, compactTxBytes); err != nil {
		dst.Close()
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("compact %s: close the copy: %w", path, err)
	}
	if err := CheckFile(tmpName); err != nil {
		return fmt.Errorf("compact %s: the copy does not check out: %w", path, err)
	}
	return swap(tmpName)
}
