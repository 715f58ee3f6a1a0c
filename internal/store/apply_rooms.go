package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Rooms, memberships and moderation.

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
	Group         bool                 `json:"group,omitempty"`      // since v5
	MaxMembers    int                  `json:"maxMembers,omitempty"` // since v5; 0: no limit
}

func (r roomRecord) room(id string) Room {
	return Room{ID: id, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, LastMessageAt: r.LastMessageAt, MemberCount: r.MemberCount,
		Private: r.Private, Topic: r.Topic, Moderators: slices.Clone(r.Moderators), Bans: cloneMap(r.Bans), Mutes: cloneMap(r.Mutes),
		Group: r.Group, MaxMembers: r.MaxMembers}
}

// cloneMap copies a record's map, so what an event carries does not
// change when a later command of the batch changes the cached record.
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
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

func isMemberTx(tx *bolt.Tx, roomID string, userID uint64) bool {
	members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
	return members != nil && members.Get(u64key(userID)) != nil
}

// userRoomIDs lists the rooms a user belongs to, by room id.
func userRoomIDs(tx *bolt.Tx, userID uint64) ([]string, error) {
	mine := tx.Bucket(bucketUserRooms).Bucket(u64key(userID))
	if mine == nil {
		return nil, nil
	}
	var out []string
	err := mine.ForEach(func(k, _ []byte) error { out = append(out, string(k)); return nil })
	return out, err
}

// addMember makes a user a member; the caller has checked they are not.
// invitedBy is who added them (an invitation), or 0 when they joined.
func (a *applier) addMember(roomID string, rec *roomRecord, u User, invitedBy uint64) error {
	uid := u64key(u.ID)
	members, err := a.tx.Bucket(bucketMembers).CreateBucketIfNotExists([]byte(roomID))
	if err != nil {
		return err
	}
	mine, err := a.tx.Bucket(bucketUserRooms).CreateBucketIfNotExists(uid)
	if err != nil {
		return err
	}
	if err := members.Put(uid, []byte(u.Name)); err != nil {
		return err
	}
	if err := mine.Put([]byte(roomID), []byte(a.now.Format(time.RFC3339Nano))); err != nil {
		return err
	}
	if invitedBy != 0 {
		invited, err := a.tx.Bucket(bucketInvited).CreateBucketIfNotExists(uid)
		if err != nil {
			return err
		}
		if err := invited.Put([]byte(roomID), u64key(invitedBy)); err != nil {
			return err
		}
	}
	rec.MemberCount++
	a.putRoom(roomID, rec)
	return nil
}

// roomCount is how many rooms a user belongs to.
func roomCount(tx *bolt.Tx, userID uint64) int {
	mine := tx.Bucket(bucketUserRooms).Bucket(u64key(userID))
	if mine == nil {
		return 0
	}
	return mine.Stats().KeyN
}

// Consent. Someone else can add a user to a room (invite) without asking,
// so those memberships must not crowd out the user's own: they do not
// count against the user's room limit (JoinRoom.MaxRooms), they have a
// cap of their own (Invite.MaxRooms), and one inviter may add a given user
// to at most Invite.MaxFromInviter rooms. Leaving such a room frees its
// place; nothing else needs the user's say.

// invitedCount is how many of a user's memberships others made.
func invitedCount(tx *bolt.Tx, userID uint64) int {
	invited := tx.Bucket(bucketInvited).Bucket(u64key(userID))
	if invited == nil {
		return 0
	}
	return invited.Stats().KeyN
}

// invitedByCount is how many of a user's memberships one inviter made.
func invitedByCount(tx *bolt.Tx, userID, inviter uint64) int {
	invited := tx.Bucket(bucketInvited).Bucket(u64key(userID))
	if invited == nil {
		return 0
	}
	n := 0
	_ = invited.ForEach(func(_, v []byte) error {
		if len(v) == 8 && binary.BigEndian.Uint64(v) == inviter {
			n++
		}
		return nil
	})
	return n
}

