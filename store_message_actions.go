package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What can happen to a message after it is sent: edits, deletion,
// reactions; and the ways of finding messages other than paging back:
// threads, search, and history around a message.

// maxReactionKinds bounds the different emoji on one message.
const maxReactionKinds = 20

var ErrTooManyReactions = errors.New("too many different reactions on this message")

// lookupMessage finds a stored message: its conversation's bucket and
// its record.
func lookupMessage(tx *bolt.Tx, conv Conv, seq uint64) (*bolt.Bucket, []byte, error) {
	b := tx.Bucket(bucketMessages).Bucket(conv.key())
	if b == nil {
		return nil, nil, ErrNotFound
	}
	v := b.Get(u64key(seq))
	if v == nil {
		return nil, nil, ErrNotFound
	}
	return b, v, nil
}

// modifyMessage rewrites a stored message through fn in one transaction
// and returns it as it now is. Deleted messages are ErrNotFound.
func (s *Store) modifyMessage(conv Conv, seq uint64, fn func(tx *bolt.Tx, rec *messageRecord) error) (Message, error) {
	var out Message
	err := s.update(func(tx *bolt.Tx) error {
		b, v, err := lookupMessage(tx, conv, seq)
		if err != nil {
			return err
		}
		var rec messageRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode message %d: %w", seq, err)
		}
		if rec.Deleted {
			return ErrNotFound
		}
		if err := fn(tx, &rec); err != nil {
			return err
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := b.Put(u64key(seq), raw); err != nil {
			return err
		}
		out, err = decodeMessage(u64key(seq), raw, conv.RoomID, b)
		return err
	})
	return out, err
}

// EditMessage replaces the content of editor's own message. Mentions are
// worked out again for the new text.
func (s *Store) EditMessage(conv Conv, seq, editor uint64, content string, now time.Time) (Message, error) {
	return s.modifyMessage(conv, seq, func(tx *bolt.Tx, rec *messageRecord) error {
		if rec.SenderID != editor {
			return ErrNotAllowed
		}
		rec.Content, rec.EditedAt = content, now.UTC()
		if !conv.IsDirect() {
			var err error
			rec.Mentions, err = resolveMentions(tx, conv.RoomID, content)
			return err
		}
		return nil
	})
}

// DeleteMessage deletes a message, leaving a tombstone so replies keep
// their place: its sender may, and anyone mayDeleteOthers (a room's
// moderators). Its attached files are deleted with it.
func (s *Store) DeleteMessage(conv Conv, seq, by uint64, mayDeleteOthers bool) (Message, error) {
	return s.modifyMessage(conv, seq, func(tx *bolt.Tx, rec *messageRecord) error {
		if rec.SenderID != by && !mayDeleteOthers {
			return ErrNotAllowed
		}
		for _, f := range rec.Files {
			if err := deleteFile(tx, f.ID); err != nil {
				return err
			}
		}
		rec.Deleted, rec.Content, rec.Reactions, rec.Mentions, rec.Files, rec.EditedAt = true, "", nil, nil, nil, time.Time{}
		return nil
	})
}

// ToggleReaction adds user's emoji to a message, or takes it away if it
// was there, and reports which.
func (s *Store) ToggleReaction(conv Conv, seq, user uint64, emoji string) (Message, bool, error) {
	added := false
	m, err := s.modifyMessage(conv, seq, func(_ *bolt.Tx, rec *messageRecord) error {
		i := slices.IndexFunc(rec.Reactions, func(r Reaction) bool { return r.Emoji == emoji })
		if i < 0 {
			if len(rec.Reactions) >= maxReactionKinds {
				return ErrTooManyReactions
			}
			rec.Reactions = append(rec.Reactions, Reaction{Emoji: emoji})
			i = len(rec.Reactions) - 1
		}
		r := &rec.Reactions[i]
		if j := slices.Index(r.Users, user); j >= 0 {
			r.Users = slices.Delete(r.Users, j, j+1)
		} else {
			r.Users = append(r.Users, user)
			added = true
		}
		if len(r.Users) == 0 {
			rec.Reactions = slices.Delete(rec.Reactions, i, i+1)
		}
		return nil
	})
	return m, added, err
}

// maxScan bounds how many stored messages one thread or search reads.
const maxScan = 20000

