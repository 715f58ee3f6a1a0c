package store

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Sizes says how large the database is and what fills it, in bytes.
type Sizes struct {
	File        int64 // the database file, as the disk counts it
	Free        int64 // pages inside it that hold nothing: parley compact gives them back
	Uploads     int   // uploaded files kept
	UploadBytes int64 // their bytes
}

// Sizes measures the database. Finding the free pages reads every page
// header, a fraction of a second per hundred MiB: it is for parley status,
// not for every metrics scrape (UploadTotals is cheap).
func (s *Store) Sizes() (Sizes, error) {
	var z Sizes
	err := s.view(func(tx *bolt.Tx) error {
		z.Uploads, z.UploadBytes = uploadTotals(tx)
		pageSize := int64(tx.DB().Info().PageSize)
		for id := range int(tx.Size() / pageSize) {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p != nil && p.Type == "free" {
				z.Free += pageSize
			}
		}
		return nil
	})
	if err != nil {
		return Sizes{}, fmt.Errorf("measure the database: %w", err)
	}
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return Sizes{}, fmt.Errorf("measure the database: %w", err)
	}
	z.File = fi.Size()
	return z, nil
}

// UploadTotals is how many uploaded files the database keeps and their
// bytes (zero when the store cannot be read).
func (s *Store) UploadTotals() (files int, bytes int64) {
	_ = s.view(func(tx *bolt.Tx) error {
		files, bytes = uploadTotals(tx)
		return nil
	})
	return files, bytes
}

func uploadTotals(tx *bolt.Tx) (int, int64) {
	return tx.Bucket(bucketFiles).Stats().KeyN, getCounter(tx.Bucket(bucketUsage), keyUsageTotal)
}
