package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"parley/internal/store"

	"github.com/forPelevin/gomoji"
)

// Frame is the envelope of every WebSocket message in both directions,
// exactly as in the tutorial: {"type": ..., "data": {...}}.
type Frame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Error codes are stable and machine-readable; clients switch on them.
// PROTOCOL.md lists which frames answer which code.
const (
	codeBadRequest           = "bad_request"
	codeUnknownType          = "unknown_type"
	codeUnauthenticated      = "unauthenticated"
	codeAlreadyAuthenticated = "already_authenticated"
	codeAuthFailed           = "auth_failed"
	codeUsernameTaken        = "username_taken"
	codeInvalidUsername      = "invalid_username"
	codeInvalidPassword      = "invalid_password"
	codeRegistrationClosed   = "registration_closed"
	codeInvalidRoom          = "invalid_room"
	codeNotMember            = "not_member"
	codeInvalidContent       = "invalid_content"
	codeUserNotFound         = "user_not_found"
	codeInvalidTarget        = "invalid_target"
	codeRateLimited          = "rate_limited"
	codeForbidden            = "forbidden"
	codeBanned               = "banned"
	codeMuted                = "muted"
	codeNotFound             = "not_found"
	codeInvalidEmoji         = "invalid_emoji"
	codeLimitReached         = "limit_reached"
	codeStoreUnavailable     = "store_unavailable"
	codeUnconfirmed          = "unconfirmed"
	codeInternal             = "internal"
	codeInviteInvalid        = "invite_invalid"
)

// protoError is an error meant for the client: its code and message go
// into an error frame as they are. Anything else becomes "internal".
type protoError struct {
	Code       string
	Message    string
	RetryAfter float64 // seconds; only with codeRateLimited
}

