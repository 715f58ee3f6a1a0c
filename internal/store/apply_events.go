package store

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Room events: what happened to a room's members and settings (joins,
// leaves, moderation, topics), kept beside its messages so a page of
// history can show them in their place after a reload. Each is recorded
// as the change is applied, with the id of the last message before it.
//
//	roomEvents   roomID/seq -> roomEventRecord   (nested bucket per room)
//
// The bucket is made when the first event is recorded; a database that
// has none is read as having no events.

var bucketRoomEvents = []byte("roomEvents")

// maxRoomEvents bounds the events kept per room, however quiet its chat.
const maxRoomEvents = 500

// RoomEvent is one recorded room event.
type RoomEvent struct {
	Type     string    `json:"t"` // joined, left, kicked, banned, unbanned, muted, unmuted, roleChanged, topic
	At       time.Time `json:"at"`
	After    uint64    `json:"a,omitempty"` // the last message before it
	UserID   uint64    `json:"u,omitempty"` // whom it is about (for topic, who set it)
	Username string    `json:"n,omitempty"`
	By       *Ref      `json:"by,omitempty"`
	Reason   string    `json:"r,omitempty"`
	Until    time.Time `json:"until,omitzero"`
	Role     string    `json:"role,omitempty"`
	Topic    string    `json:"topic,omitempty"`
}

// roomEventsOf turns a change's event into what the room's history keeps
// of it.
func roomEventsOf(ev Event) map[string]RoomEvent {
	switch e := ev.(type) {
	case MemberJoined:
		if e.Created {
			return nil // the room's first line is its first message
		}
		re := RoomEvent{Type: "joined", UserID: e.User.ID, Username: e.User.Name, By: e.InvitedBy}
		return map[string]RoomEvent{e.Room.ID: re}
	case MemberLeft:
		return map[string]RoomEvent{e.RoomID: {Type: "left", UserID: e.User.ID, Username: e.User.Name}}
	case Moderated:
		by := e.Actor
		return map[string]RoomEvent{e.Room.ID: {Type: e.Action, UserID: e.Target.ID, Username: e.Target.Name, By: &by,
			Reason: e.Reason, Until: e.Until, Role: e.Role}}
	case TopicChanged:
		by := e.By
		return map[string]RoomEvent{e.Room.ID: {Type: "topic", UserID: e.By.ID, Username: e.By.Name, By: &by, Topic: e.Room.Topic}}
	case UserSuspended:
		if !e.Suspended {
			return nil
		}
		out := map[string]RoomEvent{}
		by := e.Actor
		for _, r := range e.Rooms {
			re := RoomEvent{Type: "banned", UserID: e.Target.ID, Username: e.Target.Name, Reason: e.Reason}
			if by.ID != 0 {
				re.By = &by
			}
			out[r] = re
		}
		return out
	}
	return nil
}

// recordRoomEvents keeps what an event says of rooms in their histories.
func (a *applier) recordRoomEvents(ev Event) error {
	for room, re := range roomEventsOf(ev) {
		re.At = a.now
		if conv := a.tx.Bucket(bucketMessages).Bucket(RoomConv(room).key()); conv != nil {
			re.After = conv.Sequence()
		}
		root, err := a.tx.CreateBucketIfNotExists(bucketRoomEvents)
		if err != nil {
			return err
		}
		events, err := root.CreateBucketIfNotExists([]byte(room))
		if err != nil {
			return err
		}
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		if err := putJSON(events, u64key(seq), re); err != nil {
			return err
		}
		if n := events.Stats().KeyN; n > maxRoomEvents {
			c := events.Cursor()
			for k, _ := c.First(); k != nil && n > maxRoomEvents; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
				n--
			}
		}
	}
	return nil
}

// trimRoomEvents deletes a room's events that sit among messages no
// longer kept: those before the message just above the oldest kept one.
func trimRoomEvents(tx *bolt.Tx, roomID string, oldestKept uint64) error {
	events := roomEventsBucket(tx, roomID)
	if events == nil {
		return nil
	}
	c := events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		var re RoomEvent
		if json.Unmarshal(v, &re) == nil && re.After+1 >= oldestKept {
			return nil
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// trimRoomEventsBefore deletes every room's events from before cutoff,
// at most limit, and returns how many it deleted.
func trimRoomEventsBefore(tx *bolt.Tx, cutoff time.Time, limit int) (int, error) {
	root := tx.Bucket(bucketRoomEvents)
	if root == nil {
		return 0, nil
	}
	n := 0
	err := root.ForEachBucket(func(name []byte) error {
		c := root.Bucket(name).Cursor()
		for k, v := c.First(); k != nil && n < limit; k, v = c.First() {
			var re RoomEvent
			if json.Unmarshal(v, &re) == nil && !re.At.Before(cutoff) {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func roomEventsBucket(tx *bolt.Tx, roomID string) *bolt.Bucket {
	root := tx.Bucket(bucketRoomEvents)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(roomID))
}

// maxPageEvents bounds the events one page of history carries.
const maxPageEvents = 200

// pageEvents lists a room's events whose place is between from and to
// (message sequence numbers, "after" values, both included), oldest
// first, at most maxPageEvents (the newest of them).
func pageEvents(tx *bolt.Tx, roomID string, from, to uint64) []RoomEvent {
	events := roomEventsBucket(tx, roomID)
	if events == nil {
		return nil
	}
	var out []RoomEvent
	c := events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var re RoomEvent
		if json.Unmarshal(v, &re) != nil || re.After < from {
			continue
		}
		if re.After > to {
			break
		}
		out = append(out, re)
	}
	if len(out) > maxPageEvents {
		out = out[len(out)-maxPageEvents:]
	}
	return out
}

// eventsFor fills a page's events: those among its messages, those above
// its first message when nothing older remains to be fetched, and those
// below its last message when it is the newest page.
func eventsFor(tx *bolt.Tx, conv Conv, p *Page, newest bool) {
	if conv.IsDirect() {
		return
	}
	from, to := uint64(0), uint64(1<<63)
	if len(p.Messages) > 0 {
		first, last := p.Messages[0].Seq, p.Messages[len(p.Messages)-1].Seq
		if p.HasMore {
			from = first - 1
		}
		if !newest {
			to = last - 1
		}
	} else if !newest || p.HasMore {
		return
	}
	p.Events = pageEvents(tx, conv.RoomID, from, to)
}
