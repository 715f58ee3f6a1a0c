package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Messages: posting, editing, deleting, reactions and read markers.

// replyPreviewChars is how much of a parent a reply quotes.
const replyPreviewChars = 200

// maxReactionKinds bounds the different emoji on one message.
const maxReactionKinds = 20

// MaxUsernameLen bounds a username; mentions are read with the same rule.
const MaxUsernameLen = 32

type messageRecord struct {
	SenderID    uint64     `json:"s"`
	SenderName  string     `json:"sn"`
	TargetID    uint64     `json:"t,omitempty"`
	TargetName  string     `json:"tn,omitempty"`
	Content     string     `json:"c"`
	Time        time.Time  `json:"ts"`
	ClientMsgID string     `json:"cm,omitempty"`
	ReplyTo     uint64     `json:"r,omitempty"`
	ReplyCount  int        `json:"rc,omitempty"`
	EditedAt    time.Time  `json:"e,omitzero"`
	Deleted     bool       `json:"d,omitempty"`
	Reactions   []Reaction `json:"x,omitempty"`
	Mentions    []uint64   `json:"m,omitempty"`
	Files       []FileRef  `json:"f,omitempty"`
	Bot         bool       `json:"b,omitempty"`
	Label       string     `json:"bl,omitempty"`
}

func (m Message) record() messageRecord {
	return messageRecord{SenderID: m.SenderID, SenderName: m.SenderName, TargetID: m.TargetID, TargetName: m.TargetName,
		Content: m.Content, Time: m.Time, ClientMsgID: m.ClientMsgID, ReplyTo: m.ReplyTo, ReplyCount: m.ReplyCount,
		EditedAt: m.EditedAt, Deleted: m.Deleted, Reactions: m.Reactions, Mentions: m.Mentions, Files: m.Files,
		Bot: m.Bot, Label: m.Label}
}

func (r messageRecord) preview(seq uint64) *ReplyParent {
	content := r.Content
	if utf8.RuneCountInString(content) > replyPreviewChars {
		content = string([]rune(content)[:replyPreviewChars]) + "…"
	}
	return &ReplyParent{Seq: seq, SenderID: r.SenderID, SenderName: r.SenderName, Content: content, Deleted: r.Deleted}
}

// key names the conversation's message bucket.
func (c Conv) key() []byte {
	if c.IsDirect() {
		return directKey(c.A, c.B)
	}
	return append([]byte{'r'}, c.RoomID...)
}

func directKey(a, b uint64) []byte {
	if a > b {
		a, b = b, a
	}
	k := make([]byte, 17)
	k[0] = 'd'
	binary.BigEndian.PutUint64(k[1:], a)
	binary.BigEndian.PutUint64(k[9:], b)
	return k
}

// decodeMessage decodes a stored message; conv, when given, is its
// conversation's bucket, where a reply's parent is looked up for its quote.
func decodeMessage(k, v []byte, roomID string, conv *bolt.Bucket) (Message, error) {
	var rec messageRecord
	seq := binary.BigEndian.Uint64(k)
	if err := json.Unmarshal(v, &rec); err != nil {
		return Message{}, fmt.Errorf("decode message %d: %w", seq, err)
	}
	m := Message{Seq: seq, RoomID: roomID, SenderID: rec.SenderID, SenderName: rec.SenderName,
		TargetID: rec.TargetID, TargetName: rec.TargetName, Content: rec.Content, Time: rec.Time,
		ClientMsgID: rec.ClientMsgID, ReplyTo: rec.ReplyTo, ReplyCount: rec.ReplyCount, EditedAt: rec.EditedAt,
		Deleted: rec.Deleted, Reactions: rec.Reactions, Mentions: rec.Mentions, Files: rec.Files, Bot: rec.Bot, Label: rec.Label}
	if rec.ReplyTo != 0 && conv != nil {
		if pv := conv.Get(u64key(rec.ReplyTo)); pv != nil {
			var parent messageRecord
			if json.Unmarshal(pv, &parent) == nil {
				m.Parent = parent.preview(rec.ReplyTo)
			}
		} else {
			// The parent aged out of the history: quote what is known.
			m.Parent = &ReplyParent{Seq: rec.ReplyTo, Deleted: true}
		}
	}
	return m, nil
}