func (e *protoError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *protoError {
	return &protoError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorData is the data of an "error" frame. The tutorial's clients read
// only message; Type and ClientMsgID let a client tie the error to the
// frame that caused it.
type errorData struct {
	Code        string  `json:"code"`
	Message     string  `json:"message"`
	Type        string  `json:"type,omitempty"`
	ClientMsgID string  `json:"clientMsgId,omitempty"`
	RetryAfter  float64 `json:"retryAfter,omitempty"`
}

// Client frame payloads. Fields are pointers or json.RawMessage only where
// "absent" and "zero" must be told apart.

type authData struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Token    string `json:"token"`
	// Create: false only signs in to an existing account, true only
	// creates one; absent does either, as in the tutorial.
	Create *bool `json:"create"`
	// Invite is the secret of an invite link, for a new account.
	Invite string `json:"invite"`
}

type changePasswordData struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

type passwordChangedData struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

type resetLinkData struct {
	Username  string `json:"username"`
	URL       string `json:"url"`
	ExpiresAt string `json:"expiresAt"`
}

type loggedOutData struct {
	Reason string `json:"reason"`
}

type roomData struct {
	RoomID string `json:"roomId"`
}

type chatData struct {
	RoomID      string   `json:"roomId"`
	Content     string   `json:"content"`
	ClientMsgID string   `json:"clientMsgId"`
	ReplyTo     string   `json:"replyTo"`
	Files       []string `json:"files"`
}

type privateData struct {
	TargetUserID   string   `json:"targetUserId"`
	TargetUsername string   `json:"targetUsername"`
	Content        string   `json:"content"`
	ClientMsgID    string   `json:"clientMsgId"`
	ReplyTo        string   `json:"replyTo"`
	Files          []string `json:"files"`
}

type joinData struct {
	RoomID  string `json:"roomId"`
	Private bool   `json:"private"`
	Topic   string `json:"topic"`
}

// targetData names a message: in a room, or in the direct conversation
// with a user.
type targetData struct {
	RoomID     string `json:"roomId"`
	WithUserID string `json:"withUserId"`
	MessageID  string `json:"messageId"`
}

type threadRequest struct {
	targetData
	After string `json:"after"` // replies newer than this message id
}

type editData struct {
	targetData
	Content string `json:"content"`
}

type reactData struct {
	targetData
	Emoji string `json:"emoji"`
}

// moderationData is the payload of invite, kick, ban, unban, mute,
// unmute and setRole.
type moderationData struct {
	RoomID   string `json:"roomId"`
	UserID   string `json:"userId"`
	Username string `json:"username"`
	Reason   string `json:"reason"`
	Global   bool   `json:"global"`
	Minutes  int    `json:"minutes"`
	Role     string `json:"role"`
}

type topicData struct {
	RoomID string `json:"roomId"`
	Topic  string `json:"topic"`
}

type searchData struct {
	Query      string `json:"query"`
	RoomID     string `json:"roomId"`
	WithUserID string `json:"withUserId"`
	Limit      int    `json:"limit"`
}

type typingData struct {
	RoomID   string `json:"roomId"`
	IsTyping bool   `json:"isTyping"`
}

type historyData struct {
	RoomID     string `json:"roomId"`
	WithUserID string `json:"withUserId"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Around     string `json:"around"`
	Limit      int    `json:"limit"`
}

type readData struct {
	RoomID     string `json:"roomId"`
	WithUserID string `json:"withUserId"`
	MessageID  string `json:"messageId"`
}

// Server frame payloads.

type connectedData struct {
	ClientID string `json:"clientId"`
	Server   string `json:"server"`
	Protocol int    `json:"protocol"`
}

type userRef struct {
	UserID   string `json:"userId"`
	Username string `json:"username"`
}

type memberInfo struct {
	UserID   string `json:"userId"`
	Username string `json:"username"`
	Online   bool   `json:"online"`
	Role     string `json:"role"`
	Muted    bool   `json:"muted,omitempty"`
	// MutedUntil is when a timed mute ends; absent when not muted or
	// muted until unmuted.
	MutedUntil string `json:"mutedUntil,omitempty"`
	// Admin marks a server admin, who outranks every room role.
	Admin bool `json:"admin,omitempty"`
	Guest bool `json:"guest,omitempty"`
	Bot   bool `json:"bot,omitempty"`
}

type roomInfo struct {
	RoomID        string `json:"roomId"`
	MemberCount   int    `json:"memberCount"`
	OnlineCount   int    `json:"onlineCount"`
	CreatedAt     string `json:"createdAt"`
	LastMessageAt string `json:"lastMessageAt,omitempty"`
	Topic         string `json:"topic,omitempty"`
	Private       bool   `json:"private,omitempty"`
	// For the user's own rooms in authenticated: their role and what
	// they have not read.
	Role     string `json:"role,omitempty"`
	Unread   *int   `json:"unread,omitempty"`
	Mentions *int   `json:"mentions,omitempty"`
	LastRead string `json:"lastRead,omitempty"`
	// Group: a group conversation (a private room without a name; its
	// topic lists its people).
	Group bool `json:"group,omitempty"`
	// Notify is the user's level for the room when it is not the
	// default, mentions: all or nothing.
	Notify string `json:"notify,omitempty"`
}

type unreadInfo struct {
	UserID        string `json:"userId"`
	Username      string `json:"username"`
	Count         int    `json:"count"`
	LastMessageAt string `json:"lastMessageAt"`
}

type authenticatedData struct {
	ClientID    string       `json:"clientId"`
	UserID      string       `json:"userId"`
	Username    string       `json:"username"`
	Token       string       `json:"token"`
	ExpiresAt   string       `json:"expiresAt"`
	Created     bool         `json:"created"`
	IsAdmin     bool         `json:"isAdmin"`
	OnlineUsers []userRef    `json:"onlineUsers"`
	Rooms       []roomInfo   `json:"rooms"`
	Unread      []unreadInfo `json:"unread"`
	Directs     []directInfo `json:"directs"`
	// MaxUploadBytes is uploads.max_bytes, so a client can refuse a file
	// that is too large before sending it; absent when uploads are off.
	MaxUploadBytes int64 `json:"maxUploadBytes,omitempty"`
	Guest          bool  `json:"guest,omitempty"`
	Bot            bool  `json:"bot,omitempty"`
	// InvitedTo is the room an invite link put a new account in.
	InvitedTo string `json:"invitedTo,omitempty"`
	// VAPIDPublicKey is the applicationServerKey for Web Push; absent
	// when push is off (and for guests and bots).
	VAPIDPublicKey string `json:"vapidPublicKey,omitempty"`
}

type directInfo struct {
	UserID        string `json:"userId"`
	Username      string `json:"username"`
	Online        bool   `json:"online"`
	Unread        int    `json:"unread"`
	LastMessageAt string `json:"lastMessageAt"`
	LastRead      string `json:"lastRead,omitempty"`
}

type joinedData struct {
	RoomID   string         `json:"roomId"`
	Created  bool           `json:"created"`
	Topic    string         `json:"topic"`
	Private  bool           `json:"private"`
	Role     string         `json:"role"`
	LastRead string         `json:"lastRead,omitempty"`
	History  []messageFrame `json:"history"`
	HasMore  bool           `json:"hasMore"`
	// Trimmed: the start of the history was reached, but the room began
	// earlier and the server no longer keeps its first messages.
	Trimmed bool         `json:"trimmed,omitempty"`
	Users   []memberInfo `json:"users"`
	// Events: the room's events among the history, oldest first; always
	// present, so a client knows the server keeps them.
	Events []roomEventInfo `json:"events"`
	Group  bool            `json:"group,omitempty"`
	Notify string          `json:"notify,omitempty"`
}

// roomEventInfo is a room event kept in its history (PROTOCOL.md,
// "events").
type roomEventInfo struct {
	Type     string   `json:"type"`
	At       string   `json:"at"`
	After    string   `json:"after"`
	UserID   string   `json:"userId,omitempty"`
	Username string   `json:"username,omitempty"`
	By       *userRef `json:"by,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Until    string   `json:"until,omitempty"`
	Role     string   `json:"role,omitempty"`
	Topic    string   `json:"topic,omitempty"`
}

type roomUserData struct {
	RoomID    string   `json:"roomId"`
	UserID    string   `json:"userId"`
	Username  string   `json:"username"`
	InvitedBy *userRef `json:"invitedBy,omitempty"`
	Guest     bool     `json:"guest,omitempty"`
	Bot       bool     `json:"bot,omitempty"`
}

type typingOutData struct {
	RoomID   string `json:"roomId"`
	UserID   string `json:"userId"`
	Username string `json:"username"`
	IsTyping bool   `json:"isTyping"`
}

type historyOutData struct {
	RoomID     string         `json:"roomId,omitempty"`
	WithUserID string         `json:"withUserId,omitempty"`
	Messages   []messageFrame `json:"messages"`
	HasMore    bool           `json:"hasMore"`
	// With around or after: whether newer messages follow the page.
	HasNewer bool `json:"hasNewer,omitempty"`
	// Trimmed: see joinedData.
	Trimmed bool `json:"trimmed,omitempty"`
	// Events: a room's events among the page, oldest first.
	Events []roomEventInfo `json:"events,omitempty"`
}

type roomsData struct {
	Rooms []roomInfo `json:"rooms"`
	// HasMore: more rooms follow; ask again with after set to the last
	// room's id.
	HasMore bool `json:"hasMore,omitempty"`
}

// messageFrame is the wire form of a stored message, shared by "message",
// "privateMessage", "privateMessageSent" and history. Room messages carry
// roomId; direct messages carry targetUserId/targetUsername instead.
type messageFrame struct {
	ID             string         `json:"id"`
	Seq            uint64         `json:"seq"`
	RoomID         string         `json:"roomId,omitempty"`
	SenderID       string         `json:"senderId"`
	SenderName     string         `json:"senderName"`
	TargetUserID   string         `json:"targetUserId,omitempty"`
	TargetUsername string         `json:"targetUsername,omitempty"`
	Content        string         `json:"content"`
	Timestamp      string         `json:"timestamp"`
	ClientMsgID    string         `json:"clientMsgId,omitempty"`
	ReplyTo        *replyPreview  `json:"replyTo,omitempty"`
	ReplyCount     int            `json:"replyCount,omitempty"`
	EditedAt       string         `json:"editedAt,omitempty"`
	Deleted        bool           `json:"deleted,omitempty"`
	Reactions      []reactionInfo `json:"reactions,omitempty"`
	Mentions       []string       `json:"mentions,omitempty"`
	Files          []fileInfo     `json:"files,omitempty"`
	Bot            bool           `json:"bot,omitempty"`
	BotLabel       string         `json:"botLabel,omitempty"`
}

// replyPreview quotes the parent of a reply.
type replyPreview struct {
	ID         string `json:"id"`
	SenderID   string `json:"senderId"`
	SenderName string `json:"senderName"`
	Content    string `json:"content"`
	Deleted    bool   `json:"deleted,omitempty"`
}

type reactionInfo struct {
	Emoji   string   `json:"emoji"`
	Count   int      `json:"count"`
	UserIDs []string `json:"userIds"`
}

type fileInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	URL         string `json:"url"`
	Image       bool   `json:"image"`
}

