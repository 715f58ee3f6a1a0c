package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// Views are the reads that a connection must line up with the stream of
// events: each is taken in one transaction and says at which log position
// (Seq) it was taken, so the caller can tell whether an event it has
// already seen go by came after the view.

// SignInView is what a connection needs to sign in.
type SignInView struct {
	Seq     uint64
	User    User
	Expires time.Time // the token's
	Rooms   []Room
	Reads   map[string]ReadState
	Directs []DirectConversation
	Peers   []uint64          // direct conversations, including ones trimmed empty
	Notify  map[string]string // rooms whose notify level is not the default
}

// SignInView reads, in one transaction, the account a token signs in, the
// user's rooms, read state and direct conversations. A token that has been
// revoked or has expired, or whose account is deleted or suspended, is
// ErrNotFound.
func (s *Store) SignInView(tokenHash []byte, now time.Time) (SignInView, error) {
	var v SignInView
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		v.Seq = appliedSeq(tx)
		if v.User, v.Expires, err = tokenUser(tx, tokenHash, now); err != nil {
			return err
		}
		if v.Rooms, err = userRooms(tx, v.User.ID); err != nil {
			return err
		}
		ids := make([]string, len(v.Rooms))
		for i, r := range v.Rooms {
			ids[i] = r.ID
		}
		v.Reads = s.roomReadStates(tx, v.User.ID, ids)
		if v.Directs, err = s.directConversations(tx, v.User.ID); err != nil {
			return err
		}
		v.Peers = directPeers(tx, v.User.ID)
		v.Notify = notifyLevels(tx, v.User.ID)
		return nil
	})
	return v, err
}

// JoinView is what a member needs on joining a room.
type JoinView struct {
	Seq     uint64
	Room    Room
	Member  bool // the user is a member at Seq
	History Page
	Members []Member
	Admins  map[uint64]bool // which members are server admins
	Kinds   Kinds           // which members are guests and bots (and admins)
	Read    ReadState
	Notify  string // the user's level for the room, when not the default
}

// JoinView reads a room as a member sees it on joining: the newest
// history messages, the members, and the user's read state.
func (s *Store) JoinView(roomID string, userID uint64, history int) (JoinView, error) {
	var v JoinView
	err := s.view(func(tx *bolt.Tx) error {
		v.Seq = appliedSeq(tx)
		rec, err := getRoom(tx, roomID)
		if err != nil {
			return err
		}
		v.Room = rec.room(roomID)
		if v.Member = isMemberTx(tx, roomID, userID); !v.Member {
			return nil
		}
		if v.History, err = s.readHistory(tx, RoomConv(roomID), 0, history); err != nil {
			return err
		}
		v.Members = roomMembers(tx, roomID)
		ids := make([]uint64, len(v.Members))
		for i, m := range v.Members {
			ids[i] = m.UserID
		}
		if v.Kinds, err = kindsAmong(tx, ids); err != nil {
			return err
		}
		v.Admins = v.Kinds.Admins
		v.Read = s.roomReadStates(tx, userID, []string{roomID})[roomID]
		v.Notify = notifyLevels(tx, userID)[roomID]
		return nil
	})
	return v, err
}
