package store

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Invite links: a URL whose secret lets one person (or MaxUses people)
// register while auth.registration is invite, and lands them in a room.

type inviteRecord struct {
	CreatedBy uint64    `json:"createdBy,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	MaxUses   int       `json:"maxUses,omitempty"`
	Uses      int       `json:"uses,omitempty"`
	RoomID    string    `json:"roomId,omitempty"`
}

// secretID names a stored secret (an invite link, a webhook) by the
// start of its hash: enough to tell them apart, useless to guess it.
func secretID(hash []byte) string { return hex.EncodeToString(hash[:min(len(hash), 8)]) }

func (r inviteRecord) link(hash []byte) InviteLink {
	return InviteLink{ID: secretID(hash), CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		MaxUses: r.MaxUses, Uses: r.Uses, RoomID: r.RoomID}
}

// mayInvite checks that actor may hand out links, to roomID when given:
// admins anywhere, a room's owner to their room; guests and bots never.
func (a *applier) mayInvite(actorID uint64, roomID string) (*roomRecord, error) {
	var rec *roomRecord
	if roomID != "" {
		var err error
		if rec, err = a.existingRoom(roomID); err != nil {
			return nil, err
		}
	}
	if actorID == 0 {
		return rec, nil // the operator
	}
	actor, err := a.user(actorID)
	if err != nil {
		return nil, err
	}
	switch {
	case actor.Deleted || actor.Guest || actor.Bot:
		return nil, &ForbiddenError{Need: RankOwner}
	case actor.Admin:
		return rec, nil
	case rec == nil:
		return nil, &ForbiddenError{Need: RankAdmin}
	case rec.room(roomID).Rank(actor) < RankOwner || !isMemberTx(a.tx, roomID, actor.ID):
		return nil, &ForbiddenError{Need: RankOwner}
	}
	return rec, nil
}

func (a *applier) createInviteLink(c CreateInviteLink) (Outcome, error) {
	if len(c.Hash) == 0 || c.MaxUses < 0 || !c.ExpiresAt.After(a.now) {
		return Outcome{}, fmt.Errorf("%w: invite link without a hash, uses or future expiry", errBadCommand)
	}
	if _, err := a.mayInvite(c.ActorID, c.RoomID); err != nil {
		return Outcome{}, err
	}
	if c.MaxLinks > 0 && c.ActorID != 0 && countRecords(a.tx.Bucket(bucketInvites), func(v []byte) bool {
		var rec inviteRecord
		return json.Unmarshal(v, &rec) == nil && rec.CreatedBy == c.ActorID && a.now.Before(rec.ExpiresAt)
	}) >= c.MaxLinks {
		return Outcome{}, ErrTooMany
	}
	rec := inviteRecord{CreatedBy: c.ActorID, CreatedAt: a.now, ExpiresAt: c.ExpiresAt.UTC(), MaxUses: c.MaxUses, RoomID: c.RoomID}
	if err := putJSON(a.tx.Bucket(bucketInvites), c.Hash, rec); err != nil {
		return Outcome{}, err
	}
	return Outcome{Invite: rec.link(c.Hash)}, nil
}

// findSecret finds the key of a secret in b by its ID.
func findSecret(b *bolt.Bucket, id string) []byte {
	var found []byte
	_ = b.ForEach(func(k, _ []byte) error {
		if found == nil && secretID(k) == id {
			found = append([]byte(nil), k...)
		}
		return nil
	})
	return found
}

func (a *applier) revokeInviteLink(c RevokeInviteLink) (Outcome, error) {
	b := a.tx.Bucket(bucketInvites)
	key := findSecret(b, c.ID)
	if key == nil {
		return Outcome{}, ErrNotFound
	}
	var rec inviteRecord
	if err := json.Unmarshal(b.Get(key), &rec); err != nil {
		return Outcome{}, fmt.Errorf("decode invite link: %w", err)
	}
	if c.ActorID != 0 && c.ActorID != rec.CreatedBy {
		actor, err := a.user(c.ActorID)
		if err != nil {
			return Outcome{}, err
		}
		if !actor.Admin {
			return Outcome{}, &ForbiddenError{Need: RankAdmin}
		}
	}
	if err := b.Delete(key); err != nil {
		return Outcome{}, err
	}
	return Outcome{Invite: rec.link(key)}, nil
}

// usableInvite reads an invite link that may still be used.
func (a *applier) usableInvite(hash []byte) (*inviteRecord, error) {
	v := a.tx.Bucket(bucketInvites).Get(hash)
	if v == nil {
		return nil, ErrInviteInvalid
	}
	var rec inviteRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, ErrInviteInvalid
	}
	if !a.now.Before(rec.ExpiresAt) || (rec.MaxUses > 0 && rec.Uses >= rec.MaxUses) {
		return nil, ErrInviteInvalid
	}
	return &rec, nil
}

// useInvite counts one use of a link by the new account u, deletes it
// once used up, and lands u in its room when that still exists and has
// room. The membership is u's own: they chose to follow the link.
func (a *applier) useInvite(hash []byte, link *inviteRecord, u User) (Room, error) {
	b := a.tx.Bucket(bucketInvites)
	link.Uses++
	if link.MaxUses > 0 && link.Uses >= link.MaxUses {
		if err := b.Delete(hash); err != nil {
			return Room{}, err
		}
	} else if err := putJSON(b, hash, link); err != nil {
		return Room{}, err
	}
	if link.RoomID == "" {
		return Room{}, nil
	}
	rec, err := a.room(link.RoomID)
	if errors.Is(err, ErrNotFound) || (err == nil && rec.full()) {
		return Room{}, nil
	} else if err != nil {
		return Room{}, err
	}
	if err := a.addMember(link.RoomID, rec, u, 0); err != nil {
		return Room{}, err
	}
	room := rec.room(link.RoomID)
	ev := MemberJoined{Room: room, User: ref(u)}
	if inviter, err := a.user(link.CreatedBy); err == nil {
		by := ref(inviter)
		ev.InvitedBy = &by
	}
	a.emit(ev)
	return room, nil
}

// expireInvites deletes invite links past their expiry.
func (a *applier) expireInvites() (int, error) {
	b := a.tx.Bucket(bucketInvites)
	var stale [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		var rec inviteRecord
		if json.Unmarshal(v, &rec) != nil || !a.now.Before(rec.ExpiresAt) {
			stale = append(stale, k)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

// full reports whether a room with a member cap has reached it.
func (r *roomRecord) full() bool { return r.MaxMembers > 0 && r.MemberCount >= r.MaxMembers }

// countRecords counts the values of b that match.
func countRecords(b *bolt.Bucket, match func(v []byte) bool) int {
	n := 0
	_ = b.ForEach(func(_, v []byte) error {
		if match(v) {
			n++
		}
		return nil
	})
	return n
}
