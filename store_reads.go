package main

import (
	"encoding/binary"
	"encoding/json"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Read state. Each user has a read marker per room (roomReads) and per
// direct conversation (dmPeers): the seq of the last message they have
// read. Markers only move forward; sending a message moves the sender's.

// maxUnreadCount bounds the messages counted per conversation when
// working out unread and mention counts; clients show "999+".
const maxUnreadCount = 999

// ReadState is a user's position in one room.
type ReadState struct {
	LastRead uint64
	Unread   int // messages after LastRead, up to maxUnreadCount
	Mentions int // of those, ones that mention the user
}

// MarkRoomRead records that user has read the room up to seq.
func (s *Store) MarkRoomRead(user uint64, roomID string, seq uint64) error {
	return s.update(func(tx *bolt.Tx) error { return setRoomRead(tx, user, roomID, seq) })
}

func setRoomRead(tx *bolt.Tx, user uint64, roomID string, seq uint64) error {
	mine, err := tx.Bucket(bucketRoomReads).CreateBucketIfNotExists(u64key(user))
	if err != nil {
		return err
	}
	if v := mine.Get([]byte(roomID)); v != nil && binary.BigEndian.Uint64(v) >= seq {
		return nil
	}
	return mine.Put([]byte(roomID), u64key(seq))
}

// RoomReadStates returns the user's read state in each of rooms.
func (s *Store) RoomReadStates(user uint64, rooms []string) (map[string]ReadState, error) {
	out := make(map[string]ReadState, len(rooms))
	err := s.view(func(tx *bolt.Tx) error {
		mine := tx.Bucket(bucketRoomReads).Bucket(u64key(user))
		for _, roomID := range rooms {
			var st ReadState
			if mine != nil {
				if v := mine.Get([]byte(roomID)); v != nil {
					st.LastRead = binary.BigEndian.Uint64(v)
				}
			}
			conv := tx.Bucket(bucketMessages).Bucket(RoomConv(roomID).key())
			if conv != nil {
				c := conv.Cursor()
				for k, v := c.Seek(u64key(st.LastRead + 1)); k != nil && st.Unread < maxUnreadCount; k, v = c.Next() {
					var rec struct {
						Sender   uint64   `json:"s"`
						Deleted  bool     `json:"d"`
						Mentions []uint64 `json:"m"`
					}
					if json.Unmarshal(v, &rec) != nil || rec.Deleted || rec.Sender == user {
						continue
					}
					st.Unread++
					if slices.Contains(rec.Mentions, user) {
						st.Mentions++
					}
				}
			}
			out[roomID] = st
		}
		return nil
	})
	return out, err
}
