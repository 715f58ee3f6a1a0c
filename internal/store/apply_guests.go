package store

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Guests: people who signed in with a name alone (auth.guests). A guest
// is an account of its own for as long as it is connected, so rooms,
// messages and moderation treat it like anyone; when its last connection
// closes, EndGuest ends it and frees the name. Its messages stay, under
// the name it had.

func (a *applier) createGuest(c CreateGuest) (Outcome, error) {
	if c.Name == "" {
		return Outcome{}, fmt.Errorf("%w: no name", errBadCommand)
	}
	names := a.tx.Bucket(bucketUsernames)
	lower := []byte(strings.ToLower(c.Name))
	if v := names.Get(lower); v != nil {
		if u, err := getUser(a.tx, binary.BigEndian.Uint64(v)); err == nil && u.Guest {
			return Outcome{}, ErrGuestNameInUse
		}
		return Outcome{}, ErrUsernameTaken
	}
	users := a.tx.Bucket(bucketUsers)
	id, err := users.NextSequence()
	if err != nil {
		return Outcome{}, err
	}
	rec := userRecord{Name: c.Name, CreatedAt: a.now, Guest: true}
	if err := putJSON(users, u64key(id), rec); err != nil {
		return Outcome{}, err
	}
	if err := names.Put(lower, u64key(id)); err != nil {
		return Outcome{}, err
	}
	if err := a.tx.Bucket(bucketGuests).Put(u64key(id), nil); err != nil {
		return Outcome{}, err
	}
	if err := a.grant(id, c.Token); err != nil {
		return Outcome{}, err
	}
	return Outcome{User: rec.user(id)}, nil
}

func (a *applier) endGuest(c EndGuest) (Outcome, error) {
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	if !u.Guest || u.Deleted {
		return Outcome{}, ErrNotFound
	}
	rooms, err := userRoomIDs(a.tx, u.ID)
	if err != nil {
		return Outcome{}, err
	}
	if err := updateUser(a.tx, u.ID, func(r *userRecord) { r.Deleted = true }); err != nil {
		return Outcome{}, err
	}
	names := a.tx.Bucket(bucketUsernames)
	lower := []byte(strings.ToLower(u.Name))
	if v := names.Get(lower); len(v) == 8 && binary.BigEndian.Uint64(v) == u.ID {
		if err := names.Delete(lower); err != nil {
			return Outcome{}, err
		}
	}
	if err := a.tx.Bucket(bucketGuests).Delete(u64key(u.ID)); err != nil {
		return Outcome{}, err
	}
	if err := revokeUserTokens(a.tx, u.ID); err != nil {
		return Outcome{}, err
	}
	if err := dropPushForUser(a.tx, u.ID); err != nil {
		return Outcome{}, err
	}
	for _, r := range rooms {
		if _, err := a.removeMember(r, u.ID); err != nil {
			return Outcome{}, err
		}
		a.emit(MemberLeft{RoomID: r, User: ref(u), Reason: "left"})
	}
	a.emit(SignedOut{UserID: u.ID, Reason: "guest left"})
	u.Deleted = true
	return Outcome{User: u}, nil
}
