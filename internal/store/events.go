package store

import "time"

// Events say what a command changed, for whoever must hear of it. Apply
// emits them inside the commit; they are handed on only once the commit
// succeeded. The store does not know who is listening.

// Event is one change. The set is closed: the types below.
type Event interface{ eventName() string }

// Ref names a user in an event.
type Ref struct {
	ID    uint64
	Name  string
	Guest bool
	Bot   bool
}

// MessagePosted: a message was stored.
type MessagePosted struct{ Message Message }

// MessageEdited: a message's text changed (its mentions were worked out again).
type MessageEdited struct{ Message Message }

// MessageDeleted: a message became a tombstone.
type MessageDeleted struct {
	Message Message
	By      Ref
}

// ReactionChanged: a user's emoji was added to or taken from a message.
type ReactionChanged struct {
	Message Message
	Emoji   string
	User    Ref
	Added   bool
}

// ReadMoved: a user's read marker moved (or was set again).
type ReadMoved struct {
	UserID uint64
	Conv   Conv
	Seq    uint64
}

// MemberJoined: a user became a member of a room, by joining or invited.
type MemberJoined struct {
	Room      Room
	User      Ref
	InvitedBy *Ref
	Created   bool // the join made the room
}

// MemberLeft: a user stopped being a member by leaving, or because
// their account was deleted ("left", "deleted").
type MemberLeft struct {
	RoomID string
	User   Ref
	Reason string
}

// Moderated: a moderator acted on a user in a room. Action is "kicked",
// "banned", "unbanned", "muted", "unmuted" or "roleChanged". A kick, and
// a ban of a member (WasMember), also end the target's membership.
type Moderated struct {
	Action    string
	Room      Room
	Actor     Ref
	Target    Ref
	Reason    string
	Until     time.Time // muted: the zero time means until unmuted
	Role      string    // roleChanged: the new role
	WasMember bool
}

// TopicChanged: a room's topic changed.
type TopicChanged struct {
	Room Room
	By   Ref
}

// UserSuspended: a user was banned from the whole server (and signed out
// everywhere), or the ban was lifted. Rooms are the rooms they belong to.
type UserSuspended struct {
	Target    Ref
	Actor     Ref
	Suspended bool
	Reason    string
	Rooms     []string
}

// SignedOut: tokens of a user stopped working. TokenHash names the one
// token, or is nil for all of them.
type SignedOut struct {
	UserID    uint64
	TokenHash []byte
	Reason    string
}

// PasswordChanged: a user's password changed and every token was
// revoked; NewTokenHash, when set, is the requester's new token.
type PasswordChanged struct {
	UserID       uint64
	NewTokenHash []byte
	Reason       string
}

func (MessagePosted) eventName() string   { return "messagePosted" }
func (MessageEdited) eventName() string   { return "messageEdited" }
func (MessageDeleted) eventName() string  { return "messageDeleted" }
func (ReactionChanged) eventName() string { return "reactionChanged" }
func (ReadMoved) eventName() string       { return "readMoved" }
func (MemberJoined) eventName() string    { return "memberJoined" }
func (MemberLeft) eventName() string      { return "memberLeft" }
func (Moderated) eventName() string       { return "moderated" }
func (TopicChanged) eventName() string    { return "topicChanged" }
func (UserSuspended) eventName() string   { return "userSuspended" }
func (SignedOut) eventName() string       { return "signedOut" }
func (PasswordChanged) eventName() string { return "passwordChanged" }