// postMessage stores a message and trims its conversation. Membership
// and mutes are checked here, in log order: a message that waited while
// its sender left, was kicked, banned or muted is refused, so nothing
// reaches a room after the event that closed it.
func (a *applier) postMessage(c PostMessage) (Outcome, error) {
	sender, err := a.user(c.SenderID)
	if err != nil {
		return Outcome{}, err
	}
	m := Message{RoomID: c.RoomID, SenderID: sender.ID, SenderName: sender.Name, Content: c.Content,
		Time: a.now, ClientMsgID: c.ClientMsgID, ReplyTo: c.ReplyTo, Bot: sender.Bot}
	if sender.Bot {
		m.Label = c.Label
	}
	var room *roomRecord
	if c.RoomID != "" {
		if room, err = a.existingRoom(c.RoomID); err != nil {
			return Outcome{}, err
		}
		if !isMemberTx(a.tx, c.RoomID, sender.ID) {
			return Outcome{}, ErrNotMember
		}
		if until, muted := muteAt(room.Mutes, sender.ID, a.now); muted {
			return Outcome{}, &MutedError{Until: until}
		}
	} else {
		target, err := a.user(c.TargetID)
		if err != nil {
			return Outcome{}, err
		}
		if target.ID == sender.ID {
			return Outcome{}, fmt.Errorf("%w: a direct message to oneself", errBadCommand)
		}
		m.TargetID, m.TargetName = target.ID, target.Name
	}
	key := m.Conv().key()
	msgs := a.tx.Bucket(bucketMessages)
	var parent messageRecord
	if m.ReplyTo != 0 {
		var v []byte
		if conv := msgs.Bucket(key); conv != nil {
			v = conv.Get(u64key(m.ReplyTo))
		}
		if v == nil {
			return Outcome{}, ErrParentNotFound
		}
		if err := json.Unmarshal(v, &parent); err != nil {
			// A damaged record is as good as gone.
			a.store.reportBad(m.Conv(), u64key(m.ReplyTo), v)
			return Outcome{}, ErrParentNotFound
		}
	}
	files, err := a.checkFiles(c.FileIDs, sender.ID)
	if err != nil {
		return Outcome{}, err
	}

	conv, err := msgs.CreateBucketIfNotExists(key)
	if err != nil {
		return Outcome{}, err
	}
	seq, err := conv.NextSequence()
	if err != nil {
		return Outcome{}, err
	}
	m.Seq = seq
	if m.ReplyTo != 0 {
		parent.ReplyCount++
		if err := putJSON(conv, u64key(m.ReplyTo), parent); err != nil {
			return Outcome{}, err
		}
		m.Parent = parent.preview(m.ReplyTo)
	}
	if !m.IsDirect() {
		if m.Mentions, err = resolveMentions(a.tx, m.RoomID, m.Content); err != nil {
			return Outcome{}, err
		}
	}
	if m.Files, err = a.attachFiles(files, m.Conv(), seq); err != nil {
		return Outcome{}, err
	}
	if err := putJSON(conv, u64key(seq), m.record()); err != nil {
		return Outcome{}, err
	}
	// Trim in the same transaction, so the history never exceeds Keep.
	if c.Keep > 0 {
		cur := conv.Cursor()
		for k, v := cur.First(); k != nil && binary.BigEndian.Uint64(k)+uint64(c.Keep) <= seq; k, v = cur.First() {
			if err := deleteMessageFiles(a.tx, v); err != nil {
				return Outcome{}, err
			}
			if err := cur.Delete(); err != nil {
				return Outcome{}, err
			}
		}
		if first, _ := cur.First(); first != nil && !m.IsDirect() {
			if err := trimRoomEvents(a.tx, m.RoomID, binary.BigEndian.Uint64(first)); err != nil {
				return Outcome{}, err
			}
		}
	}
	if m.IsDirect() {
		// The sender has read everything up to their own message; the
		// target gets the conversation listed with nothing read yet.
		if err := setDirectRead(a.tx, m.SenderID, m.TargetID, seq); err != nil {
			return Outcome{}, err
		}
		peers, err := a.tx.Bucket(bucketDMPeers).CreateBucketIfNotExists(u64key(m.TargetID))
		if err != nil {
			return Outcome{}, err
		}
		if peers.Get(u64key(m.SenderID)) == nil {
			if err := peers.Put(u64key(m.SenderID), u64key(0)); err != nil {
				return Outcome{}, err
			}
		}
	} else {
		room.LastMessageAt = m.Time
		a.putRoom(m.RoomID, room)
		a.setRoomRead(m.SenderID, m.RoomID, seq)
	}
	a.emit(MessagePosted{Message: m})
	return Outcome{Message: m}, nil
}

