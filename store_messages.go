package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Group commit. Every message append goes through one writer goroutine
// that takes whatever is queued (up to maxAppendBatch) and commits it in
// one transaction, so concurrent senders share one fsync. There is no
// artificial delay: while one commit syncs, the next batch queues up.
const (
	appendQueueLen = 4096 // requests waiting for the writer; senders block beyond it
	maxAppendBatch = 1000 // requests per transaction
)

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
	FileIDs    []string // on append: uploads to attach; the store fills Files
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

// ErrParentNotFound refuses a reply to a message not in the history.
var ErrParentNotFound = errors.New("replied-to message not found")

// replyPreviewChars is how much of a parent a reply quotes.
const replyPreviewChars = 200

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
	RoomID string
	A, B   uint64
}

func RoomConv(id string) Conv { return Conv{RoomID: id} }

func DirectConv(a, b uint64) Conv {
	if a > b {
		a, b = b, a
	}
	return Conv{A: a, B: b}
}

func (c Conv) IsDirect() bool { return c.RoomID == "" }

// key names the conversation's message bucket.
func (c Conv) key() []byte {
	if c.IsDirect() {
		return directKey(c.A, c.B)
	}
	return append([]byte{'r'}, c.RoomID...)
}

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
}

func (m Message) record() messageRecord {
	return messageRecord{SenderID: m.SenderID, SenderName: m.SenderName, TargetID: m.TargetID, TargetName: m.TargetName,
		Content: m.Content, Time: m.Time, ClientMsgID: m.ClientMsgID, ReplyTo: m.ReplyTo, ReplyCount: m.ReplyCount,
		EditedAt: m.EditedAt, Deleted: m.Deleted, Reactions: m.Reactions, Mentions: m.Mentions, Files: m.Files}
}

type appendRequest struct {
	msg Message
	// done is called exactly once, by the writer goroutine, after the
	// transaction holding msg committed (err nil) or failed. It must not
	// block.
	done func(Message, error)
}

// AppendMessage stores m and returns it with its Seq once the transaction
// holding it has committed. A nil error means the message is on disk.
// Errors wrap ErrUnavailable (the write failed) or are ErrStoreClosed;
// a room message for an unknown room is ErrNotFound.
func (s *Store) AppendMessage(ctx context.Context, m Message) (Message, error) {
	type result struct {
		m   Message
		err error
	}
	res := make(chan result, 1)
	if err := s.QueueMessage(ctx, m, func(m Message, err error) { res <- result{m, err} }); err != nil {
		return Message{}, err
	}
	// Once queued the writer always answers, even during Close, so this
	// wait cannot outlive the store; it ignores ctx so that a message is
	// never reported as failed after it was committed.
	r := <-res
	return r.m, r.err
}

// QueueMessage queues m for the next group commit and returns without
// waiting for it; done reports the outcome as AppendMessage would. Messages
// queued by one goroutine commit in the order they were queued, so a
// client may send many without waiting for each to be saved. It blocks
// only while the queue is full, which slows the fastest senders down.
func (s *Store) QueueMessage(ctx context.Context, m Message, done func(Message, error)) error {
	req := &appendRequest{msg: m, done: done}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrStoreClosed
	}
	select {
	case s.appends <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) writer() {
	defer close(s.writerDone)
	// A corrupted page can fault inside bbolt's mmap; safeUpdate recovers
	// the resulting panic.
	debug.SetPanicOnFault(true)
	batch := make([]*appendRequest, 0, maxAppendBatch)
	for req := range s.appends {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < maxAppendBatch {
			select {
			case r, ok := <-s.appends:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
	}
}

func (s *Store) commitBatch(batch []*appendRequest) {
	errs := make([]error, len(batch))
	start := time.Now()
	err := s.safeUpdate(func(tx *bolt.Tx) error {
		b := newAppendBatch(tx, s.opts.HistoryPerRoom)
		for i, r := range batch {
			var err error
			if errs[i], err = b.append(&r.msg); err != nil {
				return err
			}
		}
		return b.finish()
	})
	took := time.Since(start)
	var committed []Message
	if err != nil {
		err = fmt.Errorf("%w: commit %d messages: %w", ErrUnavailable, len(batch), err)
		s.log.Error("message commit failed", "messages", len(batch), "err", err)
		for i := range errs {
			errs[i] = err
		}
	} else {
		committed = make([]Message, 0, len(batch))
		for i, r := range batch {
			if errs[i] == nil {
				committed = append(committed, r.msg)
			}
		}
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(committed)
		}
	}
	if s.opts.ObserveCommit != nil {
		s.opts.ObserveCommit(committed, took, err)
	}
	for i, r := range batch {
		if errs[i] != nil {
			r.done(Message{}, errs[i])
		} else {
			r.done(r.msg, nil)
		}
	}
}

// safeUpdate is db.Update for the writer goroutine: a panic from a
// corrupted page fails the batch instead of killing the writer, which
// would leave every sender waiting forever.
func (s *Store) safeUpdate(fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in write transaction: %v", r)
		}
	}()
	return s.db.Update(fn)
}