// ownRoomCount is how many rooms a user joined themselves.
func ownRoomCount(tx *bolt.Tx, userID uint64) int {
	return roomCount(tx, userID) - invitedCount(tx, userID)
}

// removeMember ends a membership and reports whether there was one.
func (a *applier) removeMember(roomID string, userID uint64) (bool, error) {
	members := a.tx.Bucket(bucketMembers).Bucket([]byte(roomID))
	uid := u64key(userID)
	if members == nil || members.Get(uid) == nil {
		return false, nil
	}
	if err := members.Delete(uid); err != nil {
		return false, err
	}
	if mine := a.tx.Bucket(bucketUserRooms).Bucket(uid); mine != nil {
		if err := mine.Delete([]byte(roomID)); err != nil {
			return false, err
		}
	}
	if invited := a.tx.Bucket(bucketInvited).Bucket(uid); invited != nil {
		if err := invited.Delete([]byte(roomID)); err != nil {
			return false, err
		}
	}
	rec, err := a.room(roomID)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	rec.MemberCount--
	a.putRoom(roomID, rec)
	return true, nil
}

func (a *applier) joinRoom(c JoinRoom) (Outcome, error) {
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if u.Deleted {
		return Outcome{}, ErrNotFound
	}
	if c.RoomID == "" {
		return Outcome{}, fmt.Errorf("%w: no room", errBadCommand)
	}
	rec, err := a.room(c.RoomID)
	created := false
	switch {
	case errors.Is(err, ErrNotFound):
		rec = &roomRecord{CreatedAt: a.now, CreatedBy: u.ID, Private: c.Private, Topic: c.Topic}
		created = true
	case err != nil:
		return Outcome{}, err
	}
	if !created && isMemberTx(a.tx, c.RoomID, u.ID) {
		return Outcome{Room: rec.room(c.RoomID)}, nil
	}
	if _, banned := rec.Bans[u.ID]; banned {
		return Outcome{}, ErrBanned
	}
	// The owner may always come back to their own private room.
	if rec.Private && !created && rec.CreatedBy != u.ID {
		return Outcome{}, ErrPrivateRoom
	}
	if c.MaxRooms > 0 && ownRoomCount(a.tx, u.ID) >= c.MaxRooms {
		return Outcome{}, ErrTooManyRooms
	}
	if rec.full() {
		return Outcome{}, ErrRoomFull
	}
	if created && !c.AllowCreate {
		return Outcome{}, ErrCreateNotAllowed
	}
	if err := a.addMember(c.RoomID, rec, u, 0); err != nil {
		return Outcome{}, err
	}
	room := rec.room(c.RoomID)
	a.emit(MemberJoined{Room: room, User: ref(u), Created: created})
	return Outcome{Room: room, Created: created, NewMember: true}, nil
}

func (a *applier) leaveRoom(c LeaveRoom) (Outcome, error) {
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if !isMemberTx(a.tx, c.RoomID, u.ID) {
		return Outcome{}, ErrNotMember
	}
	if _, err := a.removeMember(c.RoomID, u.ID); err != nil {
		return Outcome{}, err
	}
	a.emit(MemberLeft{RoomID: c.RoomID, User: ref(u), Reason: "left"})
	return Outcome{}, nil
}

// existingRoom reads a room a command acts on.
func (a *applier) existingRoom(id string) (*roomRecord, error) {
	rec, err := a.room(id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrRoomNotFound
	}
	return rec, err
}

// roomAndActor reads the room a command acts on and who acts.
func (a *applier) roomAndActor(roomID string, actorID uint64) (*roomRecord, User, error) {
	rec, err := a.existingRoom(roomID)
	if err != nil {
		return nil, User{}, err
	}
	actor, err := a.user(actorID)
	return rec, actor, err
}