// resolveMentions finds the room's members named with @name in content.
func resolveMentions(tx *bolt.Tx, roomID, content string) ([]uint64, error) {
	names := mentionedNames(content)
	if len(names) == 0 {
		return nil, nil
	}
	members := tx.Bucket(bucketMembers).Bucket([]byte(roomID))
	if members == nil {
		return nil, nil
	}
	var out []uint64
	err := members.ForEach(func(k, v []byte) error {
		if names[strings.ToLower(string(v))] {
			out = append(out, binary.BigEndian.Uint64(k))
		}
		return nil
	})
	return out, err
}

// nameByte reports whether c belongs to the username alphabet.
func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// mentionedNames returns the lower-cased names written as @name; a name
// ends where the username alphabet does, and a trailing dot (the end of a
// sentence) is also tried without it.
func mentionedNames(content string) map[string]bool {
	var names map[string]bool
	for i := 0; i < len(content); i++ {
		if content[i] != '@' || (i > 0 && nameByte(content[i-1])) {
			continue
		}
		j := i + 1
		for j < len(content) && j-i-1 < MaxUsernameLen && nameByte(content[j]) {
			j++
		}
		if j == i+1 {
			continue
		}
		if names == nil {
			names = map[string]bool{}
		}
		name := strings.ToLower(content[i+1 : j])
		names[name] = true
		names[strings.TrimRight(name, ".")] = true
		i = j - 1
	}
	return names
}

// canSee checks that a user takes part in a conversation: a member of
// the room, or one of the two parties.
func (a *applier) canSee(conv Conv, userID uint64) error {
	if conv.IsDirect() {
		if conv.A != userID && conv.B != userID {
			return ErrNotFound
		}
		return nil
	}
	if !isMemberTx(a.tx, conv.RoomID, userID) {
		return ErrNotMember
	}
	return nil
}

// modifyMessage rewrites a stored message through fn and returns it as it
// now is. Deleted messages are ErrNotFound. fn must refuse before it
// changes anything outside rec.
func (a *applier) modifyMessage(conv Conv, seq uint64, fn func(rec *messageRecord) error) (Message, error) {
	b := a.tx.Bucket(bucketMessages).Bucket(conv.key())
	if b == nil {
		return Message{}, ErrNotFound
	}
	v := b.Get(u64key(seq))
	if v == nil {
		return Message{}, ErrNotFound
	}
	var rec messageRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		// A damaged record is as good as gone: refusing the command
		// keeps it from failing the whole batch with it.
		a.store.reportBad(conv, u64key(seq), v)
		return Message{}, ErrNotFound
	}
	if rec.Deleted {
		return Message{}, ErrNotFound
	}
	if err := fn(&rec); err != nil {
		return Message{}, err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return Message{}, err
	}
	if err := b.Put(u64key(seq), raw); err != nil {
		return Message{}, err
	}
	return decodeMessage(u64key(seq), raw, conv.RoomID, b)
}

func (a *applier) editMessage(c EditMessage) (Outcome, error) {
	if err := a.canSee(c.Conv, c.EditorID); err != nil {
		return Outcome{}, err
	}
	if !c.Conv.IsDirect() {
		rec, err := a.existingRoom(c.Conv.RoomID)
		if err != nil {
			return Outcome{}, err
		}
		if until, muted := muteAt(rec.Mutes, c.EditorID, a.now); muted {
			return Outcome{}, &MutedError{Until: until}
		}
	}
	m, err := a.modifyMessage(c.Conv, c.Seq, func(rec *messageRecord) error {
		if rec.SenderID != c.EditorID {
			return ErrNotAllowed
		}
		mentions := rec.Mentions
		if !c.Conv.IsDirect() {
			var err error
			if mentions, err = resolveMentions(a.tx, c.Conv.RoomID, c.Content); err != nil {
				return err
			}
		}
		rec.Content, rec.EditedAt, rec.Mentions = c.Content, a.now, mentions
		return nil
	})
	if err != nil {
		return Outcome{}, err
	}
	a.emit(MessageEdited{Message: m})
	return Outcome{Message: m}, nil
}

func (a *applier) deleteMessage(c DeleteMessage) (Outcome, error) {
	if err := a.canSee(c.Conv, c.ByID); err != nil {
		return Outcome{}, err
	}
	by, err := a.user(c.ByID)
	if err != nil {
		return Outcome{}, err
	}
	mayDeleteOthers := false
	if !c.Conv.IsDirect() {
		rec, err := a.existingRoom(c.Conv.RoomID)
		if err != nil {
			return Outcome{}, err
		}
		mayDeleteOthers = rec.room(c.Conv.RoomID).Rank(by) >= RankModerator
	}
	var files []FileRef
	m, err := a.modifyMessage(c.Conv, c.Seq, func(rec *messageRecord) error {
		if rec.SenderID != by.ID && !mayDeleteOthers {
			return ErrNotAllowed
		}
		files = rec.Files
		rec.Deleted, rec.Content, rec.Reactions, rec.Mentions, rec.Files, rec.EditedAt = true, "", nil, nil, nil, time.Time{}
		return nil
	})
	if err != nil {
		return Outcome{}, err
	}
	for _, f := range files {
		if err := deleteFile(a.tx, f.ID); err != nil {
			return Outcome{}, err
		}
	}
	a.emit(MessageDeleted{Message: m, By: ref(by)})
	return Outcome{Message: m}, nil
}

