package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// Every change to the database is a Command. Commands are applied one at
// a time, in the order of the log, by apply (apply.go): a deterministic
// function of the database and the command. So the proposer puts into
// the command everything that could differ between two runs or two
// nodes: the time (in the Envelope), random values (a file id), the
// limits to enforce, and a token only as its hash. Applying a command
// yields its Outcome and the Events that tell who must hear of it.

// Command is one change. The set is closed: the types below.
type Command interface{ commandName() string }

// Envelope is a command as it travels through the log.
type Envelope struct {
	ID     string    // unique per command, made by the proposer; a retry carries the same ID
	Origin string    // who asked (a connection), echoed in the Applied; opaque to the store
	Time   time.Time // the proposer's clock, the only "now" apply knows
	Cmd    Command
}

// TokenGrant is a sign-in token to store, by its hash.
type TokenGrant struct {
	Hash      []byte    `json:"hash"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// --- accounts and sign-in ---

// CreateUser registers an account, and with Token signs it in. The first
// account of a database is its admin. Invite is the hash of an invite
// link, used up by one; RequireInvite (auth.registration: invite) refuses
// an account without one, except the first.
type CreateUser struct {
	Name          string      `json:"name"`
	PasswordHash  string      `json:"passwordHash"`
	Token         *TokenGrant `json:"token,omitempty"`
	Invite        []byte      `json:"invite,omitempty"`
	RequireInvite bool        `json:"requireInvite,omitempty"`
}

// IssueToken signs a user in: it stores a token for an account that is
// neither deleted nor suspended.
type IssueToken struct {
	UserID uint64     `json:"userId"`
	Token  TokenGrant `json:"token"`
}

// RevokeToken signs one token out (logout).
type RevokeToken struct {
	Hash []byte `json:"hash"`
}

// SetPassword replaces a password, revokes every token and reset link of
// the user, and with Token keeps the requester signed in.
type SetPassword struct {
	UserID       uint64      `json:"userId"`
	PasswordHash string      `json:"passwordHash"`
	Token        *TokenGrant `json:"token,omitempty"`
	Reason       string      `json:"reason"` // what signed-out connections are told
}

// CreateResetLink stores a one-time reset link by its hash.
type CreateResetLink struct {
	UserID    uint64    `json:"userId"`
	Hash      []byte    `json:"hash"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// RedeemResetLink uses up a reset link: new password, every other token
// and link revoked, the requester signed in with Token.
type RedeemResetLink struct {
	Hash         []byte     `json:"hash"`
	PasswordHash string     `json:"passwordHash"`
	Token        TokenGrant `json:"token"`
}

// SetAdmin grants or withdraws the admin role.
type SetAdmin struct {
	UserID uint64 `json:"userId"`
	Admin  bool   `json:"admin"`
}

// DeleteUser closes an account: password, tokens, memberships and the
// admin role go; the name and the messages stay.
type DeleteUser struct {
	UserID uint64 `json:"userId"`
}

// SuspendUser bans a user from the whole server (or lifts the ban).
// ActorID 0 is the operator at the command line; anyone else must be an
// admin and may not suspend an admin.
type SuspendUser struct {
	ActorID  uint64 `json:"actorId,omitempty"`
	TargetID uint64 `json:"targetId"`
	Suspend  bool   `json:"suspend"`
	Reason   string `json:"reason,omitempty"`
}

// --- rooms ---

// JoinRoom makes a user a member, creating the room when it does not
// exist and AllowCreate is set.
type JoinRoom struct {
	RoomID      string `json:"roomId"`
	UserID      uint64 `json:"userId"`
	MaxRooms    int    `json:"maxRooms,omitempty"` // rooms a user may belong to; 0 is no limit
	AllowCreate bool   `json:"allowCreate"`
	Private     bool   `json:"private,omitempty"` // for a room this creates
	Topic       string `json:"topic,omitempty"`   // for a room this creates
}

// LeaveRoom ends a user's membership.
type LeaveRoom struct {
	RoomID string `json:"roomId"`
	UserID uint64 `json:"userId"`
}

// Invite adds a user to a room: to a private room only its owner and
// moderators may, to a public one any member; admins anywhere. The
// membership is the inviter's doing: it does not count against the
// target's JoinRoom.MaxRooms, but the target holds at most MaxRooms such
// memberships, at most MaxFromInviter of them from this inviter (0: no
// limit).
type Invite struct {
	RoomID         string `json:"roomId"`
	ActorID        uint64 `json:"actorId"`
	TargetID       uint64 `json:"targetId"`
	MaxRooms       int    `json:"maxRooms,omitempty"`
	MaxFromInviter int    `json:"maxFromInviter,omitempty"`
}

// ModTarget is who moderates whom, where.
type ModTarget struct {
	RoomID   string `json:"roomId"`
	ActorID  uint64 `json:"actorId"`
	TargetID uint64 `json:"targetId"`
}

// Kick removes a member; they may join again unless the room is private.
type Kick struct {
	ModTarget
	Reason string `json:"reason,omitempty"`
}

// Ban removes a member (or bans ahead of time) and keeps them out.
type Ban struct {
	ModTarget
	Reason string `json:"reason,omitempty"`
}

// Unban lifts a room ban.
type Unban struct{ ModTarget }

// Mute keeps a member from posting until Until (the zero time: until
// unmuted).
type Mute struct {
	ModTarget
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Unmute lifts a mute.
type Unmute struct{ ModTarget }

// SetRole appoints ("moderator") or dismisses ("member") a moderator;
// owners and admins only.
type SetRole struct {
	ModTarget
	Role string `json:"role"`
}

// SetTopic changes a room's topic; its owner and moderators only.
type SetTopic struct {
	RoomID  string `json:"roomId"`
	ActorID uint64 `json:"actorId"`
	Topic   string `json:"topic"`
}

// --- messages ---

// PostMessage stores a room or direct message, sent at the envelope's
// time, and trims its conversation to Keep messages (0 keeps all).
type PostMessage struct {
	RoomID      string   `json:"roomId,omitempty"`
	SenderID    uint64   `json:"senderId"`
	TargetID    uint64   `json:"targetId,omitempty"`
	Content     string   `json:"content"`
	ClientMsgID string   `json:"clientMsgId,omitempty"`
	ReplyTo     uint64   `json:"replyTo,omitempty"`
	FileIDs     []string `json:"files,omitempty"`
	Keep        int      `json:"keep,omitempty"`
	Label       string   `json:"label,omitempty"` // a webhook's name for itself; bots only
}

// EditMessage replaces the text of the editor's own message.
type EditMessage struct {
	Conv     Conv   `json:"conv"`
	Seq      uint64 `json:"seq"`
	EditorID uint64 `json:"editorId"`
	Content  string `json:"content"`
}

// DeleteMessage deletes a message: its sender may, and in a room its
// owner, moderators and admins.
type DeleteMessage struct {
	Conv Conv   `json:"conv"`
	Seq  uint64 `json:"seq"`
	ByID uint64 `json:"byId"`
}

// React toggles a user's emoji on a message.
type React struct {
	Conv   Conv   `json:"conv"`
	Seq    uint64 `json:"seq"`
	UserID uint64 `json:"userId"`
	Emoji  string `json:"emoji"`
}

// MarkRead moves a user's read marker in a conversation forward.
type MarkRead struct {
	UserID uint64 `json:"userId"`
	Conv   Conv   `json:"conv"`
	Seq    uint64 `json:"seq"`
}

// --- files and upkeep ---

// PutFile stores an upload, if the quotas allow. FileID is random, made
// by the proposer; it is also the capability to fetch the file. Its bytes
// come in Data, or, on a cluster, are kept in its object store, and
// ExternalSize says how many there are.
type PutFile struct {
	FileID       string      `json:"fileId"`
	Owner        uint64      `json:"owner"`
	Name         string      `json:"name"`
	ContentType  string      `json:"contentType"`
	Data         []byte      `json:"data,omitempty"`
	ExternalSize int64       `json:"externalSize,omitempty"`
	Quota        UploadQuota `json:"quota"`
}

// --- reaching people: guests, invite links, bots, webhooks, groups, push ---

// CreateGuest signs in a guest: a name that is no account's and no other
// guest's, held until EndGuest.
type CreateGuest struct {
	Name  string     `json:"name"`
	Token TokenGrant `json:"token"`
}

// EndGuest ends a guest whose last connection closed: they leave their
// rooms, their token goes, and their name is free again.
type EndGuest struct {
	UserID uint64 `json:"userId"`
}

// CreateInviteLink stores an invite link by its hash. ActorID 0 is the
// operator at the command line; anyone else must be an admin, or own
// RoomID. MaxUses 0 is no limit but the expiry.
type CreateInviteLink struct {
	Hash      []byte    `json:"hash"`
	ActorID   uint64    `json:"actorId,omitempty"`
	RoomID    string    `json:"roomId,omitempty"` // where a new account lands
	ExpiresAt time.Time `json:"expiresAt"`
	MaxUses   int       `json:"maxUses,omitempty"`
	MaxLinks  int       `json:"maxLinks,omitempty"` // links one creator may have at once; 0: no limit
}

// RevokeInviteLink deletes an invite link, named by its ID (InviteLink.ID):
// its creator and admins may, and the operator (ActorID 0).
type RevokeInviteLink struct {
	ID      string `json:"id"`
	ActorID uint64 `json:"actorId,omitempty"`
}

// CreateBot registers a bot account that signs in with an API token,
// stored by its hash; admins only (ActorID 0 is the operator).
type CreateBot struct {
	Name      string `json:"name"`
	TokenHash []byte `json:"tokenHash"`
	ActorID   uint64 `json:"actorId,omitempty"`
}

// CreateHook makes an incoming webhook for a room: a bot account named
// BotName, a member of the room, posts what the hook's URL receives. The
// URL's secret is stored by its hash. Room owners and admins only
// (ActorID 0 is the operator).
type CreateHook struct {
	Hash     []byte `json:"hash"`
	RoomID   string `json:"roomId"`
	ActorID  uint64 `json:"actorId,omitempty"`
	BotName  string `json:"botName"`
	MaxHooks int    `json:"maxHooks,omitempty"` // webhooks one room may have; 0: no limit
}

// DeleteHook revokes a webhook, named by its ID: its bot leaves the room
// and its account is closed.
type DeleteHook struct {
	ID      string `json:"id"`
	ActorID uint64 `json:"actorId,omitempty"`
}

// CreateGroup makes a group conversation: a private room named RoomID (a
// random id the proposer makes) of the creator and MemberIDs, at most
// MaxMembers in all. Adding the others is the creator's doing, so it
// counts against the same caps as Invite.
type CreateGroup struct {
	RoomID         string   `json:"roomId"`
	Topic          string   `json:"topic,omitempty"` // names its people, as the proposer put it
	CreatorID      uint64   `json:"creatorId"`
	MemberIDs      []uint64 `json:"memberIds"`
	MaxMembers     int      `json:"maxMembers"`
	MaxRooms       int      `json:"maxRooms,omitempty"`
	MaxFromInviter int      `json:"maxFromInviter,omitempty"`
}

// SetVAPIDKeys stores the server's Web Push key pair (RFC 8292), made by
// the proposer, unless one is stored already: the first one stays.
type SetVAPIDKeys struct {
	Public  string `json:"public"`
	Private string `json:"private"`
}

// AddPushSubscription stores a device's Web Push subscription, tied to
// the sign-in token of that device. A user holds at most Max; past it the
// oldest goes.
type AddPushSubscription struct {
	UserID    uint64 `json:"userId"`
	TokenHash []byte `json:"tokenHash"`
	Endpoint  string `json:"endpoint"`
	P256dh    string `json:"p256dh"`
	Auth      string `json:"auth"`
	Max       int    `json:"max,omitempty"`
}

// RemovePushSubscription deletes a subscription: the device unsubscribed,
// or its push service answered 404 or 410.
type RemovePushSubscription struct {
	UserID   uint64 `json:"userId"`
	Endpoint string `json:"endpoint"`
}

// SetNotifyLevel sets what of a room a member is notified of when away:
// "all", "mentions" (the default) or "nothing".
type SetNotifyLevel struct {
	UserID uint64 `json:"userId"`
	RoomID string `json:"roomId"`
	Level  string `json:"level"`
}

// Expire deletes tokens and reset links past their expiry, and uploads no
// message took within a day, as of the envelope's time.
type Expire struct{}

// TrimOlderThan deletes up to Limit messages sent before Cutoff.
type TrimOlderThan struct {
	Cutoff time.Time `json:"cutoff"`
	Limit  int       `json:"limit"`
}

func (CreateUser) commandName() string             { return "createUser" }
func (CreateGuest) commandName() string            { return "createGuest" }
func (EndGuest) commandName() string               { return "endGuest" }
func (CreateInviteLink) commandName() string       { return "createInviteLink" }
func (RevokeInviteLink) commandName() string       { return "revokeInviteLink" }
func (CreateBot) commandName() string              { return "createBot" }
func (CreateHook) commandName() string             { return "createHook" }
func (DeleteHook) commandName() string             { return "deleteHook" }
func (CreateGroup) commandName() string            { return "createGroup" }
func (SetVAPIDKeys) commandName() string           { return "setVAPIDKeys" }
func (AddPushSubscription) commandName() string    { return "addPushSubscription" }
func (RemovePushSubscription) commandName() string { return "removePushSubscription" }
func (SetNotifyLevel) commandName() string         { return "setNotifyLevel" }
func (IssueToken) commandName() string             { return "issueToken" }
func (RevokeToken) commandName() string            { return "revokeToken" }
func (SetPassword) commandName() string            { return "setPassword" }
func (CreateResetLink) commandName() string        { return "createResetLink" }
func (RedeemResetLink) commandName() string        { return "redeemResetLink" }
func (SetAdmin) commandName() string               { return "setAdmin" }
func (DeleteUser) commandName() string             { return "deleteUser" }
func (SuspendUser) commandName() string            { return "suspendUser" }
func (JoinRoom) commandName() string               { return "joinRoom" }
func (LeaveRoom) commandName() string              { return "leaveRoom" }
func (Invite) commandName() string                 { return "invite" }
func (Kick) commandName() string                   { return "kick" }
func (Ban) commandName() string                    { return "ban" }
func (Unban) commandName() string                  { return "unban" }
func (Mute) commandName() string                   { return "mute" }
func (Unmute) commandName() string                 { return "unmute" }
func (SetRole) commandName() string                { return "setRole" }
func (SetTopic) commandName() string               { return "setTopic" }
func (PostMessage) commandName() string            { return "postMessage" }
func (EditMessage) commandName() string            { return "editMessage" }
func (DeleteMessage) commandName() string          { return "deleteMessage" }
func (React) commandName() string                  { return "react" }
func (MarkRead) commandName() string               { return "markRead" }
func (PutFile) commandName() string                { return "putFile" }
func (Expire) commandName() string                 { return "expire" }
func (TrimOlderThan) commandName() string          { return "trimOlderThan" }

// commandTypes maps a command's name to its type, for decoding.
var commandTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, c := range []Command{CreateUser{}, IssueToken{}, RevokeToken{}, SetPassword{}, CreateResetLink{},
		RedeemResetLink{}, SetAdmin{}, DeleteUser{}, SuspendUser{}, JoinRoom{}, LeaveRoom{}, Invite{}, Kick{}, Ban{},
		Unban{}, Mute{}, Unmute{}, SetRole{}, SetTopic{}, PostMessage{}, EditMessage{}, DeleteMessage{}, React{},
		MarkRead{}, PutFile{}, Expire{}, TrimOlderThan{}, CreateGuest{}, EndGuest{}, CreateInviteLink{}, RevokeInviteLink{},
		CreateBot{}, CreateHook{}, DeleteHook{}, CreateGroup{}, SetVAPIDKeys{}, AddPushSubscription{},
		RemovePushSubscription{}, SetNotifyLevel{}} {
		m[c.commandName()] = reflect.TypeOf(c)
	}
	return m
}()

// Name is the command's type name, as it is encoded.
func Name(c Command) string { return c.commandName() }

type envelopeJSON struct {
	ID     string          `json:"id"`
	Origin string          `json:"origin,omitempty"`
	Time   time.Time       `json:"time"`
	Type   string          `json:"type"`
	Cmd    json.RawMessage `json:"cmd"`
}

// MarshalJSON encodes an envelope with its command's type name, so it can
// travel between processes and be decoded to the same command.
func (e Envelope) MarshalJSON() ([]byte, error) {
	if e.Cmd == nil {
		return nil, fmt.Errorf("encode command %s: no command", e.ID)
	}
	raw, err := json.Marshal(e.Cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command %s: %w", e.ID, err)
	}
	return json.Marshal(envelopeJSON{ID: e.ID, Origin: e.Origin, Time: e.Time, Type: e.Cmd.commandName(), Cmd: raw})
}

// UnmarshalJSON decodes what MarshalJSON wrote; an unknown command type
// is an error.
func (e *Envelope) UnmarshalJSON(b []byte) error {
	var j envelopeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode command: %w", err)
	}
	t, ok := commandTypes[j.Type]
	if !ok {
		return fmt.Errorf("decode command %s: unknown type %q", j.ID, j.Type)
	}
	v := reflect.New(t)
	if err := json.Unmarshal(j.Cmd, v.Interface()); err != nil {
		return fmt.Errorf("decode %s command %s: %w", j.Type, j.ID, err)
	}
	*e = Envelope{ID: j.ID, Origin: j.Origin, Time: j.Time, Cmd: v.Elem().Interface().(Command)}
	return nil
}