// appendBatch writes the messages of one group commit. What many
// messages of a batch touch alike (a room's record, the sender's read
// marker) is read once, changed in memory, and written once by finish.
type appendBatch struct {
	tx    *bolt.Tx
	keep  int
	rooms map[string]*roomRecord
	reads map[roomReadKey]uint64
}

type roomReadKey struct {
	user uint64
	room string
}

func newAppendBatch(tx *bolt.Tx, keep int) *appendBatch {
	return &appendBatch{tx: tx, keep: keep, rooms: map[string]*roomRecord{}, reads: map[roomReadKey]uint64{}}
}

func (b *appendBatch) room(id string) (*roomRecord, error) {
	if r := b.rooms[id]; r != nil {
		return r, nil
	}
	rec, err := getRoom(b.tx, id)
	if err != nil {
		return nil, err
	}
	b.rooms[id] = &rec
	return &rec, nil
}

// append writes one message and trims its conversation. The first result
// is the message's own refusal; the second fails the whole batch. Every
// check that can refuse runs before anything is written, since a refusal
// does not roll the shared transaction back.
func (b *appendBatch) append(m *Message) (refused, failed error) {
	tx := b.tx
	var room *roomRecord
	if !m.IsDirect() {
		var err error
		if room, err = b.room(m.RoomID); errors.Is(err, ErrNotFound) {
			return ErrNotFound, nil
		} else if err != nil {
			return nil, err
		}
		// Checked again here, in commit order: a message that waited for
		// this commit while its sender left, was kicked, banned or muted is
		// refused, so nothing reaches a room after the event that closed it.
		if !isMemberTx(tx, m.RoomID, m.SenderID) {
			return ErrNotMember, nil
		}
		if until, muted := muteAt(room.Mutes, m.SenderID, m.Time); muted {
			return &MutedError{Until: until}, nil
		}
	}
	conv, err := tx.Bucket(bucketMessages).CreateBucketIfNotExists(m.Conv().key())
	if err != nil {
		return nil, err
	}
	var parent messageRecord
	if m.ReplyTo != 0 {
		v := conv.Get(u64key(m.ReplyTo))
		if v == nil {
			return ErrParentNotFound, nil
		}
		if err := json.Unmarshal(v, &parent); err != nil {
			return nil, fmt.Errorf("decode message %d: %w", m.ReplyTo, err)
		}
	}
	files, refusal, err := checkFiles(tx, m.FileIDs, m.SenderID)
	if refusal != nil || err != nil {
		return refusal, err
	}

	seq, err := conv.NextSequence()
	if err != nil {
		return nil, err
	}
	m.Seq = seq
	if m.ReplyTo != 0 {
		parent.ReplyCount++
		if err := putJSON(conv, u64key(m.ReplyTo), parent); err != nil {
			return nil, err
		}
		m.Parent = parent.preview(m.ReplyTo)
	}
	if !m.IsDirect() {
		if m.Mentions, err = resolveMentions(tx, m.RoomID, m.Content); err != nil {
			return nil, err
		}
	}
	if m.Files, err = attachFiles(tx, files, m.Conv(), seq); err != nil {
		return nil, err
	}
	if err := putJSON(conv, u64key(seq), m.record()); err != nil {
		return nil, err
	}
	// Trim in the same transaction, so the history never exceeds keep.
	if b.keep > 0 {
		c := conv.Cursor()
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k)+uint64(b.keep) <= seq; k, v = c.First() {
			if err := deleteMessageFiles(tx, v); err != nil {
				return nil, err
			}
			if err := c.Delete(); err != nil {
				return nil, err
			}
		}
	}
	if m.IsDirect() {
		// The sender has read everything up to their own message; the
		// target gets the conversation listed with nothing read yet.
		if err := setReadMarker(tx, m.SenderID, m.TargetID, seq); err != nil {
			return nil, err
		}
		peers, err := tx.Bucket(bucketDMPeers).CreateBucketIfNotExists(u64key(m.TargetID))
		if err != nil {
			return nil, err
		}
		if peers.Get(u64key(m.SenderID)) == nil {
			if err := peers.Put(u64key(m.SenderID), u64key(0)); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	room.LastMessageAt = m.Time
	b.reads[roomReadKey{m.SenderID, m.RoomID}] = seq
	return nil, nil
}

// finish writes what the batch's messages changed in common.
func (b *appendBatch) finish() error {
	rooms := b.tx.Bucket(bucketRooms)
	for id, rec := range b.rooms {
		if err := putJSON(rooms, []byte(id), rec); err != nil {
			return err
		}
	}
	for k, seq := range b.reads {
		if err := setRoomRead(b.tx, k.user, k.room, seq); err != nil {
			return err
		}
	}
	return nil
}

func (r messageRecord) preview(seq uint64) *ReplyParent {
	content := r.Content
	if utf8.RuneCountInString(content) > replyPreviewChars {
		content = string([]rune(content)[:replyPreviewChars]) + "…"
	}
	return &ReplyParent{Seq: seq, SenderID: r.SenderID, SenderName: r.SenderName, Content: content, Deleted: r.Deleted}
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

// mentionedNames returns the lower-cased names written as @name; a name
// ends where the username alphabet does, and a trailing dot (the end of a
// sentence) is also tried without it.
func mentionedNames(content string) map[string]bool {
	var names map[string]bool
	for i := 0; i < len(content); i++ {
		if content[i] != '@' || (i > 0 && validName(content[i-1:i], 1)) {
			continue
		}
		j := i + 1
		for j < len(content) && j-i-1 < maxUsernameLen && validName(content[j:j+1], 1) {
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

// RoomHistory returns up to limit messages of a room older than before
// (all when before is 0), oldest first, and whether older ones remain.
func (s *Store) RoomHistory(roomID string, before uint64, limit int) ([]Message, bool, error) {
	return s.history(RoomConv(roomID).key(), roomID, before, limit)
}

// DirectHistory is RoomHistory for the conversation between two users.
func (s *Store) DirectHistory(a, b uint64, before uint64, limit int) ([]Message, bool, error) {
	return s.history(directKey(a, b), "", before, limit)
}

func (s *Store) history(key []byte, roomID string, before uint64, limit int) ([]Message, bool, error) {
	var (
		out  []Message
		more bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		conv := tx.Bucket(bucketMessages).Bucket(key)
		if conv == nil {
			return nil
		}
		c := conv.Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			// Seek lands on the first key >= before (or past the end).
			if k, v = c.Seek(u64key(before)); k == nil {
				k, v = c.Last()
			}
			for k != nil && binary.BigEndian.Uint64(k) >= before {
				k, v = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			m, err := decodeMessage(k, v, roomID, conv)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		more = k != nil
		return nil
	})
	// Collected newest first; the protocol sends oldest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, more, err
}

// HistoryTrimmed reports whether conv once had messages older than the
// oldest it keeps: its oldest kept message has an id above 1, or it keeps
// none although ids were handed out (history.per_room or history.max_age
// removed them). A page that reaches the start of what is kept uses it to
// tell the client whether that is the start of the conversation.
func (s *Store) HistoryTrimmed(conv Conv) (bool, error) {
	var trimmed bool
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages).Bucket(conv.key())
		if b == nil {
			return nil
		}
		if k, _ := b.Cursor().First(); k != nil {
			trimmed = binary.BigEndian.Uint64(k) > 1
		} else {
			trimmed = b.Sequence() > 0
		}
		return nil
	})
	return trimmed, err
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
		Deleted: rec.Deleted, Reactions: rec.Reactions, Mentions: rec.Mentions, Files: rec.Files}
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

// MarkDirectRead records that user has read the conversation with peer up
// to seq. The marker only moves forward.
func (s *Store) MarkDirectRead(user, peer, seq uint64) error {
	return s.update(func(tx *bolt.Tx) error { return setReadMarker(tx, user, peer, seq) })
}

func setReadMarker(tx *bolt.Tx, user, peer, seq uint64) error {
	peers, err := tx.Bucket(bucketDMPeers).CreateBucketIfNotExists(u64key(user))
	if err != nil {
		return err
	}
	if v := peers.Get(u64key(peer)); v != nil && binary.BigEndian.Uint64(v) >= seq {
		return nil
	}
	return peers.Put(u64key(peer), u64key(seq))
}

// DirectConversations lists the user's direct conversations, one per
// peer, with how many of the peer's messages the user has not read.
func (s *Store) DirectConversations(user uint64) ([]DirectConversation, error) {
	var out []DirectConversation
	err := s.view(func(tx *bolt.Tx) error {
		peers := tx.Bucket(bucketDMPeers).Bucket(u64key(user))
		if peers == nil {
			return nil
		}
		return peers.ForEach(func(k, v []byte) error {
			peer := binary.BigEndian.Uint64(k)
			conv := tx.Bucket(bucketMessages).Bucket(directKey(user, peer))
			if conv == nil {
				return nil
			}
			c := conv.Cursor()
			lastK, lastV := c.Last()
			if lastK == nil {
				return nil // everything was trimmed away by age
			}
			n := 0
			for mk, _ := c.Seek(u64key(binary.BigEndian.Uint64(v) + 1)); mk != nil; mk, _ = c.Next() {
				n++
			}
			last, err := decodeMessage(lastK, lastV, "", nil)
			if err != nil {
				return err
			}
			u, err := getUser(tx, peer)
			if err != nil {
				return fmt.Errorf("peer %d: %w", peer, err)
			}
			out = append(out, DirectConversation{PeerID: peer, PeerName: u.Name, Unread: n,
				LastRead: binary.BigEndian.Uint64(v), LastMessageAt: last.Time})
			return nil
		})
	})
	return out, err
}

// DirectPeers lists the users that user has a direct conversation with.
func (s *Store) DirectPeers(user uint64) ([]uint64, error) {
	var out []uint64
	err := s.view(func(tx *bolt.Tx) error {
		peers := tx.Bucket(bucketDMPeers).Bucket(u64key(user))
		if peers == nil {
			return nil
		}
		return peers.ForEach(func(k, _ []byte) error {
			out = append(out, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	return out, err
}

// DeleteOlderThan deletes messages sent before cutoff, in every room and
// conversation, at most limit per call, so each transaction stays short
// and the writer goroutine is never held up for long. It returns how many
// it deleted; fewer than limit means it is done.
func (s *Store) DeleteOlderThan(cutoff time.Time, limit int) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		msgs := tx.Bucket(bucketMessages)
		return msgs.ForEachBucket(func(name []byte) error {
			if n >= limit {
				return nil
			}
			c := msgs.Bucket(name).Cursor()
			for k, v := c.First(); k != nil && n < limit; k, v = c.First() {
				var rec messageRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("decode message: %w", err)
				}
				if !rec.Time.Before(cutoff) {
					break
				}
				if err := deleteMessageFiles(tx, v); err != nil {
					return err
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
	})
	return n, err
}
