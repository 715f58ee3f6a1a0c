package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Page is a run of a conversation's messages, oldest first.
type Page struct {
	Messages []Message
	HasMore  bool // older messages remain before the page
	HasNewer bool // newer messages remain after it (pages read with after or around)
	// Trimmed: nothing older remains, yet the conversation began earlier:
	// the server no longer keeps its first messages.
	Trimmed bool
}

// maxScan bounds how many stored messages one thread or search reads.
const maxScan = 20000

// maxUnreadCount bounds the messages counted per conversation when
// working out unread and mention counts; clients show "999+".
const maxUnreadCount = 999

// History returns up to limit messages of a conversation older than
// before (the newest when before is 0), oldest first.
func (s *Store) History(conv Conv, before uint64, limit int) (Page, error) {
	var p Page
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		p, err = s.readHistory(tx, conv, before, limit)
		return err
	})
	return p, err
}

// readHistory reads a page back from before. Like every reader of
// messages, it skips (and logs) a record that does not decode, so one
// damaged record never makes a conversation unreadable.
func (s *Store) readHistory(tx *bolt.Tx, conv Conv, before uint64, limit int) (Page, error) {
	var p Page
	b := tx.Bucket(bucketMessages).Bucket(conv.key())
	if b == nil {
		return p, nil
	}
	c := b.Cursor()
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
	for ; k != nil && len(p.Messages) < limit; k, v = c.Prev() {
		if m, ok := s.decode(conv, k, v, b); ok {
			p.Messages = append(p.Messages, m)
		}
	}
	p.HasMore = k != nil
	// Collected newest first; the protocol sends oldest first.
	slices.Reverse(p.Messages)
	p.Trimmed = !p.HasMore && trimmedBefore(p.Messages, b)
	return p, nil
}

// trimmedBefore reports whether a conversation once held messages older
// than the first of msgs (or, with none, any at all) that are gone.
func trimmedBefore(msgs []Message, b *bolt.Bucket) bool {
	if len(msgs) > 0 {
		return msgs[0].Seq > 1
	}
	return b.Sequence() > 0
}

// HistoryAround returns up to limit messages centred on seq, oldest
// first.
func (s *Store) HistoryAround(conv Conv, seq uint64, limit int) (Page, error) {
	return s.historyFrom(conv, seq, limit/2, limit)
}

// HistoryAfter returns up to limit messages newer than after, oldest
// first; HasMore says messages up to and including after remain.
func (s *Store) HistoryAfter(conv Conv, after uint64, limit int) (Page, error) {
	if after == math.MaxUint64 {
		// Nothing is newer; an empty page starting at after still says
		// whether anything is older.
		return s.historyFrom(conv, after, 0, 0)
	}
	return s.historyFrom(conv, after+1, 0, limit)
}

// historyFrom returns up to older messages before seq and then messages
// from seq on, up to limit in all, oldest first.
func (s *Store) historyFrom(conv Conv, seq uint64, older, limit int) (Page, error) {
	var p Page
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
			if m, ok := s.decode(conv, k, v, b); ok {
				back = append(back, m)
			}
		}
		p.HasMore = k != nil
		slices.Reverse(back)
		p.Messages = back
		// seq itself and the newer part.
		for k, v = c.Seek(u64key(seq)); k != nil && len(p.Messages) < limit; k, v = c.Next() {
			if m, ok := s.decode(conv, k, v, b); ok {
				p.Messages = append(p.Messages, m)
			}
		}
		p.HasNewer = k != nil
		if !p.HasMore && len(p.Messages) > 0 {
			p.Trimmed = p.Messages[0].Seq > 1
		}
		return nil
	})
	return p, err
}