// --- what applying yields ---

// Outcome is the result of one command: Err is its refusal (a sentinel
// error of this package, a *MutedError or *ForbiddenError), or
// ErrUnavailable when its transaction failed; the other fields are set
// by the commands that produce them.
type Outcome struct {
	Err error

	User      User       // CreateUser, IssueToken, RevokeToken, CreateResetLink, RedeemResetLink, SuspendUser
	Room      Room       // JoinRoom, Invite, moderation, SetTopic
	Created   bool       // JoinRoom: the room did not exist before
	NewMember bool       // JoinRoom: the user was not a member before
	WasMember bool       // Ban: the target was a member
	Message   Message    // PostMessage, EditMessage, DeleteMessage, React
	Added     bool       // React: the emoji was added, not taken away
	File      StoredFile // PutFile
	Count     int        // Expire, TrimOlderThan: how many things went; SetVAPIDKeys: 1 if stored
	Hook      Hook       // CreateHook, DeleteHook
	Invite    InviteLink // CreateInviteLink, RevokeInviteLink
}

// Applied is one command after its commit: its place in the log, its
// outcome, and its events, in the order they happened.
type Applied struct {
	Seq     uint64
	Env     Envelope
	Outcome Outcome
	Events  []Event
}

// Batch is the commands of one commit, in log order. Err is set when the
// commit failed: then every command's outcome is that error, nothing was
// written, and there are no events.
type Batch struct {
	Applied   []Applied
	Err       error
	Took      time.Duration // the transaction, fsync included
	Committed time.Time     // when it was on disk
}

// LastSeq is the log position of the batch's last command.
func (b Batch) LastSeq() uint64 {
	if len(b.Applied) == 0 {
		return 0
	}
	return b.Applied[len(b.Applied)-1].Seq
}
