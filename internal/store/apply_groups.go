package store

import (
	"fmt"
	"slices"
)

// Group conversations: a private room without a name, of at most
// MaxMembers people, made in one step by one of them.

func (a *applier) createGroup(c CreateGroup) (Outcome, error) {
	if c.RoomID == "" || len(c.MemberIDs) == 0 || c.MaxMembers < 2 {
		return Outcome{}, fmt.Errorf("%w: a group needs an id, members and a size", errBadCommand)
	}
	ids := slices.Clone(c.MemberIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) != len(c.MemberIDs) || slices.Contains(ids, c.CreatorID) {
		return Outcome{}, fmt.Errorf("%w: group members repeat, or include the creator", errBadCommand)
	}
	if len(ids)+1 > c.MaxMembers {
		return Outcome{}, ErrRoomFull
	}
	if _, err := a.room(c.RoomID); err == nil {
		return Outcome{}, fmt.Errorf("%w: room %s exists", errBadCommand, c.RoomID)
	} else if err != ErrNotFound {
		return Outcome{}, err
	}
	creator, err := a.signInable(c.CreatorID)
	if err != nil {
		return Outcome{}, err
	}
	members := make([]User, len(c.MemberIDs))
	for i, id := range c.MemberIDs {
		u, err := a.user(id)
		switch {
		case err != nil:
			return Outcome{}, err
		case u.Deleted:
			return Outcome{}, ErrNotFound
		case u.Suspended:
			return Outcome{}, ErrBanned
		case c.MaxRooms > 0 && invitedCount(a.tx, u.ID) >= c.MaxRooms:
			return Outcome{}, ErrTooManyRooms
		case c.MaxFromInviter > 0 && invitedByCount(a.tx, u.ID, creator.ID) >= c.MaxFromInviter:
			return Outcome{}, ErrTooManyInvites
		}
		members[i] = u
	}
	if c.MaxRooms > 0 && ownRoomCount(a.tx, creator.ID) >= c.MaxRooms {
		return Outcome{}, ErrTooManyRooms
	}
	rec := &roomRecord{CreatedAt: a.now, CreatedBy: creator.ID, Private: true, Group: true, MaxMembers: c.MaxMembers, Topic: c.Topic}
	if err := a.addMember(c.RoomID, rec, creator, 0); err != nil {
		return Outcome{}, err
	}
	a.emit(MemberJoined{Room: rec.room(c.RoomID), User: ref(creator)})
	by := ref(creator)
	for _, u := range members {
		if err := a.addMember(c.RoomID, rec, u, creator.ID); err != nil {
			return Outcome{}, err
		}
		a.emit(MemberJoined{Room: rec.room(c.RoomID), User: ref(u), InvitedBy: &by})
	}
	return Outcome{Room: rec.room(c.RoomID), Created: true, NewMember: true}, nil
}