// messageRef names a message in events about it: its room, or the two
// parties of its direct conversation.
type messageRef struct {
	RoomID       string `json:"roomId,omitempty"`
	SenderID     string `json:"senderId,omitempty"`
	TargetUserID string `json:"targetUserId,omitempty"`
	ID           string `json:"id"`
}

type messageEditedData struct {
	messageRef
	Content  string `json:"content"`
	EditedAt string `json:"editedAt"`
	// Mentions are worked out again for the new text (room messages
	// only); absent when it mentions nobody, as in messageFrame.
	Mentions []string `json:"mentions,omitempty"`
}

type messageDeletedData struct {
	messageRef
	By userRef `json:"by"`
}

type reactionData struct {
	messageRef
	Emoji    string   `json:"emoji"`
	UserID   string   `json:"userId"`
	Username string   `json:"username"`
	Added    bool     `json:"added"`
	Count    int      `json:"count"`
	UserIDs  []string `json:"userIds"`
}

type threadData struct {
	RoomID     string         `json:"roomId,omitempty"`
	WithUserID string         `json:"withUserId,omitempty"`
	MessageID  string         `json:"messageId"`
	Parent     messageFrame   `json:"parent"`
	Replies    []messageFrame `json:"replies"`
	// HasMore: more replies follow; ask again with after set to the last
	// reply's id.
	HasMore bool `json:"hasMore,omitempty"`
}

