package store

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Export writes the whole content of the database as text, one line per
// key in key order, nested buckets as paths, with each bucket's sequence
// counter: two databases export alike exactly when they hold the same
// state. It is how the same commands applied twice are compared.
func (s *Store) Export(w io.Writer) error {
	bw := bufio.NewWriter(w)
	err := s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return exportBucket(bw, printable(name), b)
		})
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return bw.Flush()
}

func exportBucket(w *bufio.Writer, path string, b *bolt.Bucket) error {
	fmt.Fprintf(w, "%s\t#seq\t%d\n", path, b.Sequence())
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if child := b.Bucket(k); child != nil {
				return exportBucket(w, path+"/"+printable(k), child)
			}
		}
		_, err := fmt.Fprintf(w, "%s\t%s\t%s\n", path, printable(k), printable(v))
		return err
	})
}

// printable shows text as it is and anything else in hex.
func printable(b []byte) string {
	if utf8.Valid(b) {
		for _, c := range b {
			if c < 0x20 || c == 0x7f {
				return "0x" + hex.EncodeToString(b)
			}
		}
		return string(b)
	}
	return "0x" + hex.EncodeToString(b)
}