func (a *applier) invite(c Invite) (Outcome, error) {
	rec, actor, err := a.roomAndActor(c.RoomID, c.ActorID)
	if err != nil {
		return Outcome{}, err
	}
	room := rec.room(c.RoomID)
	if !actor.Admin && !isMemberTx(a.tx, c.RoomID, actor.ID) {
		return Outcome{}, ErrNotMember
	}
	if room.Private && room.Rank(actor) < RankModerator {
		return Outcome{}, &ForbiddenError{Need: RankModerator}
	}
	target, err := a.user(c.TargetID)
	if err != nil {
		return Outcome{}, err
	}
	if target.Deleted {
		return Outcome{}, ErrNotFound
	}
	if isMemberTx(a.tx, c.RoomID, target.ID) {
		return Outcome{}, ErrAlreadyMember
	}
	if _, banned := rec.Bans[target.ID]; banned {
		return Outcome{}, ErrBanned
	}
	if rec.full() {
		return Outcome{}, ErrRoomFull
	}
	if c.MaxRooms > 0 && invitedCount(a.tx, target.ID) >= c.MaxRooms {
		return Outcome{}, ErrTooManyRooms
	}
	if c.MaxFromInviter > 0 && invitedByCount(a.tx, target.ID, actor.ID) >= c.MaxFromInviter {
		return Outcome{}, ErrTooManyInvites
	}
	if err := a.addMember(c.RoomID, rec, target, actor.ID); err != nil {
		return Outcome{}, err
	}
	by := ref(actor)
	room = rec.room(c.RoomID)
	a.emit(MemberJoined{Room: room, User: ref(target), InvitedBy: &by})
	return Outcome{Room: room, NewMember: true}, nil
}

// moderation is a moderation command checked: the room, the actor and
// the target.
type moderation struct {
	rec    *roomRecord
	room   Room
	actor  User
	target User
}

// authorize checks that the actor may act on the target in the room: at
// least need, a member unless an admin, never on themselves, and above
// the target.
func (a *applier) authorize(t ModTarget, need int) (moderation, error) {
	var m moderation
	var err error
	if m.rec, m.actor, err = a.roomAndActor(t.RoomID, t.ActorID); err != nil {
		return m, err
	}
	m.room = m.rec.room(t.RoomID)
	if m.target, err = a.user(t.TargetID); err != nil {
		return m, err
	}
	rank := m.room.Rank(m.actor)
	if rank < need || (rank < RankAdmin && !isMemberTx(a.tx, t.RoomID, m.actor.ID)) {
		return m, &ForbiddenError{Need: need}
	}
	if m.target.ID == m.actor.ID {
		// Or a muted moderator could unmute themselves.
		return m, &ForbiddenError{Need: need, Reason: ActOnSelf}
	}
	if m.room.Rank(m.target) >= rank {
		return m, &ForbiddenError{Need: need, Reason: TargetOutranks}
	}
	return m, nil
}

func (a *applier) moderated(action string, m moderation) Moderated {
	return Moderated{Action: action, Room: m.rec.room(m.room.ID), Actor: ref(m.actor), Target: ref(m.target)}
}

func (a *applier) kick(c Kick) (Outcome, error) {
	m, err := a.authorize(c.ModTarget, RankModerator)
	if err != nil {
		return Outcome{}, err
	}
	if !isMemberTx(a.tx, c.RoomID, m.target.ID) {
		return Outcome{}, ErrTargetNotMember
	}
	if _, err := a.removeMember(c.RoomID, m.target.ID); err != nil {
		return Outcome{}, err
	}
	ev := a.moderated("kicked", m)
	ev.Reason, ev.WasMember = c.Reason, true
	a.emit(ev)
	return Outcome{Room: ev.Room, WasMember: true}, nil
}

func (a *applier) ban(c Ban) (Outcome, error) {
	m, err := a.authorize(c.ModTarget, RankModerator)
	if err != nil {
		return Outcome{}, err
	}
	was, err := a.removeMember(c.RoomID, m.target.ID)
	if err != nil {
		return Outcome{}, err
	}
	if m.rec.Bans == nil {
		m.rec.Bans = map[uint64]RoomBan{}
	}
	m.rec.Bans[m.target.ID] = RoomBan{By: m.actor.ID, At: a.now, Reason: c.Reason}
	m.rec.Moderators = slices.DeleteFunc(m.rec.Moderators, func(id uint64) bool { return id == m.target.ID })
	a.putRoom(c.RoomID, m.rec)
	ev := a.moderated("banned", m)
	ev.Reason, ev.WasMember = c.Reason, was
	a.emit(ev)
	return Outcome{Room: ev.Room, WasMember: was}, nil
}

