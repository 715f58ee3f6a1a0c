package store

import bolt "go.etcd.io/bbolt"

// File returns an upload's metadata.
func (s *Store) File(id string) (StoredFile, error) {
	var f StoredFile
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := getFile(tx, id)
		f = rec.stored(id)
		return err
	})
	return f, err
}

// FileChunk returns piece i of an upload, copied out of the transaction.
func (s *Store) FileChunk(id string, i int) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketFileData).Bucket([]byte(id))
		if chunks == nil {
			return ErrNotFound
		}
		v := chunks.Get(u64key(uint64(i)))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// UploadUsage is how many bytes of uploads a user holds.
func (s *Store) UploadUsage(owner uint64) int64 {
	var n int64
	_ = s.view(func(tx *bolt.Tx) error { n = getCounter(tx.Bucket(bucketUsage), u64key(owner)); return nil })
	return n
}