// Thread returns a message and the replies to it still in the history,
// oldest first.
func (s *Store) Thread(conv Conv, seq uint64) (Message, []Message, error) {
	var (
		parent  Message
		replies []Message
	)
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages).Bucket(conv.key())
		if b == nil {
			return ErrNotFound
		}
		v := b.Get(u64key(seq))
		if v == nil {
			return ErrNotFound
		}
		var ok bool
		if parent, ok = s.decode(conv, u64key(seq), v, b); !ok {
			return ErrNotFound
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
			if m, ok := s.decode(conv, k, v, b); ok {
				replies = append(replies, m)
			}
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
				if json.Unmarshal(v, &rec) != nil {
					s.reportBad(conv, k, v)
					continue
				}
				if !strings.Contains(strings.ToLower(rec.Content), needle) {
					continue
				}
				if m, ok := s.decode(conv, k, v, b); ok {
					hits = append(hits, m)
				}
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

// directConversations lists a user's direct conversations, one per
// peer, with how many of the peer's messages the user has not read.
func (s *Store) directConversations(tx *bolt.Tx, user uint64) ([]DirectConversation, error) {
	var out []DirectConversation
	peers := tx.Bucket(bucketDMPeers).Bucket(u64key(user))
	if peers == nil {
		return nil, nil
	}
	err := peers.ForEach(func(k, v []byte) error {
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
		for mk, _ := c.Seek(u64key(binary.BigEndian.Uint64(v) + 1)); mk != nil && n < maxUnreadCount; mk, _ = c.Next() {
			n++
		}
		// The newest message that decodes says when the conversation was
		// last active.
		last, ok := s.decode(DirectConv(user, peer), lastK, lastV, nil)
		for !ok {
			if lastK, lastV = c.Prev(); lastK == nil {
				break
			}
			last, ok = s.decode(DirectConv(user, peer), lastK, lastV, nil)
		}
		u, err := getUser(tx, peer)
		if err != nil {
			return fmt.Errorf("peer %d: %w", peer, err)
		}
		out = append(out, DirectConversation{PeerID: peer, PeerName: u.Name, Unread: n,
			LastRead: binary.BigEndian.Uint64(v), LastMessageAt: last.Time})
		return nil
	})
	return out, err
}

// directPeers lists the users that user has a direct conversation with,
// including conversations trimmed empty.
func directPeers(tx *bolt.Tx, user uint64) []uint64 {
	var out []uint64
	if peers := tx.Bucket(bucketDMPeers).Bucket(u64key(user)); peers != nil {
		_ = peers.ForEach(func(k, _ []byte) error {
			out = append(out, binary.BigEndian.Uint64(k))
			return nil
		})
	}
	return out
}

// DirectPeers lists the users that user has a direct conversation with.
func (s *Store) DirectPeers(user uint64) ([]uint64, error) {
	var out []uint64
	err := s.view(func(tx *bolt.Tx) error { out = directPeers(tx, user); return nil })
	return out, err
}

// roomReadStates returns the user's read state in each of rooms.
func roomReadStates(tx *bolt.Tx, user uint64, rooms []string) map[string]ReadState {
	out := make(map[string]ReadState, len(rooms))
	mine := tx.Bucket(bucketRoomReads).Bucket(u64key(user))
	for _, roomID := range rooms {
		var st ReadState
		if mine != nil {
			if v := mine.Get([]byte(roomID)); v != nil {
				st.LastRead = binary.BigEndian.Uint64(v)
			}
		}
		if conv := tx.Bucket(bucketMessages).Bucket(RoomConv(roomID).key()); conv != nil {
			c := conv.Cursor()
			for k, v := c.Seek(u64key(st.LastRead + 1)); k != nil && st.Unread < maxUnreadCount; k, v = c.Next() {
				var rec struct {
					Sender   uint64   `json:"s"`
					Deleted  bool     `json:"d"`
					Mentions []uint64 `json:"m"`
				}
				if json.Unmarshal(v, &rec) != nil || rec.Deleted || rec.Sender == user {
					continue
				}
				st.Unread++
				if slices.Contains(rec.Mentions, user) {
					st.Mentions++
				}
			}
		}
		out[roomID] = st
	}
	return out
}

// RoomReadStates returns the user's read state in each of rooms.
func (s *Store) RoomReadStates(user uint64, rooms []string) (map[string]ReadState, error) {
	var out map[string]ReadState
	err := s.view(func(tx *bolt.Tx) error { out = roomReadStates(tx, user, rooms); return nil })
	return out, err
}
