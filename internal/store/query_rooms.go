package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Room returns a room's metadata.
func (s *Store) Room(roomID string) (Room, error) {
	var r Room
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := getRoom(tx, roomID)
		r = rec.room(roomID)
		return err
	})
	return r, err
}

// userRooms lists the rooms a user belongs to, by room id.
func userRooms(tx *bolt.Tx, userID uint64) ([]Room, error) {
	mine := tx.Bucket(bucketUserRooms).Bucket(u64key(userID))
	if mine == nil {
		return nil, nil
	}
	var out []Room
	err := mine.ForEach(func(k, _ []byte) error {
		rec, err := getRoom(tx, string(k))
		if err != nil {
			return fmt.Errorf("room %s: %w", k, err)
		}
		out = append(out, rec.room(string(k)))
		return nil
	})
	return out, err
}

// UserRooms lists the rooms a user belongs to, by room id.
func (s *Store) UserRooms(userID uint64) ([]Room, error) {
	var out []Room
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = userRooms(tx, userID)
		return err
	})
	return out, err
}

// RoomCount is how many rooms exist.
func (s *Store) RoomCount() int {
	n := 0
	_ = s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketRooms).Stats().KeyN
		return nil
	})
	return n
}

// Rooms lists every room, by room id.
func (s *Store) Rooms() ([]Room, error) {
	var out []Room
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
			var rec roomRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode room %s: %w", k, err)
			}
			out = append(out, rec.room(string(k)))
			return nil
		})
	})
	return out, err
}

// RoomsPage lists, in room id order, up to limit rooms after the room id
// after (from the first when empty) that userID may see: the public ones
// and the private ones they belong to. more says further ones follow. It
// reads at most maxScan rooms, so a server of many private rooms cannot
// make one page slow; a page cut short that way says more.
func (s *Store) RoomsPage(after string, limit int, userID uint64) (rooms []Room, more bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRooms).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for scanned := 0; k != nil; k, v = c.Next() {
			if scanned++; scanned > maxScan {
				more = true
				return nil
			}
			var rec roomRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode room %s: %w", k, err)
			}
			if rec.Private && !isMemberTx(tx, string(k), userID) {
				continue
			}
			if len(rooms) == limit {
				more = true
				return nil
			}
			rooms = append(rooms, rec.room(string(k)))
		}
		return nil
	})
	return rooms, more, err
}

// IsMember reports whether a user, online or not, is a member of a room.
func (s *Store) IsMember(roomID string, userID uint64) (bool, error) {
	var is bool
	err := s.view(func(tx *bolt.Tx) error {
		is = isMemberTx(tx, roomID, userID)
		return nil
	})
	return is, err
}

func roomMembers(tx *bolt.Tx, roomID string) []Member {
	members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
	if members == nil {
		return nil
	}
	var out []Member
	_ = members.ForEach(func(k, v []byte) error {
		out = append(out, Member{UserID: binary.BigEndian.Uint64(k), Name: string(v)})
		return nil
	})
	return out
}

// RoomMembers lists a room's members in id order; an unknown room has none.
func (s *Store) RoomMembers(roomID string) ([]Member, error) {
	var out []Member
	err := s.view(func(tx *bolt.Tx) error { out = roomMembers(tx, roomID); return nil })
	return out, err
}