type searchResultsData struct {
	Query     string         `json:"query"`
	Results   []messageFrame `json:"results"`
	Truncated bool           `json:"truncated"`
}

type readUpdatedData struct {
	RoomID     string `json:"roomId,omitempty"`
	WithUserID string `json:"withUserId,omitempty"`
	MessageID  string `json:"messageId"`
}

// moderationEvent announces a moderation action to a room.
type moderationEvent struct {
	RoomID   string  `json:"roomId,omitempty"`
	UserID   string  `json:"userId"`
	Username string  `json:"username"`
	By       userRef `json:"by"`
	Reason   string  `json:"reason,omitempty"`
	Global   bool    `json:"global,omitempty"`
	Until    string  `json:"until,omitempty"`
	Role     string  `json:"role,omitempty"`
}

type roomUpdatedData struct {
	RoomID  string  `json:"roomId"`
	Topic   string  `json:"topic"`
	Private bool    `json:"private"`
	By      userRef `json:"by"`
}

type invitedData struct {
	Room roomInfo `json:"room"`
	By   userRef  `json:"by"`
}

// marshalFrame encodes one server frame. The payloads are our own types,
// so a failure is a programming error.
func marshalFrame(typ string, data any) []byte {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("marshal %s frame: %v", typ, err))
	}
	// The envelope is written by hand: marshalling a Frame would validate
	// and copy the payload a second time, on the hottest path of fan-out.
	name, err := json.Marshal(typ)
	if err != nil {
		panic(fmt.Sprintf("marshal %s envelope: %v", typ, err))
	}
	b := make([]byte, 0, len(`{"type":,"data":}`)+len(name)+len(raw))
	b = append(b, `{"type":`...)
	b = append(b, name...)
	b = append(b, `,"data":`...)
	b = append(b, raw...)
	return append(b, '}')
}

// decodeFrame parses a client frame. Anything that is not valid UTF-8 or
// not a JSON object with a string "type" is refused.
func decodeFrame(msg []byte) (Frame, *protoError) {
	var f Frame
	if !utf8.Valid(msg) {
		return f, errorf(codeBadRequest, "Invalid message format: not valid UTF-8")
	}
	if err := json.Unmarshal(msg, &f); err != nil {
		return f, errorf(codeBadRequest, "Invalid message format")
	}
	if f.Type == "" {
		return f, errorf(codeBadRequest, "Invalid message format: missing type")
	}
	return f, nil
}

// decodeData decodes a frame's data object into v. A missing data member
// decodes as an empty object so frames like {"type":"rooms"} work.
func decodeData(f Frame, v any) *protoError {
	data := bytes.TrimSpace(f.Data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		data = []byte("{}")
	}
	if data[0] != '{' {
		return errorf(codeBadRequest, "Invalid %s frame: data must be an object", f.Type)
	}
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errorf(codeBadRequest, "Invalid %s frame: %s must be a %s", f.Type, typeErr.Field, typeErr.Type.Kind())
		}
		return errorf(codeBadRequest, "Invalid %s frame", f.Type)
	}
	return nil
}

// Name rules. Usernames and room ids share one alphabet so they are safe
// in URLs, logs and bbolt keys.
const (
	maxUsernameLen    = store.MaxUsernameLen
	maxRoomIDLen      = 64
	minPasswordLen    = 8
	maxPasswordBytes  = 1024 // argon2id takes any length; this only bounds work per attempt
	maxClientMsgIDLen = 64
)

