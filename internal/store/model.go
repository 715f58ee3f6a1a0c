package store

import (
	"errors"
	"slices"
	"time"
)

// The domain types the store reads and writes. They carry no bbolt type
// and know nothing of connections.

// User is an account. PasswordHash is an encoded argon2id hash.
type User struct {
	ID           uint64
	Name         string
	PasswordHash string
	CreatedAt    time.Time
	Admin        bool
	Deleted      bool
	Suspended    bool
	Guest        bool // signed in without a password; gone when their last connection closes
	Bot          bool // signs in with an API token, or posts through an incoming webhook
}

// Room is a room's metadata.
type Room struct {
	ID            string
	CreatedAt     time.Time
	CreatedBy     uint64 // the owner
	LastMessageAt time.Time
	MemberCount   int
	Private       bool // invite-only and unlisted
	Topic         string
	Moderators    []uint64
	Bans          map[uint64]RoomBan
	Mutes         map[uint64]time.Time // the zero time: until unmuted
	Group         bool                 // a group conversation: a private room without a name
	MaxMembers    int                  // 0: no limit
}

// RoomBan records who banned a user from a room, and why.
type RoomBan struct {
	By     uint64    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// IsModerator reports whether a user is one of the room's moderators.
func (r Room) IsModerator(userID uint64) bool { return slices.Contains(r.Moderators, userID) }

// MuteAt reports whether a user is muted in the room at now, and until
// when: the zero time means until a moderator unmutes them.
func (r Room) MuteAt(userID uint64, now time.Time) (until time.Time, muted bool) {
	return muteAt(r.Mutes, userID, now)
}

func muteAt(mutes map[uint64]time.Time, userID uint64, now time.Time) (time.Time, bool) {
	until, ok := mutes[userID]
	return until, ok && (until.IsZero() || now.Before(until))
}

// Role names a user's role in a room: "owner", "moderator" or "member".
func (r Room) Role(userID uint64) string {
	switch {
	case r.CreatedBy == userID:
		return "owner"
	case r.IsModerator(userID):
		return "moderator"
	}
	return "member"
}

// Ranks order who may act on whom: an action needs a higher rank than
// its target's.
const (
	RankMember = iota
	RankModerator
	RankOwner
	RankAdmin
)

// Rank is a user's rank in a room; server admins outrank every role.
func (r Room) Rank(u User) int {
	switch {
	case u.Admin:
		return RankAdmin
	case r.CreatedBy == u.ID:
		return RankOwner
	case r.IsModerator(u.ID):
		return RankModerator
	}
	return RankMember
}

// Member is one member of a room.
type Member struct {
	UserID uint64
	Name   string
}

// DirectConversation summarises a user's direct conversation with a peer.
type DirectConversation struct {
	PeerID        uint64
	PeerName      string
	Unread        int // the peer's messages after the user's read marker
	LastRead      uint64
	LastMessageAt time.Time
}

// ReadState is a user's position in one room.
type ReadState struct {
	LastRead uint64
	Unread   int // messages after LastRead, up to maxUnreadCount
	Mentions int // of those, ones that mention the user
}

// Message is a stored chat message: a room message when RoomID is set,
// otherwise a direct message from SenderID to TargetID. Seq counts up
// from 1 within its conversation.
type Message struct {
	Seq         uint64
	RoomID      string
	SenderID    uint64
	SenderName  string
	TargetID    uint64
	TargetName  string
	Content     string
	Time        time.Time
	ClientMsgID string

	ReplyTo    uint64       // the seq of the message this replies to, in the same conversation
	Parent     *ReplyParent // the quoted parent, filled in when read
	ReplyCount int
	EditedAt   time.Time
	Deleted    bool
	Reactions  []Reaction
	Mentions   []uint64 // members named with @name
	Files      []FileRef
	Bot        bool   // sent by a bot account or an incoming webhook
	Label      string // the name a webhook gave for itself (Slack's username)
}

// ReplyParent quotes the message a reply answers.
type ReplyParent struct {
	Seq        uint64
	SenderID   uint64
	SenderName string
	Content    string // cut to replyPreviewChars
	Deleted    bool
}

// Reaction is one emoji on a message and who put it there, in order.
type Reaction struct {
	Emoji string   `json:"e"`
	Users []uint64 `json:"u"`
}

// IsDirect reports whether m is a direct message.
func (m Message) IsDirect() bool { return m.RoomID == "" }

// Conv is the conversation a message belongs to.
func (m Message) Conv() Conv {
	if m.IsDirect() {
		return DirectConv(m.SenderID, m.TargetID)
	}
	return RoomConv(m.RoomID)
}

// Conv names a conversation: a room, or the direct conversation of two
// users (A < B).
type Conv struct {
	RoomID string `json:"room,omitempty"`
	A      uint64 `json:"a,omitempty"`
	B      uint64 `json:"b,omitempty"`
}

func RoomConv(id string) Conv { return Conv{RoomID: id} }

func DirectConv(a, b uint64) Conv {
	if a > b {
		a, b = b, a
	}
	return Conv{A: a, B: b}
}

func (c Conv) IsDirect() bool { return c.RoomID == "" }

// Peer is the other party of a direct conversation, seen from me.
func (c Conv) Peer(me uint64) uint64 {
	if c.A == me {
		return c.B
	}
	return c.A
}

// FileRef is how a message names an attached file.
type FileRef struct {
	ID          string `json:"id"`
	Name        string `json:"n"`
	Size        int64  `json:"s"`
	ContentType string `json:"t"`
}

// StoredFile is an upload's metadata.
type StoredFile struct {
	FileRef
	Owner     uint64
	CreatedAt time.Time
	Attached  bool
	External  bool // its bytes are kept outside the database
}

// Chunks is how many pieces an upload has.
func (f StoredFile) Chunks() int { return int((f.Size + fileChunkBytes - 1) / fileChunkBytes) }

// UploadQuota bounds uploads: per user and for the whole server, in bytes
// held; 0 is no limit.
type UploadQuota struct {
	PerUser int64 `json:"perUser,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// Errors. A command's refusal is one of these (or MutedError); anything
// else is an I/O failure and wraps ErrUnavailable, or, when a command was
// proposed but its outcome did not come in time (it may yet be applied),
// ErrUnconfirmed.
var (
	ErrNotFound      = errors.New("not found")
	ErrStoreClosed   = errors.New("store closed")
	ErrUnavailable   = errors.New("store unavailable")
	ErrUnconfirmed   = errors.New("not confirmed in time")
	ErrDatabaseInUse = errors.New("database is in use by another process")
	ErrNotParleyDB   = errors.New("not a parley database")

	ErrUsernameTaken    = errors.New("username taken")
	ErrSuspended        = errors.New("account is suspended")
	ErrTooManyRooms     = errors.New("user is in too many rooms")
	ErrTooManyInvites   = errors.New("inviter has added the user to too many rooms")
	ErrCreateNotAllowed = errors.New("room does not exist and may not be created now")
	ErrBanned           = errors.New("user is banned from the room")
	ErrPrivateRoom      = errors.New("room is private")
	ErrNotAllowed       = errors.New("not allowed")
	ErrNotMember        = errors.New("user is not a member of the room")
	ErrTargetNotMember  = errors.New("target is not a member of the room")
	ErrAlreadyMember    = errors.New("target is already a member of the room")
	ErrNotBanned        = errors.New("target is not banned")
	ErrRoomNotFound     = errors.New("room not found")
	ErrParentNotFound   = errors.New("replied-to message not found")
	ErrFileNotFound     = errors.New("file not found")
	ErrQuotaExceeded    = errors.New("upload quota exceeded")
	ErrTooManyReactions = errors.New("too many different reactions on this message")
	ErrGuestNameInUse   = errors.New("a guest is using this name")
	ErrInviteRequired   = errors.New("registration needs an invite link")
	ErrInviteInvalid    = errors.New("invite link is unknown, used up or expired")
	ErrRoomFull         = errors.New("the conversation has as many members as it may")
	ErrTooMany          = errors.New("as many of these as allowed exist already")
)

// MutedError refuses a message from a member muted in its room: until the
// zero time means until a moderator unmutes them.
type MutedError struct{ Until time.Time }

func (e *MutedError) Error() string { return "sender is muted in the room" }

// ForbiddenError refuses an action the actor's role does not allow. Need
// is the rank the action takes (RankModerator, RankOwner, RankAdmin), or
// why it is refused whatever the rank.
type ForbiddenError struct {
	Need   int
	Reason ForbiddenReason
}

// ForbiddenReason says why an action is refused.
type ForbiddenReason int

const (
	NeedRank       ForbiddenReason = iota // the actor's rank is below Need
	ActOnSelf                             // nobody moderates themselves
	TargetOutranks                        // the target's rank is not below the actor's
	OwnerRoleFixed                        // the owner's role cannot change
	AdminTarget                           // admins cannot be banned server-wide
)

func (e *ForbiddenError) Error() string { return "not allowed for this role" }

// InviteLink is an invite link as its creator sees it; the secret in the
// URL is not stored, only its hash. ID names it for revoking.
type InviteLink struct {
	ID        string
	CreatedBy uint64
	CreatedAt time.Time
	ExpiresAt time.Time
	MaxUses   int // 0: no limit but the expiry
	Uses      int
	RoomID    string
}

// Hook is an incoming webhook: a bot account that posts into one room
// what the hook's secret URL receives. ID names it for revoking.
type Hook struct {
	ID        string
	RoomID    string
	BotID     uint64
	BotName   string
	CreatedBy uint64
	CreatedAt time.Time
}

// PushSubscription is one device's Web Push subscription (RFC 8030),
// with the keys its messages are encrypted to (RFC 8291).
type PushSubscription struct {
	UserID    uint64
	Endpoint  string
	P256dh    string
	Auth      string
	TokenHash []byte // the sign-in token of the device that subscribed
	CreatedAt time.Time
}

// Notify levels: what of a room a member hears of when away.
const (
	NotifyAll      = "all"
	NotifyMentions = "mentions"
	NotifyNothing  = "nothing"
)