// Thread returns a message and the replies to it still in the history,
// oldest first.
func (s *Store) Thread(conv Conv, seq uint64) (Message, []Message, error) {
	var (
		parent  Message
		replies []Message
	)
	err := s.view(func(tx *bolt.Tx) error {
		b, v, err := lookupMessage(tx, conv, seq)
		if err != nil {
			return err
		}
		if parent, err = decodeMessage(u64key(seq), v, conv.RoomID, b); err != nil {
			return err
		}
		c := b.Cursor()
		scanned := 0
		for k, v := c.Seek(u64key(seq + 1)); k != nil && scanned < maxScan; k, v = c.Next() {
			scanned++
			var rec struct {
				ReplyTo uint64 `json:"r"`
			}
			if json.Unmarshal(v, &rec) != nil || rec.ReplyTo != seq {
				continue
			}
			m, err := decodeMessage(k, v, conv.RoomID, b)
			if err != nil {
				return err
			}
			replies = append(replies, m)
		}
		return nil
	})
	return parent, replies, err
}

// Search finds messages whose text contains query, ignoring case, in the
// given conversations, newest first. It reads at most maxScan messages
// and says whether it stopped early.
func (s *Store) Search(convs []Conv, query string, limit int) ([]Message, bool, error) {
	needle := strings.ToLower(query)
	var hits []Message
	truncated := false
	err := s.view(func(tx *bolt.Tx) error {
		scanned := 0
		for _, conv := range convs {
			b := tx.Bucket(bucketMessages).Bucket(conv.key())
			if b == nil {
				continue
			}
			c := b.Cursor()
			for k, v := c.Last(); k != nil; k, v = c.Prev() {
				if scanned >= maxScan {
					truncated = true
					return nil
				}
				scanned++
				var rec struct {
					Content string `json:"c"`
				}
				if json.Unmarshal(v, &rec) != nil || !strings.Contains(strings.ToLower(rec.Content), needle) {
					continue
				}
				m, err := decodeMessage(k, v, conv.RoomID, b)
				if err != nil {
					return err
				}
				hits = append(hits, m)
			}
		}
		return nil
	})
	slices.SortStableFunc(hits, func(a, b Message) int { return b.Time.Compare(a.Time) })
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits, truncated, err
}

// HistoryAround returns up to limit messages centred on seq, oldest
// first, and whether older and newer ones remain beyond them.
func (s *Store) HistoryAround(conv Conv, seq uint64, limit int) ([]Message, bool, bool, error) {
	return s.historyFrom(conv, seq, limit/2, limit)
}

// HistoryAfter returns up to limit messages newer than after, oldest
// first, and whether older ones remain before them (messages up to and
// including after) and newer ones beyond them.
func (s *Store) HistoryAfter(conv Conv, after uint64, limit int) ([]Message, bool, bool, error) {
	if after == math.MaxUint64 {
		// Nothing is newer; an empty page starting at after still says
		// whether anything is older.
		return s.historyFrom(conv, after, 0, 0)
	}
	return s.historyFrom(conv, after+1, 0, limit)
}

// historyFrom returns up to older messages before seq and then messages
// from seq on, up to limit in all, oldest first, and whether older and
// newer ones remain beyond the page.
func (s *Store) historyFrom(conv Conv, seq uint64, older, limit int) ([]Message, bool, bool, error) {
	var (
		out                []Message
		hasOlder, hasNewer bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages).Bucket(conv.key())
		if b == nil {
			return nil
		}
		c := b.Cursor()
		// The older part, walking back from just before seq.
		var back []Message
		var k, v []byte
		if k, _ = c.Seek(u64key(seq)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(back) < older; k, v = c.Prev() {
			m, err := decodeMessage(k, v, conv.RoomID, b)
			if err != nil {
				return err
			}
			back = append(back, m)
		}
		hasOlder = k != nil
		slices.Reverse(back)
		out = back
		// seq itself and the newer part.
		for k, v = c.Seek(u64key(seq)); k != nil && len(out) < limit; k, v = c.Next() {
			m, err := decodeMessage(k, v, conv.RoomID, b)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		hasNewer = k != nil
		return nil
	})
	return out, hasOlder, hasNewer, err
}
