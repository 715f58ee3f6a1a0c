package store

import (
	"bytes"
	"encoding/binary"
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

var keyUsageTotal = []byte("total")

type fileRecord struct {
	Name        string    `json:"name"`
	Size        int64     `json:"size"`
	ContentType string    `json:"type"`
	Owner       uint64    `json:"owner"`
	CreatedAt   time.Time `json:"createdAt"`
	Conv        []byte    `json:"conv,omitempty"` // set once attached
	Seq         uint64    `json:"seq,omitempty"`
	Chunks      int       `json:"chunks"`
	// External: the bytes are kept outside the database (a cluster's
	// object store), under the file's id.
	External bool `json:"external,omitempty"`
}

func (r fileRecord) stored(id string) StoredFile {
	return StoredFile{FileRef: FileRef{ID: id, Name: r.Name, Size: r.Size, ContentType: r.ContentType},
		Owner: r.Owner, CreatedAt: r.CreatedAt, Attached: r.Conv != nil, External: r.External}
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

// putFile stores an upload of its owner's, if the quotas allow: its bytes
// in chunks, or, with ExternalSize, only its metadata.
func (a *applier) putFile(c PutFile) (Outcome, error) {
	external := len(c.Data) == 0 && c.ExternalSize > 0
	if c.FileID == "" || (len(c.Data) == 0 && !external) {
		return Outcome{}, fmt.Errorf("%w: a file needs an id and bytes", errBadCommand)
	}
	if a.tx.Bucket(bucketFiles).Get([]byte(c.FileID)) != nil {
		return Outcome{}, fmt.Errorf("%w: file id %s is taken", errBadCommand, c.FileID)
	}
	rec := fileRecord{Name: c.Name, Size: int64(len(c.Data)), ContentType: c.ContentType, Owner: c.Owner, CreatedAt: a.now,
		Chunks: (len(c.Data) + fileChunkBytes - 1) / fileChunkBytes}
	if external {
		rec.Size, rec.External = c.ExternalSize, true
	}
	usage := a.tx.Bucket(bucketUsage)
	mine, total := getCounter(usage, u64key(c.Owner)), getCounter(usage, keyUsageTotal)
	if (c.Quota.PerUser > 0 && mine+rec.Size > c.Quota.PerUser) || (c.Quota.Total > 0 && total+rec.Size > c.Quota.Total) {
		return Outcome{}, ErrQuotaExceeded
	}
	if err := a.putChunks(c.FileID, c.Data); err != nil {
		return Outcome{}, err
	}
	if err := putJSON(a.tx.Bucket(bucketFiles), []byte(c.FileID), rec); err != nil {
		return Outcome{}, err
	}
	if err := putCounter(usage, u64key(c.Owner), mine+rec.Size); err != nil {
		return Outcome{}, err
	}
	if err := putCounter(usage, keyUsageTotal, total+rec.Size); err != nil {
		return Outcome{}, err
	}
	return Outcome{File: rec.stored(c.FileID)}, nil
}

// putChunks writes a file's bytes in chunks; none for a file kept
// elsewhere.
func (a *applier) putChunks(id string, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	chunks, err := a.tx.Bucket(bucketFileData).CreateBucket([]byte(id))
	if err != nil {
		return err
	}
	chunks.FillPercent = 1 // written once, in order
	n := (len(data) + fileChunkBytes - 1) / fileChunkBytes
	for i := 0; i < n; i++ {
		end := min((i+1)*fileChunkBytes, len(data))
		if err := chunks.Put(u64key(uint64(i)), data[i*fileChunkBytes:end]); err != nil {
			return err
		}
	}
	return nil
}

// checkFiles validates the uploads a new message wants to attach: they
// exist, belong to the sender, and no other message has them.
func (a *applier) checkFiles(ids []string, sender uint64) ([]StoredFile, error) {
	var out []StoredFile
	for _, id := range ids {
		rec, err := getFile(a.tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrFileNotFound, id)
		} else if err != nil {
			return nil, err
		}
		if rec.Owner != sender || rec.Conv != nil {
			return nil, fmt.Errorf("%w: file %s", ErrNotAllowed, id)
		}
		out = append(out, rec.stored(id))
	}
	return out, nil
}

// attachFiles records that a message now holds the files.
func (a *applier) attachFiles(files []StoredFile, conv Conv, seq uint64) ([]FileRef, error) {
	var refs []FileRef
	for _, f := range files {
		rec, err := getFile(a.tx, f.ID)
		if err != nil {
			return nil, err
		}
		rec.Conv, rec.Seq = conv.key(), seq
		if err := putJSON(a.tx.Bucket(bucketFiles), []byte(f.ID), rec); err != nil {
			return nil, err
		}
		refs = append(refs, f.FileRef)
	}
	return refs, nil
}

// deleteMessageFiles deletes the files of a stored message record that is
// going away. A record that does not decode names no files it can find.
func deleteMessageFiles(tx *bolt.Tx, v []byte) error {
	if !bytes.Contains(v, []byte(`"f":`)) {
		return nil // no files (the usual case, on every trimmed message): nothing to decode
	}
	var rec struct {
		Files []FileRef `json:"f"`
	}
	if json.Unmarshal(v, &rec) != nil {
		return nil
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

// purgeUnattachedFiles deletes uploads no message took within
// unattachedFileTTL.
func (a *applier) purgeUnattachedFiles() (int, error) {
	var stale []string
	if err := a.tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
		var rec fileRecord
		if json.Unmarshal(v, &rec) == nil && rec.Conv == nil && a.now.Sub(rec.CreatedAt) > unattachedFileTTL {
			stale = append(stale, string(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, id := range stale {
		if err := deleteFile(a.tx, id); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

func getCounter(b *bolt.Bucket, key []byte) int64 {
	if v := b.Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func putCounter(b *bolt.Bucket, key []byte, n int64) error { return b.Put(key, u64key(uint64(n))) }
