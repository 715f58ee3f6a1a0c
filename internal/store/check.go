package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Damaged records. bbolt checks its pages, not what they hold: a flipped
// byte inside a stored message leaves a file that opens, with one record
// that no longer decodes. Readers skip such a record and log it once;
// apply treats it as gone (a reply to it, an edit, a reaction are
// refused with not found) and trimming deletes it in its turn; Check
// lists every one, for `parley check`.

// decode decodes a stored message of conv, or reports it as damaged and
// says to skip it.
func (s *Store) decode(conv Conv, k, v []byte, b *bolt.Bucket) (Message, bool) {
	m, err := decodeMessage(k, v, conv.RoomID, b)
	if err != nil {
		s.reportBad(conv, k, v)
		return Message{}, false
	}
	return m, true
}

// maxReportedBad bounds the damaged records remembered as logged.
const maxReportedBad = 1000

// reportBad logs a damaged message record, once per record while the
// process runs.
func (s *Store) reportBad(conv Conv, k, _ []byte) {
	where := conv.describe() + "/" + fmt.Sprint(binary.BigEndian.Uint64(k))
	s.badMu.Lock()
	_, seen := s.bad[where]
	if !seen && len(s.bad) < maxReportedBad {
		s.bad[where] = struct{}{}
	}
	s.badMu.Unlock()
	if !seen {
		s.log.Warn("skipping an undecodable message record; run parley check", "message", where)
	}
}

// describe names a conversation for people: room NAME, or direct A-B.
func (c Conv) describe() string {
	if c.IsDirect() {
		return fmt.Sprintf("direct %d-%d", c.A, c.B)
	}
	return "room " + c.RoomID
}

// convOfKey is the conversation a message bucket's name stands for.
func convOfKey(key []byte) (Conv, bool) {
	switch {
	case len(key) > 1 && key[0] == 'r':
		return RoomConv(string(key[1:])), true
	case len(key) == 17 && key[0] == 'd':
		return DirectConv(binary.BigEndian.Uint64(key[1:9]), binary.BigEndian.Uint64(key[9:])), true
	}
	return Conv{}, false
}

// Problem is one damaged record that Check found.
type Problem struct {
	Where string `json:"where"` // "users/7", "messages/room general/42"
	Err   string `json:"error"`
}

// Check decodes every record of the database (users, tokens, reset
// links, rooms, messages and file records) in one read transaction and
// lists those that do not decode. It reads, never writes: a damaged
// message goes when its conversation is trimmed past it.
func (s *Store) Check() ([]Problem, error) {
	var out []Problem
	bad := func(where string, err error) { out = append(out, Problem{Where: where, Err: err.Error()}) }
	records := func(tx *bolt.Tx, bucket []byte, name func(k []byte) string, v any) error {
		return tx.Bucket(bucket).ForEach(func(k, raw []byte) error {
			if raw == nil {
				return nil // a nested bucket
			}
			if err := json.Unmarshal(raw, v); err != nil {
				bad(string(bucket)+"/"+name(k), err)
			}
			return nil
		})
	}
	id := func(k []byte) string {
		if len(k) == 8 {
			return fmt.Sprint(binary.BigEndian.Uint64(k))
		}
		return fmt.Sprintf("%x", k)
	}
	hash := func(k []byte) string { return fmt.Sprintf("%x…", k[:min(len(k), 4)]) }
	str := func(k []byte) string { return string(k) }
	err := s.view(func(tx *bolt.Tx) error {
		for _, r := range []struct {
			bucket []byte
			name   func([]byte) string
			v      any
		}{
			{bucketUsers, id, &userRecord{}},
			{bucketTokens, hash, &tokenRecord{}},
			{bucketResets, hash, &tokenRecord{}},
			{bucketRooms, str, &roomRecord{}},
			{bucketFiles, str, &fileRecord{}},
		} {
			if err := records(tx, r.bucket, r.name, r.v); err != nil {
				return err
			}
		}
		msgs := tx.Bucket(bucketMessages)
		return msgs.ForEachBucket(func(key []byte) error {
			conv, ok := convOfKey(key)
			if !ok {
				bad("messages/"+fmt.Sprintf("%x", key), fmt.Errorf("not a conversation"))
				return nil
			}
			return msgs.Bucket(key).ForEach(func(k, v []byte) error {
				var rec messageRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					bad("messages/"+conv.describe()+"/"+id(k), err)
				}
				return nil
			})
		})
	})
	return out, err
}