func (a *applier) react(c React) (Outcome, error) {
	if err := a.canSee(c.Conv, c.UserID); err != nil {
		return Outcome{}, err
	}
	if !c.Conv.IsDirect() {
		// A mute silences reactions too: they reach the whole room.
		rec, err := a.existingRoom(c.Conv.RoomID)
		if err != nil {
			return Outcome{}, err
		}
		if until, muted := muteAt(rec.Mutes, c.UserID, a.now); muted {
			return Outcome{}, &MutedError{Until: until}
		}
	}
	u, err := a.user(c.UserID)
	if err != nil {
		return Outcome{}, err
	}
	added := false
	m, err := a.modifyMessage(c.Conv, c.Seq, func(rec *messageRecord) error {
		i := slices.IndexFunc(rec.Reactions, func(r Reaction) bool { return r.Emoji == c.Emoji })
		if i < 0 {
			if len(rec.Reactions) >= maxReactionKinds {
				return ErrTooManyReactions
			}
			rec.Reactions = append(rec.Reactions, Reaction{Emoji: c.Emoji})
			i = len(rec.Reactions) - 1
		}
		r := &rec.Reactions[i]
		if j := slices.Index(r.Users, u.ID); j >= 0 {
			r.Users = slices.Delete(r.Users, j, j+1)
		} else {
			r.Users = append(r.Users, u.ID)
			added = true
		}
		if len(r.Users) == 0 {
			rec.Reactions = slices.Delete(rec.Reactions, i, i+1)
		}
		return nil
	})
	if err != nil {
		return Outcome{}, err
	}
	a.emit(ReactionChanged{Message: m, Emoji: c.Emoji, User: ref(u), Added: added})
	return Outcome{Message: m, Added: added}, nil
}

func (a *applier) markRead(c MarkRead) (Outcome, error) {
	if c.Seq == 0 {
		return Outcome{}, fmt.Errorf("%w: read marker 0", errBadCommand)
	}
	if err := a.canSee(c.Conv, c.UserID); err != nil {
		return Outcome{}, err
	}
	if c.Conv.IsDirect() {
		if err := setDirectRead(a.tx, c.UserID, c.Conv.Peer(c.UserID), c.Seq); err != nil {
			return Outcome{}, err
		}
	} else {
		a.setRoomRead(c.UserID, c.Conv.RoomID, c.Seq)
	}
	//lint:ignore S1016 an event is not its command, even when both carry the same fields
	a.emit(ReadMoved{UserID: c.UserID, Conv: c.Conv, Seq: c.Seq})
	return Outcome{}, nil
}

func setDirectRead(tx *bolt.Tx, user, peer, seq uint64) error {
	peers, err := tx.Bucket(bucketDMPeers).CreateBucketIfNotExists(u64key(user))
	if err != nil {
		return err
	}
	if v := peers.Get(u64key(peer)); v != nil && binary.BigEndian.Uint64(v) >= seq {
		return nil
	}
	return peers.Put(u64key(peer), u64key(seq))
}

// trimOlderThan deletes messages sent before the cutoff, in every room
// and conversation, at most Limit of them, so one transaction stays
// short. An undecodable record is deleted too: it cannot be shown, and
// keeping it would stop trimming there for good.
func (a *applier) trimOlderThan(c TrimOlderThan) (Outcome, error) {
	n := 0
	msgs := a.tx.Bucket(bucketMessages)
	err := msgs.ForEachBucket(func(name []byte) error {
		if n >= c.Limit {
			return nil
		}
		cur := msgs.Bucket(name).Cursor()
		for k, v := cur.First(); k != nil && n < c.Limit; k, v = cur.First() {
			var rec messageRecord
			if json.Unmarshal(v, &rec) == nil && !rec.Time.Before(c.Cutoff) {
				break
			}
			if err := deleteMessageFiles(a.tx, v); err != nil {
				return err
			}
			if err := cur.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return Outcome{}, err
	}
	// Room events age out with the messages.
	m, err := trimRoomEventsBefore(a.tx, c.Cutoff, c.Limit-n)
	return Outcome{Count: n + m}, err
}