func validName(s string, maxLen int) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '-' || c == '.':
		default:
			return false
		}
	}
	return true
}

// onlyDots reports a name made of dots alone: ".", "..", "...". In a
// path those mean "here" and "up", so URLs and tools would misread them.
func onlyDots(s string) bool { return strings.Trim(s, ".") == "" }

func checkUsername(name string) *protoError {
	if !validName(name, maxUsernameLen) || onlyDots(name) {
		return errorf(codeInvalidUsername, "Username must be 1-%d letters, digits, '_', '-' or '.', and not dots alone", maxUsernameLen)
	}
	return nil
}

func checkRoomID(id string) *protoError {
	if id == "" {
		return errorf(codeInvalidRoom, "Missing roomId")
	}
	if !validName(id, maxRoomIDLen) || onlyDots(id) {
		return errorf(codeInvalidRoom, "Room id must be 1-%d letters, digits, '_', '-' or '.', and not dots alone", maxRoomIDLen)
	}
	return nil
}

// checkContent enforces the message rules: non-empty, at most maxChars
// characters, no control characters but tab and line breaks, no bidi
// overrides. Content is otherwise relayed verbatim: it is text, never
// markup.
func checkContent(content string, maxChars int) *protoError {
	if strings.TrimSpace(content) == "" {
		return errorf(codeInvalidContent, "Message content is empty")
	}
	if n := utf8.RuneCountInString(content); n > maxChars {
		return errorf(codeInvalidContent, "Message is %d characters; the limit is %d", n, maxChars)
	}
	for _, r := range content {
		if r == '\t' || r == '\n' || r == '\r' {
			continue
		}
		if refusedRune(r) {
			return errorf(codeInvalidContent, "Message contains the control character U+%04X", r)
		}
	}
	return nil
}

// refusedRune reports the characters no user text may hold: C0 and C1
// controls (U+0000-U+001F, U+007F-U+009F) and the bidi overrides and
// isolates (U+202A-U+202E, U+2066-U+2069), which make text display in an
// order other than it is read: "invoice\u202Efdp.exe" shows as
// "invoiceexe.pdf". The bidi marks U+200E and U+200F stay allowed.
func refusedRune(r rune) bool {
	return unicode.IsControl(r) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// checkClientMsgID bounds the client's correlation id; it is echoed to
// others, so it may not carry control characters.
func checkClientMsgID(id string) *protoError {
	if len(id) > maxClientMsgIDLen {
		return errorf(codeBadRequest, "clientMsgId is longer than %d bytes", maxClientMsgIDLen)
	}
	if strings.ContainsFunc(id, refusedRune) {
		return errorf(codeBadRequest, "clientMsgId contains control characters")
	}
	return nil
}

func checkTopic(topic string) *protoError {
	if n := utf8.RuneCountInString(topic); n > maxTopicChars {
		return errorf(codeBadRequest, "A topic is at most %d characters; this one is %d", maxTopicChars, n)
	}
	if strings.ContainsFunc(topic, refusedRune) {
		return errorf(codeBadRequest, "A topic is one line without control characters")
	}
	return nil
}

// checkReason applies the topic's rules to a moderation reason: one line
// of at most maxTopicChars characters, without control characters.
func checkReason(reason string) *protoError {
	if n := utf8.RuneCountInString(reason); n > maxTopicChars {
		return errorf(codeBadRequest, "A reason is at most %d characters; this one is %d", maxTopicChars, n)
	}
	if strings.ContainsFunc(reason, refusedRune) {
		return errorf(codeBadRequest, "A reason is one line without control characters")
	}
	return nil
}

// maxEmojiBytes bounds one reaction before it is looked up; the longest
// emoji sequences (families with skin tones) take 35 bytes.
const maxEmojiBytes = 64

// checkEmoji accepts exactly one emoji: a whole sequence from Unicode's
// emoji list (keycaps, flags, skin tones and joined sequences included),
// never letters that merely look wide (fullwidth "ｓ").
func checkEmoji(e string) *protoError {
	if e == "" || len(e) > maxEmojiBytes {
		return errorf(codeInvalidEmoji, "A reaction is one emoji")
	}
	if _, err := gomoji.GetInfo(e); err != nil {
		return errorf(codeInvalidEmoji, "A reaction is one emoji")
	}
	return nil
}
