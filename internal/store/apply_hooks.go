package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Bots and incoming webhooks. A bot is an account without a password:
// it signs in with an API token (CreateBot), or it is the voice of a
// webhook (CreateHook), a member of one room that posts what the hook's
// secret URL receives. Either way its messages are marked as a bot's.

type hookRecord struct {
	RoomID    string    `json:"roomId"`
	BotID     uint64    `json:"botId"`
	BotName   string    `json:"botName"`
	CreatedBy uint64    `json:"createdBy,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

func (r hookRecord) hook(hash []byte) Hook {
	return Hook{ID: secretID(hash), RoomID: r.RoomID, BotID: r.BotID, BotName: r.BotName, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt}
}

// newBot registers a bot account; the caller has checked the name is free.
func (a *applier) newBot(name string) (User, error) {
	users := a.tx.Bucket(bucketUsers)
	id, err := users.NextSequence()
	if err != nil {
		return User{}, err
	}
	rec := userRecord{Name: name, CreatedAt: a.now, Bot: true}
	if err := putJSON(users, u64key(id), rec); err != nil {
		return User{}, err
	}
	if err := a.tx.Bucket(bucketUsernames).Put([]byte(strings.ToLower(name)), u64key(id)); err != nil {
		return User{}, err
	}
	return rec.user(id), nil
}

func (a *applier) nameFree(name string) error {
	if name == "" {
		return fmt.Errorf("%w: no name", errBadCommand)
	}
	if a.tx.Bucket(bucketUsernames).Get([]byte(strings.ToLower(name))) != nil {
		return ErrUsernameTaken
	}
	return nil
}

func (a *applier) createBot(c CreateBot) (Outcome, error) {
	if len(c.TokenHash) == 0 {
		return Outcome{}, fmt.Errorf("%w: bot without a token", errBadCommand)
	}
	if c.ActorID != 0 {
		actor, err := a.user(c.ActorID)
		if err != nil {
			return Outcome{}, err
		}
		if !actor.Admin || actor.Deleted {
			return Outcome{}, &ForbiddenError{Need: RankAdmin}
		}
	}
	if err := a.nameFree(c.Name); err != nil {
		return Outcome{}, err
	}
	bot, err := a.newBot(c.Name)
	if err != nil {
		return Outcome{}, err
	}
	if err := a.tx.Bucket(bucketBotTokens).Put(c.TokenHash, u64key(bot.ID)); err != nil {
		return Outcome{}, err
	}
	return Outcome{User: bot}, nil
}

// mayManageHooks checks that actor may add or remove a room's webhooks:
// its owner (a member) and admins; the operator (0) always.
func (a *applier) mayManageHooks(actorID uint64, rec *roomRecord, roomID string) (Ref, error) {
	if actorID == 0 {
		return Ref{}, nil
	}
	actor, err := a.user(actorID)
	if err != nil {
		return Ref{}, err
	}
	if actor.Deleted || actor.Guest || actor.Bot {
		return Ref{}, &ForbiddenError{Need: RankOwner}
	}
	if actor.Admin {
		return ref(actor), nil
	}
	if rec == nil || rec.room(roomID).Rank(actor) < RankOwner || !isMemberTx(a.tx, roomID, actor.ID) {
		return Ref{}, &ForbiddenError{Need: RankOwner}
	}
	return ref(actor), nil
}

func (a *applier) createHook(c CreateHook) (Outcome, error) {
	if len(c.Hash) == 0 {
		return Outcome{}, fmt.Errorf("%w: hook without a hash", errBadCommand)
	}
	rec, err := a.existingRoom(c.RoomID)
	if err != nil {
		return Outcome{}, err
	}
	by, err := a.mayManageHooks(c.ActorID, rec, c.RoomID)
	if err != nil {
		return Outcome{}, err
	}
	if err := a.nameFree(c.BotName); err != nil {
		return Outcome{}, err
	}
	if c.MaxHooks > 0 && countRecords(a.tx.Bucket(bucketHooks), func(v []byte) bool {
		var h hookRecord
		return json.Unmarshal(v, &h) == nil && h.RoomID == c.RoomID
	}) >= c.MaxHooks {
		return Outcome{}, ErrTooMany
	}
	if rec.full() {
		return Outcome{}, ErrRoomFull
	}
	bot, err := a.newBot(c.BotName)
	if err != nil {
		return Outcome{}, err
	}
	if err := a.addMember(c.RoomID, rec, bot, 0); err != nil {
		return Outcome{}, err
	}
	h := hookRecord{RoomID: c.RoomID, BotID: bot.ID, BotName: bot.Name, CreatedBy: c.ActorID, CreatedAt: a.now}
	if err := putJSON(a.tx.Bucket(bucketHooks), c.Hash, h); err != nil {
		return Outcome{}, err
	}
	room := rec.room(c.RoomID)
	ev := MemberJoined{Room: room, User: ref(bot)}
	if c.ActorID != 0 {
		ev.InvitedBy = &by
	}
	a.emit(ev)
	return Outcome{User: bot, Room: room, Hook: h.hook(c.Hash)}, nil
}

func (a *applier) deleteHook(c DeleteHook) (Outcome, error) {
	hooks := a.tx.Bucket(bucketHooks)
	key := findSecret(hooks, c.ID)
	if key == nil {
		return Outcome{}, ErrNotFound
	}
	var h hookRecord
	if err := json.Unmarshal(hooks.Get(key), &h); err != nil {
		return Outcome{}, fmt.Errorf("decode hook: %w", err)
	}
	rec, err := a.room(h.RoomID)
	if err != nil && err != ErrNotFound {
		return Outcome{}, err
	}
	if _, err := a.mayManageHooks(c.ActorID, rec, h.RoomID); err != nil {
		return Outcome{}, err
	}
	if err := hooks.Delete(key); err != nil {
		return Outcome{}, err
	}
	bot, err := a.user(h.BotID)
	if err != nil {
		return Outcome{}, err
	}
	was, err := a.removeMember(h.RoomID, bot.ID)
	if err != nil {
		return Outcome{}, err
	}
	if err := updateUser(a.tx, bot.ID, func(r *userRecord) { r.Deleted = true }); err != nil {
		return Outcome{}, err
	}
	if was {
		a.emit(MemberLeft{RoomID: h.RoomID, User: ref(bot), Reason: "deleted"})
	}
	return Outcome{Hook: h.hook(key)}, nil
}
