package main

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"parley/internal/store"
)

// The wire form of what the store holds: how messages, rooms and users
// look in frames.

func toMessageFrame(m store.Message) messageFrame {
	mf := messageFrame{ID: formatMessageID(m.Seq), Seq: m.Seq, RoomID: m.RoomID, SenderID: formatID(m.SenderID),
		SenderName: m.SenderName, Content: m.Content, Timestamp: formatTime(m.Time), ClientMsgID: m.ClientMsgID,
		ReplyCount: m.ReplyCount, Deleted: m.Deleted, Bot: m.Bot, BotLabel: m.Label}
	if m.IsDirect() {
		mf.TargetUserID = formatID(m.TargetID)
		mf.TargetUsername = m.TargetName
	}
	if p := m.Parent; p != nil {
		mf.ReplyTo = &replyPreview{ID: formatMessageID(p.Seq), SenderName: p.SenderName, Content: p.Content, Deleted: p.Deleted}
		if p.SenderID != 0 {
			mf.ReplyTo.SenderID = formatID(p.SenderID)
		}
	}
	if !m.EditedAt.IsZero() {
		mf.EditedAt = formatTime(m.EditedAt)
	}
	for _, r := range m.Reactions {
		mf.Reactions = append(mf.Reactions, reactionInfo{Emoji: r.Emoji, Count: len(r.Users), UserIDs: idStrings(r.Users)})
	}
	if len(m.Mentions) > 0 {
		mf.Mentions = idStrings(m.Mentions)
	}
	for _, f := range m.Files {
		mf.Files = append(mf.Files, toFileInfo(f))
	}
	return mf
}

func toMessageFrames(msgs []store.Message) []messageFrame {
	out := make([]messageFrame, len(msgs))
	for i, m := range msgs {
		out[i] = toMessageFrame(m)
	}
	return out
}

func toFileInfo(f store.FileRef) fileInfo {
	return fileInfo{ID: f.ID, Name: f.Name, Size: f.Size, ContentType: f.ContentType,
		URL: "/files/" + f.ID + "/" + url.PathEscape(f.Name), Image: inlineImageTypes[f.ContentType]}
}

func messageRefOf(m store.Message) messageRef {
	ref := messageRef{RoomID: m.RoomID, ID: formatMessageID(m.Seq)}
	if m.IsDirect() {
		ref.SenderID, ref.TargetUserID = formatID(m.SenderID), formatID(m.TargetID)
	}
	return ref
}

func toRoomInfo(r store.Room, online int) roomInfo {
	info := roomInfo{RoomID: r.ID, MemberCount: r.MemberCount, OnlineCount: online, CreatedAt: formatTime(r.CreatedAt),
		Topic: r.Topic, Private: r.Private, Group: r.Group}
	if !r.LastMessageAt.IsZero() {
		info.LastMessageAt = formatTime(r.LastMessageAt)
	}
	return info
}

func toUserRef(r store.Ref) userRef { return userRef{UserID: formatID(r.ID), Username: r.Name} }

// replyAddress addresses an answer about conv: roomId, or withUserId seen
// from the asker.
func replyAddress(conv store.Conv, me uint64) (roomID, withUserID string) {
	if !conv.IsDirect() {
		return conv.RoomID, ""
	}
	return "", formatID(conv.Peer(me))
}

func idStrings(ids []uint64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = formatID(id)
	}
	return out
}

// formatID is a user id on the wire: a decimal string.
func formatID(id uint64) string { return strconv.FormatUint(id, 10) }

// formatMessageID zero-pads the sequence number so ids sort as strings
// in send order, as well as numbers.
func formatMessageID(seq uint64) string { return fmt.Sprintf("%012d", seq) }

// formatTime is the tutorial's timestamp format: ISO 8601 in UTC with
// milliseconds.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// toRoomEvents is a page's room events in wire form. after names the
// message an event follows when that message is in the page, and is
// empty when the event comes before the page's first message.
func toRoomEvents(events []store.RoomEvent, msgs []store.Message) []roomEventInfo {
	first := uint64(0)
	if len(msgs) > 0 {
		first = msgs[0].Seq
	}
	out := make([]roomEventInfo, len(events))
	for i, e := range events {
		out[i] = roomEventInfo{Type: e.Type, At: formatTime(e.At), UserID: formatID(e.UserID), Username: e.Username,
			Reason: e.Reason, Role: e.Role, Topic: e.Topic}
		if first > 0 && e.After >= first {
			out[i].After = formatMessageID(e.After)
		}
		if e.By != nil {
			by := toUserRef(*e.By)
			out[i].By = &by
		}
		if !e.Until.IsZero() {
			out[i].Until = formatTime(e.Until)
		}
	}
	return out
}