func (a *applier) unban(c Unban) (Outcome, error) {
	m, err := a.authorize(c.ModTarget, RankModerator)
	if err != nil {
		return Outcome{}, err
	}
	if _, ok := m.rec.Bans[m.target.ID]; !ok {
		return Outcome{}, ErrNotBanned
	}
	delete(m.rec.Bans, m.target.ID)
	a.putRoom(c.RoomID, m.rec)
	ev := a.moderated("unbanned", m)
	a.emit(ev)
	return Outcome{Room: ev.Room}, nil
}

func (a *applier) mute(c Mute) (Outcome, error) {
	m, err := a.authorize(c.ModTarget, RankModerator)
	if err != nil {
		return Outcome{}, err
	}
	if !isMemberTx(a.tx, c.RoomID, m.target.ID) {
		return Outcome{}, ErrTargetNotMember
	}
	if m.rec.Mutes == nil {
		m.rec.Mutes = map[uint64]time.Time{}
	}
	until := c.Until.UTC()
	m.rec.Mutes[m.target.ID] = until
	a.putRoom(c.RoomID, m.rec)
	ev := a.moderated("muted", m)
	ev.Reason, ev.Until = c.Reason, until
	a.emit(ev)
	return Outcome{Room: ev.Room}, nil
}

func (a *applier) unmute(c Unmute) (Outcome, error) {
	m, err := a.authorize(c.ModTarget, RankModerator)
	if err != nil {
		return Outcome{}, err
	}
	if _, ok := m.rec.Mutes[m.target.ID]; ok {
		delete(m.rec.Mutes, m.target.ID)
		a.putRoom(c.RoomID, m.rec)
	}
	ev := a.moderated("unmuted", m)
	a.emit(ev)
	return Outcome{Room: ev.Room}, nil
}

func (a *applier) setRole(c SetRole) (Outcome, error) {
	if c.Role != "moderator" && c.Role != "member" {
		return Outcome{}, fmt.Errorf("%w: role %q", errBadCommand, c.Role)
	}
	m, err := a.authorize(c.ModTarget, RankOwner)
	if err != nil {
		return Outcome{}, err
	}
	if m.target.ID == m.room.CreatedBy {
		return Outcome{}, &ForbiddenError{Need: RankOwner, Reason: OwnerRoleFixed}
	}
	if !isMemberTx(a.tx, c.RoomID, m.target.ID) {
		return Outcome{}, ErrTargetNotMember
	}
	m.rec.Moderators = slices.DeleteFunc(m.rec.Moderators, func(id uint64) bool { return id == m.target.ID })
	if c.Role == "moderator" {
		m.rec.Moderators = append(m.rec.Moderators, m.target.ID)
	}
	a.putRoom(c.RoomID, m.rec)
	ev := a.moderated("roleChanged", m)
	ev.Role = c.Role
	a.emit(ev)
	return Outcome{Room: ev.Room}, nil
}

func (a *applier) setTopic(c SetTopic) (Outcome, error) {
	rec, actor, err := a.roomAndActor(c.RoomID, c.ActorID)
	if err != nil {
		return Outcome{}, err
	}
	room := rec.room(c.RoomID)
	if room.Rank(actor) < RankModerator || (!actor.Admin && !isMemberTx(a.tx, c.RoomID, actor.ID)) {
		return Outcome{}, &ForbiddenError{Need: RankModerator}
	}
	rec.Topic = c.Topic
	a.putRoom(c.RoomID, rec)
	room = rec.room(c.RoomID)
	a.emit(TopicChanged{Room: room, By: ref(actor)})
	return Outcome{Room: room}, nil
}
