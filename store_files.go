package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Uploaded files live in the database, in chunks, so `parley backup`
// copies them with everything else. An upload belongs to its uploader
// until a message attaches it; it goes when that message is deleted or
// trimmed, or after a day unattached.
//
//	files     fileID -> fileRecord (JSON)
//	fileData  fileID/chunk index -> bytes   (nested bucket per file)
//	usage     userID -> bytes of uploads held, and "total" -> all of them

// fileChunkBytes is the size of one stored piece of a file: small enough
// that serving a file never holds a transaction for long.
const fileChunkBytes = 256 << 10

// unattachedFileTTL is how long an upload waits for a message.
const unattachedFileTTL = 24 * time.Hour

var (
	ErrQuotaExceeded = errors.New("upload quota exceeded")
	ErrFileNotFound  = errors.New("file not found")
	keyUsageTotal    = []byte("total")
)

// FileRef is how a message names an attached file.
type FileRef struct {
	ID          string `json:"id"`
	Name        string `json:"n"`
	Size        int64  `json:"s"`
	ContentType string `json:"t"`
}

// StoredFile is an upload's metadata.
type StoredFile struct {
	FileRef
	Owner     uint64
	CreatedAt time.Time
	Attached  bool
}

type fileRecord struct {
	Name        string    `json:"name"`
	Size        int64     `json:"size"`
	ContentType string    `json:"type"`
	Owner       uint64    `json:"owner"`
	CreatedAt   time.Time `json:"createdAt"`
	Conv        []byte    `json:"conv,omitempty"` // set once attached
	Seq         uint64    `json:"seq,omitempty"`
	Chunks      int       `json:"chunks"`
}

func (r fileRecord) stored(id string) StoredFile {
	return StoredFile{FileRef: FileRef{ID: id, Name: r.Name, Size: r.Size, ContentType: r.ContentType},
		Owner: r.Owner, CreatedAt: r.CreatedAt, Attached: r.Conv != nil}
}

// UploadQuota bounds uploads: per user and for the whole server, in bytes
// held; 0 is no limit.
type UploadQuota struct {
	PerUser int64
	Total   int64
}

// PutFile stores data as a new upload of owner's, if the quotas allow.
func (s *Store) PutFile(owner uint64, name, contentType string, data []byte, now time.Time, q UploadQuota) (StoredFile, error) {
	idBytes := make([]byte, 16)
	rand.Read(idBytes)
	id := hex.EncodeToString(idBytes) // 128 bits: the id is also the capability to fetch it
	rec := fileRecord{Name: name, Size: int64(len(data)), ContentType: contentType, Owner: owner, CreatedAt: now.UTC(),
		Chunks: (len(data) + fileChunkBytes - 1) / fileChunkBytes}
	err := s.update(func(tx *bolt.Tx) error {
		usage := tx.Bucket(bucketUsage)
		mine, total := getCounter(usage, u64key(owner)), getCounter(usage, keyUsageTotal)
		if (q.PerUser > 0 && mine+rec.Size > q.PerUser) || (q.Total > 0 && total+rec.Size > q.Total) {
			return ErrQuotaExceeded
		}
		chunks, err := tx.Bucket(bucketFileData).CreateBucket([]byte(id))
		if err != nil {
			return err
		}
		chunks.FillPercent = 1 // written once, in order
		for i := 0; i < rec.Chunks; i++ {
			end := min((i+1)*fileChunkBytes, len(data))
			if err := chunks.Put(u64key(uint64(i)), data[i*fileChunkBytes:end]); err != nil {
				return err
			}
		}
		if err := putJSON(tx.Bucket(bucketFiles), []byte(id), rec); err != nil {
			return err
		}
		if err := putCounter(usage, u64key(owner), mine+rec.Size); err != nil {
			return err
		}
		return putCounter(usage, keyUsageTotal, total+rec.Size)
	})
	return rec.stored(id), err
}

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

// Chunks is how many pieces an upload has.
func (f StoredFile) Chunks() int { return int((f.Size + fileChunkBytes - 1) / fileChunkBytes) }

// UploadUsage is how many bytes of uploads a user holds.
func (s *Store) UploadUsage(owner uint64) int64 {
	var n int64
	_ = s.view(func(tx *bolt.Tx) error { n = getCounter(tx.Bucket(bucketUsage), u64key(owner)); return nil })
	return n
}

// PurgeUnattachedFiles deletes uploads no message took within
// unattachedFileTTL.
func (s *Store) PurgeUnattachedFiles(now time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		var stale []string
		if err := tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
			var rec fileRecord
			if json.Unmarshal(v, &rec) == nil && rec.Conv == nil && now.Sub(rec.CreatedAt) > unattachedFileTTL {
				stale = append(stale, string(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range stale {
			if err := deleteFile(tx, id); err != nil {
				return err
			}
		}
		n = len(stale)
		return nil
	})
	return n, err
}

func getFile(tx *bolt.Tx, id string) (fileRecord, error) {
	var rec fileRecord
	v := tx.Bucket(bucketFiles).Get([]byte(id))
	if v == nil {
		return rec, ErrNotFound
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("decode file %s: %w", id, err)
	}
	return rec, nil
}

// checkFiles validates the uploads a new message wants to attach: they
// exist, belong to the sender, and no other message has them.
func checkFiles(tx *bolt.Tx, ids []string, sender uint64) ([]StoredFile, error, error) {
	var out []StoredFile
	for _, id := range ids {
		rec, err := getFile(tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrFileNotFound, id), nil
		} else if err != nil {
			return nil, nil, err
		}
		if rec.Owner != sender || rec.Conv != nil {
			return nil, fmt.Errorf("%w: file %s", ErrNotAllowed, id), nil
		}
		out = append(out, rec.stored(id))
	}
	return out, nil, nil
}

// attachFiles records that a message now holds the files.
func attachFiles(tx *bolt.Tx, files []StoredFile, conv Conv, seq uint64) ([]FileRef, error) {
	var refs []FileRef
	for _, f := range files {
		rec, err := getFile(tx, f.ID)
		if err != nil {
			return nil, err
		}
		rec.Conv, rec.Seq = conv.key(), seq
		if err := putJSON(tx.Bucket(bucketFiles), []byte(f.ID), rec); err != nil {
			return nil, err
		}
		refs = append(refs, f.FileRef)
	}
	return refs, nil
}

// deleteMessageFiles deletes the files of a stored message record that is
// going away.
func deleteMessageFiles(tx *bolt.Tx, v []byte) error {
	var rec struct {
		Files []FileRef `json:"f"`
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	for _, f := range rec.Files {
		if err := deleteFile(tx, f.ID); err != nil {
			return err
		}
	}
	return nil
}

func deleteFile(tx *bolt.Tx, id string) error {
	rec, err := getFile(tx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := tx.Bucket(bucketFileData).DeleteBucket([]byte(id)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	if err := tx.Bucket(bucketFiles).Delete([]byte(id)); err != nil {
		return err
	}
	usage := tx.Bucket(bucketUsage)
	if err := putCounter(usage, u64key(rec.Owner), max(getCounter(usage, u64key(rec.Owner))-rec.Size, 0)); err != nil {
		return err
	}
	return putCounter(usage, keyUsageTotal, max(getCounter(usage, keyUsageTotal)-rec.Size, 0))
}

func getCounter(b *bolt.Bucket, key []byte) int64 {
	if v := b.Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func putCounter(b *bolt.Bucket, key []byte, n int64) error { return b.Put(key, u64key(uint64(n))) }
