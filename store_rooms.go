package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

type roomRecord struct {
	CreatedAt     time.Time            `json:"createdAt"`
	CreatedBy     uint64               `json:"createdBy"`
	LastMessageAt time.Time            `json:"lastMessageAt,omitzero"`
	MemberCount   int                  `json:"memberCount"`
	Private       bool                 `json:"private,omitempty"`
	Topic         string               `json:"topic,omitempty"`
	Moderators    []uint64             `json:"moderators,omitempty"`
	Bans          map[uint64]RoomBan   `json:"bans,omitempty"`
	Mutes         map[uint64]time.Time `json:"mutes,omitempty"`
}

func (r roomRecord) room(id string) Room {
	return Room{ID: id, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, LastMessageAt: r.LastMessageAt, MemberCount: r.MemberCount,
		Private: r.Private, Topic: r.Topic, Moderators: r.Moderators, Bans: r.Bans, Mutes: r.Mutes}
}

func getRoom(tx *bolt.Tx, roomID string) (roomRecord, error) {
	var rec roomRecord
	v := tx.Bucket(bucketRooms).Get([]byte(roomID))
	if v == nil {
		return rec, ErrNotFound
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("decode room %s: %w", roomID, err)
	}
	return rec, nil
}

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

// UpdateRoom changes a room's settings (topic, moderators, bans, mutes)
// through fn, in one transaction. fn sees the current room and returns
// the changed one, or an error to change nothing.
func (s *Store) UpdateRoom(roomID string, fn func(Room) (Room, error)) (Room, error) {
	var out Room
	err := s.update(func(tx *bolt.Tx) error {
		rec, err := getRoom(tx, roomID)
		if err != nil {
			return err
		}
		r, err := fn(rec.room(roomID))
		if err != nil {
			return err
		}
		rec.Topic, rec.Moderators, rec.Bans, rec.Mutes = r.Topic, r.Moderators, r.Bans, r.Mutes
		out = rec.room(roomID)
		return putJSON(tx.Bucket(bucketRooms), []byte(roomID), rec)
	})
	return out, err
}

// BanFromRoom ends a user's membership and keeps them from joining again
// until the ban is deleted from Room.Bans. It reports whether the user
// was a member.
func (s *Store) BanFromRoom(roomID string, userID uint64, ban RoomBan) (bool, error) {
	was := false
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if was, err = leaveRoomTx(tx, roomID, userID); err != nil {
			return err
		}
		rec, err := getRoom(tx, roomID)
		if err != nil {
			return err
		}
		if rec.Bans == nil {
			rec.Bans = map[uint64]RoomBan{}
		}
		rec.Bans[userID] = ban
		rec.Moderators = slices.DeleteFunc(rec.Moderators, func(id uint64) bool { return id == userID })
		return putJSON(tx.Bucket(bucketRooms), []byte(roomID), rec)
	})
	return was, err
}

// JoinRoom makes the user a member of the room, creating the room when it
// does not exist. Joining a room twice changes nothing. Within lim, it
// fails with ErrTooManyRooms or ErrCreateNotAllowed.
func (s *Store) JoinRoom(roomID string, user Member, now time.Time, lim JoinLimits) (JoinResult, error) {
	var res JoinResult
	err := s.update(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bucketRooms)
		rec, err := getRoom(tx, roomID)
		switch {
		case errors.Is(err, ErrNotFound):
			rec = roomRecord{CreatedAt: now.UTC(), CreatedBy: user.UserID, Private: lim.Private, Topic: lim.Topic}
			res.Created = true
		case err != nil:
			return err
		}
		if isMemberTx(tx, roomID, user.UserID) {
			res.Room = rec.room(roomID)
			return nil
		}
		uid := u64key(user.UserID)
		if _, banned := rec.Bans[user.UserID]; banned {
			return ErrBanned
		}
		if rec.Private && !res.Created && !lim.Invited {
			return ErrPrivateRoom
		}
		mine, err := tx.Bucket(bucketUserRooms).CreateBucketIfNotExists(uid)
		if err != nil {
			return err
		}
		if lim.MaxRooms > 0 && mine.Stats().KeyN >= lim.MaxRooms {
			return ErrTooManyRooms
		}
		if res.Created && lim.NoCreate {
			return ErrCreateNotAllowed
		}
		members, err := tx.Bucket(bucketMembers).CreateBucketIfNotExists([]byte(roomID))
		if err != nil {
			return err
		}
		res.NewMember = true
		rec.MemberCount++
		if err := members.Put(uid, []byte(user.Name)); err != nil {
			return err
		}
		if err := mine.Put([]byte(roomID), []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
			return err
		}
		res.Room = rec.room(roomID)
		return putJSON(rooms, []byte(roomID), rec)
	})
	return res, err
}

// LeaveRoom ends the user's membership. It reports whether the user was a
// member. The room and its history stay.
func (s *Store) LeaveRoom(roomID string, userID uint64) (bool, error) {
	was := false
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		was, err = leaveRoomTx(tx, roomID, userID)
		return err
	})
	return was, err
}

func leaveRoomTx(tx *bolt.Tx, roomID string, userID uint64) (bool, error) {
	members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
	uid := u64key(userID)
	if members == nil || members.Get(uid) == nil {
		return false, nil
	}
	if err := members.Delete(uid); err != nil {
		return false, err
	}
	if mine := tx.Bucket(bucketUserRooms).Bucket(uid); mine != nil {
		if err := mine.Delete([]byte(roomID)); err != nil {
			return false, err
		}
	}
	rooms := tx.Bucket(bucketRooms)
	v := rooms.Get([]byte(roomID))
	if v == nil {
		return true, nil
	}
	var rec roomRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return false, fmt.Errorf("decode room %s: %w", roomID, err)
	}
	rec.MemberCount--
	return true, putJSON(rooms, []byte(roomID), rec)
}

// UserRooms lists the rooms the user belongs to, by room id.
func (s *Store) UserRooms(userID uint64) ([]Room, error) {
	var out []Room
	err := s.view(func(tx *bolt.Tx) error {
		mine := tx.Bucket(bucketUserRooms).Bucket(u64key(userID))
		if mine == nil {
			return nil
		}
		rooms := tx.Bucket(bucketRooms)
		return mine.ForEach(func(k, _ []byte) error {
			var rec roomRecord
			if err := json.Unmarshal(rooms.Get(k), &rec); err != nil {
				return fmt.Errorf("decode room %s: %w", k, err)
			}
			out = append(out, rec.room(string(k)))
			return nil
		})
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

// IsMember reports whether a user, online or not, is a member of a room.
func (s *Store) IsMember(roomID string, userID uint64) (bool, error) {
	var is bool
	err := s.view(func(tx *bolt.Tx) error {
		is = isMemberTx(tx, roomID, userID)
		return nil
	})
	return is, err
}

func isMemberTx(tx *bolt.Tx, roomID string, userID uint64) bool {
	members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
	return members != nil && members.Get(u64key(userID)) != nil
}

// RoomMembers lists a room's members in id order; an unknown room has none.
func (s *Store) RoomMembers(roomID string) ([]Member, error) {
	var out []Member
	err := s.view(func(tx *bolt.Tx) error {
		members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
		if members == nil {
			return nil
		}
		return members.ForEach(func(k, v []byte) error {
			out = append(out, Member{UserID: binary.BigEndian.Uint64(k), Name: string(v)})
			return nil
		})
	})
	return out, err
}
