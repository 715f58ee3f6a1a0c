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
	// Events: a room's events in the page's place, oldest first.
	Events []RoomEvent
}

// maxScan bounds how many stored messages one thread or search reads.
const maxScan = 20000

// MaxPageBytes bounds what one read of messages (a history page, a
// thread, search results) returns, in encoded bytes, besides its count:
// a page of 100 messages of 4,000 characters that encode to 6 bytes each
// ("<" is "\u003c") would be 2.4 MB, and a client asking for many and
// reading none could make the server hold gigabytes. At least one message
// is returned whatever its size.
const MaxPageBytes = 256 << 10

// MaxThreadReplies bounds the replies one thread answer returns.
const MaxThreadReplies = 100

// messageCost estimates a message's size on the wire: its stored record
// (encoded like the frame), the quote of its parent and its files' URLs.
func messageCost(v []byte, m Message) int {
	n := len(v) + 128*len(m.Files)
	if m.Parent != nil {
		n += 6*len(m.Parent.Content) + 128
	}
	return n
}

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
		eventsFor(tx, conv, &p, before == 0)
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
	size := 0
	for ; k != nil && len(p.Messages) < limit; k, v = c.Prev() {
		m, ok := s.decode(conv, k, v, b)
		if !ok {
			continue
		}
		cost := messageCost(v, m)
		if len(p.Messages) > 0 && size+cost > MaxPageBytes {
			break // this one starts the next page
		}
		size += cost
		p.Messages = append(p.Messages, m)
	}
	p.HasMore = k != nil
	// Collected newest first; the protocol sends oldest first.
	slices.Reverse(p.Messages)
	p.Trimmed = !p.HasMore && trimmedBefore(p.Messages, b)
	eventsFor(tx, conv, &p, before == 0)
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
// from seq on, up to limit in all, oldest first. The older part takes at
// most half of MaxPageBytes, so seq itself is always in the page.
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
		size := 0
		if k, _ = c.Seek(u64key(seq)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(back) < older; k, v = c.Prev() {
			m, ok := s.decode(conv, k, v, b)
			if !ok {
				continue
			}
			cost := messageCost(v, m)
			if size+cost > MaxPageBytes/2 {
				break
			}
			size += cost
			back = append(back, m)
		}
		p.HasMore = k != nil
		slices.Reverse(back)
		p.Messages = back
		// seq itself and the newer part.
		first := len(p.Messages)
		for k, v = c.Seek(u64key(seq)); k != nil && len(p.Messages) < limit; k, v = c.Next() {
			m, ok := s.decode(conv, k, v, b)
			if !ok {
				continue
			}
			cost := messageCost(v, m)
			if len(p.Messages) > first && size+cost > MaxPageBytes {
				break
			}
			size += cost
			p.Messages = append(p.Messages, m)
		}
		p.HasNewer = k != nil
		if !p.HasMore && len(p.Messages) > 0 {
			p.Trimmed = p.Messages[0].Seq > 1
		}
		eventsFor(tx, conv, &p, !p.HasNewer)
		return nil
	})
	return p, err
}

// Thread returns a message and the replies to it still in the history
// that are newer than after (all of them when after is 0), oldest first:
// at most MaxThreadReplies and about MaxPageBytes. more says further
// replies follow the last one returned.
func (s *Store) Thread(conv Conv, seq, after uint64) (parent Message, replies []Message, more bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
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
		scanned, size := 0, 0
		for k, v := c.Seek(u64key(max(seq, after) + 1)); k != nil && scanned < maxScan; k, v = c.Next() {
			scanned++
			var rec struct {
				ReplyTo uint64 `json:"r"`
			}
			if json.Unmarshal(v, &rec) != nil || rec.ReplyTo != seq {
				continue
			}
			m, ok := s.decode(conv, k, v, b)
			if !ok {
				continue
			}
			cost := messageCost(v, m)
			if len(replies) == MaxThreadReplies || (len(replies) > 0 && size+cost > MaxPageBytes) {
				more = true
				break
			}
			size += cost
			replies = append(replies, m)
		}
		return nil
	})
	return parent, replies, more, err
}

// Search finds messages whose text contains query, ignoring case, in the
// given conversations, newest first: at most limit of them and about
// MaxPageBytes. It reads at most maxScan messages and holds at most
// limit hits per conversation; truncated says it stopped early, or left
// matches out to stay within MaxPageBytes.
func (s *Store) Search(convs []Conv, query string, limit int) ([]Message, bool, error) {
	needle := strings.ToLower(query)
	type hit struct {
		m    Message
		cost int
	}
	var hits []hit
	truncated := false
	err := s.view(func(tx *bolt.Tx) error {
		scanned := 0
		for _, conv := range convs {
			b := tx.Bucket(bucketMessages).Bucket(conv.key())
			if b == nil {
				continue
			}
			found := 0
			c := b.Cursor()
			// Newest first: past limit hits in this conversation, older
			// ones cannot make the newest limit overall.
			for k, v := c.Last(); k != nil && found < limit; k, v = c.Prev() {
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
					hits = append(hits, hit{m, messageCost(v, m)})
					found++
				}
			}
			slices.SortStableFunc(hits, func(a, b hit) int { return b.m.Time.Compare(a.m.Time) })
			hits = hits[:min(len(hits), limit)]
		}
		return nil
	})
	var out []Message
	size := 0
	for _, h := range hits {
		if len(out) > 0 && size+h.cost > MaxPageBytes {
			truncated = true
			break
		}
		size += h.cost
		out = append(out, h.m)
	}
	return out, truncated, err
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

// roomReadStates returns the user's read state in each of rooms; a
// damaged message is skipped (and logged), not counted.
func (s *Store) roomReadStates(tx *bolt.Tx, user uint64, rooms []string) map[string]ReadState {
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
				if err := json.Unmarshal(v, &rec); err != nil {
					s.reportBad(RoomConv(roomID), k, v)
					continue
				}
				if rec.Deleted || rec.Sender == user {
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
	err := s.view(func(tx *bolt.Tx) error { out = s.roomReadStates(tx, user, rooms); return nil })
	return out, err
}
